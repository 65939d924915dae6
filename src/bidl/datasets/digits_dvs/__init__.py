"""``DigitsDVS``: the embedded default dataset, real handwritten digits seen by a
simulated event camera.

scikit-learn ships 1797 handwritten digits of 8x8 pixels (no download). Each is
upsampled smoothly onto a ``size`` x ``size`` sensor (34 by default, like N-MNIST), moved
along three linear saccades forming a triangle (as the N-MNIST recordings were made),
rendered at sub-pixel offsets, and fed to an ESIM-style event camera
(``bidl.datasets.events.camera``). The events are generated once into a cache folder::

    <root>/events.npz   x, y (uint8), t (int64, us), p (uint8: 1 ON, 0 OFF) of all samples
                        back to back, offsets [N + 1], labels [N], train_idx, test_idx
    <root>/meta.json    seed, size, generator version, counts (written last)

and integrated into frames ``[T, 2, H, W]`` (channels OFF, ON) when the dataset loads.
"""

from .dataset import DigitsDVS
from .prepare import (
    EVENTS_FILE,
    META_FILE,
    cache_problem,
    generate_digits_dvs,
    load_digits_dvs_events,
    prepare_digits_dvs,
)
from .simulate import (
    DURATION_US,
    GENERATOR_VERSION,
    NUM_DIGITS,
    render_frames,
    saccade_offsets,
    simulate_digits,
    upsample_matrix,
)

__all__ = [
    "DURATION_US",
    "EVENTS_FILE",
    "GENERATOR_VERSION",
    "META_FILE",
    "NUM_DIGITS",
    "DigitsDVS",
    "cache_problem",
    "generate_digits_dvs",
    "load_digits_dvs_events",
    "prepare_digits_dvs",
    "render_frames",
    "saccade_offsets",
    "simulate_digits",
    "upsample_matrix",
]
