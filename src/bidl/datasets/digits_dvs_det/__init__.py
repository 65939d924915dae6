"""``DigitsDVSDet`` (DigitsDVS-Det): the embedded default detection dataset, one to three
of scikit-learn's handwritten digits moving over a 64x64 sensor, seen by a simulated event
camera, with exact boxes.

Each clip (100 ms) places its digits (8x8 images drawn by bilinear interpolation onto
cells of 14-20 pixels) at random, moves each along a straight line (6-14 pixels, at least
15 degrees from the axes) without any two cells touching, renders 33 frames and feeds them
to an ESIM-style event camera (``bidl.datasets.events.camera``). A digit's box is the
bounding box of its non-zero pixels at the last instant, the end of the last time bin
(intensities below ``INK_FLOOR`` are zero, so the box is exact). The clips are generated
once into a cache folder::

    <root>/events.npz   events of all clips back to back, the digits of each clip (glyph,
                        label, scale, start, end, boxes), train_idx, test_idx
    <root>/meta.json    seed, num_samples, generator version, counts (written last)

and integrated into frames ``[T, 2, 64, 64]`` (channels OFF, ON) on access.
"""

from .dataset import DigitsDVSDet
from .prepare import (
    EVENTS_FILE,
    META_FILE,
    NUM_TEST,
    NUM_TRAIN,
    cache_problem,
    generate_digits_dvs_det,
    load_digits_dvs_det,
    prepare_command,
    prepare_digits_dvs_det,
)
from .simulate import (
    CANVAS,
    DURATION_US,
    GENERATOR_VERSION,
    INK_FLOOR,
    boxes_of,
    render_digits,
    sample_layout,
)

__all__ = [
    "CANVAS",
    "DURATION_US",
    "EVENTS_FILE",
    "GENERATOR_VERSION",
    "INK_FLOOR",
    "META_FILE",
    "NUM_TEST",
    "NUM_TRAIN",
    "DigitsDVSDet",
    "boxes_of",
    "cache_problem",
    "generate_digits_dvs_det",
    "load_digits_dvs_det",
    "prepare_command",
    "prepare_digits_dvs_det",
    "render_digits",
    "sample_layout",
]
