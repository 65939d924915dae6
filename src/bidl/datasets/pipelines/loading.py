"""Loading steps: read a sample's data from files named in its dict (BIDL's names)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...registry import PIPELINES, BidlError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_frames(paths: Sequence[Path], size=None, gray: bool = False) -> np.ndarray:
    """Decode image files into ``[T, C, H, W]`` uint8 (RGB, or one grey channel), each
    resized to ``size`` ``(h, w)`` (bilinear) when given."""
    from PIL import Image, UnidentifiedImageError

    frames = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image = image.convert("L" if gray else "RGB")
                if size is not None:
                    image = image.resize((size[1], size[0]), Image.BILINEAR)
                frames.append(np.asarray(image))
        except (OSError, UnidentifiedImageError) as err:
            raise BidlError(f"cannot decode frame {path} ({err})") from None
    stack = np.stack(frames)
    return stack[:, None] if gray else stack.transpose(0, 3, 1, 2)


def sample_indices(total: int, count: int, stride: float | None = None, start: float | None = None):
    """``count`` frame indices of a clip of ``total`` frames: ``stride`` apart from
    ``start`` (indices past the end repeat the last frame), or evenly spread over the
    clip when ``stride`` is None."""
    if stride is None:
        return np.rint(np.linspace(0, total - 1, count)).astype(np.int64)
    if start is None:
        start = max(0.0, np.floor((total - 1 - stride * (count - 1)) / 2))
    positions = np.floor(start + stride * np.arange(count) + 0.5)  # round half up
    return np.minimum(positions, total - 1).astype(np.int64)


def _stride_choices(down_t) -> np.ndarray:
    if isinstance(down_t, (int, float)):
        return np.array([float(down_t)])
    values = [float(v) for v in down_t]
    if len(values) == 3:
        low, high, step = values
        return np.arange(low, high + step / 2, step)
    if len(values) == 1:
        return np.array(values)
    raise BidlError(
        f"LoadFramesInFolder: down_t must be a stride or (low, high, step), got {down_t!r}"
    )


@PIPELINES.register_module()
class LoadFramesInFolder:
    """Read ``n_frame`` frames of the clip in ``results["frame_dir"]`` into ``img``
    ``[n_frame, 3, H, W]`` uint8 RGB.

    Args:
        n_frame: frames per sample (T).
        down_t: temporal stride between sampled frames, or ``(low, high, step)`` to draw
            one per sample; None spreads the frames evenly over the clip.
        random: draw the start frame at random (training) instead of centring the clip.
        dropout: probability that a sampled frame repeats its predecessor (frame drops).
        size: resize every frame to ``(h, w)`` (an int: square) while decoding.
        num_frames: another name for ``n_frame``; ``test_mode=True`` forces ``random=False``.
    """

    def __init__(
        self,
        n_frame: int | None = None,
        down_t=None,
        random: bool = False,
        dropout: float = 0.0,
        size=None,
        num_frames: int | None = None,
        test_mode: bool = False,
    ):
        if n_frame is not None and num_frames is not None and n_frame != num_frames:
            raise BidlError("LoadFramesInFolder: give n_frame or num_frames, not both")
        n_frame = n_frame if n_frame is not None else num_frames if num_frames is not None else 8
        if isinstance(n_frame, bool) or not isinstance(n_frame, int) or n_frame < 1:
            raise BidlError(f"LoadFramesInFolder: n_frame must be an int >= 1, got {n_frame!r}")
        if not 0 <= dropout < 1:
            raise BidlError(f"LoadFramesInFolder: dropout must be in [0, 1), got {dropout!r}")
        self.n_frame, self.random, self.dropout = n_frame, random and not test_mode, dropout
        self.size = (size, size) if isinstance(size, int) else None if size is None else tuple(size)
        self.strides = None if down_t is None else _stride_choices(down_t)

    def __call__(self, results: dict) -> dict:
        if "frame_dir" not in results:
            raise BidlError(
                f"LoadFramesInFolder: the sample has no 'frame_dir'; it has {sorted(results)}"
            )
        folder = Path(results["frame_dir"])
        files = (
            sorted(p for p in folder.glob("*") if p.suffix.lower() in FRAME_SUFFIXES)
            if folder.is_dir()
            else []
        )
        if not files:
            raise BidlError(f"LoadFramesInFolder: no frames (.jpg, .png) in {folder}")
        stride = None
        start = None
        if self.strides is not None:
            stride = (
                float(np.random.choice(self.strides)) if self.random else float(self.strides[0])
            )
            if self.random:
                span = max(0.0, len(files) - 1 - stride * (self.n_frame - 1))
                start = np.random.uniform(0, span)
        indices = sample_indices(len(files), self.n_frame, stride, start)
        if self.dropout:
            dropped = np.random.random_sample(self.n_frame) < self.dropout
            dropped[0] = False
            for i in np.flatnonzero(dropped):
                indices[i] = indices[i - 1]
        results["img"] = read_frames([files[i] for i in indices], size=self.size)
        results["frame_inds"] = indices
        return results


def _filename(results: dict, where: str) -> Path:
    for key in ("filename", "img_path", "path"):
        if key in results:
            return Path(results[key])
    raise BidlError(f"{where}: the sample names no file ('filename'); it has {sorted(results)}")


@PIPELINES.register_module()
class LoadNumpy:
    """Load ``results["filename"]`` (a ``.npy``, or ``key`` of a ``.npz``) into ``img``;
    pickled arrays are refused."""

    def __init__(self, key: str | None = None):
        self.key = key

    def __call__(self, results: dict) -> dict:
        path = _filename(results, "LoadNumpy")
        try:
            data = np.load(path, allow_pickle=False)
            if isinstance(data, np.lib.npyio.NpzFile):
                with data:
                    data = data[self.key or data.files[0]]
        except (OSError, ValueError, KeyError) as err:
            raise BidlError(f"LoadNumpy: cannot read {path} ({err})") from None
        results["img"] = data
        return results


@PIPELINES.register_module()
class LoadSpikesInHdf5:
    """Load dataset ``key`` of the HDF5 file ``results["filename"]`` into ``img``."""

    def __init__(self, key: str = "spikes"):
        self.key = key

    def __call__(self, results: dict) -> dict:
        import h5py

        path = _filename(results, "LoadSpikesInHdf5")
        try:
            with h5py.File(path, "r") as handle:
                results["img"] = np.asarray(handle[self.key])
        except (OSError, KeyError) as err:
            raise BidlError(
                f"LoadSpikesInHdf5: cannot read {self.key!r} from {path} ({err})"
            ) from None
        return results
