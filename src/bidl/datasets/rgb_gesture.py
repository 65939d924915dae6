"""``RgbGesture``: gestures filmed by an ordinary RGB camera, turned into event-like
frames by frame differencing (brighter: ON channel, darker: OFF channel) and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .cached_dataset import CachedDataset, natural_files
from .events.integration import size_pair
from .pipelines.loading import read_frames, sample_indices

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def frame_differences(gray: np.ndarray, threshold: float) -> np.ndarray:
    """``[T, 2, H, W]`` uint8 of ``[T + 1, H, W]`` intensities in [0, 1]: channel 1 where a
    pixel brightened by more than ``threshold`` since the previous frame, 0 where it darkened."""
    diff = np.diff(gray, axis=0)
    return np.stack([diff < -threshold, diff > threshold], axis=1).astype(np.uint8)


@DATASETS.register_module()
class RgbGesture(CachedDataset):
    """RGB gesture clips as frame folders ``<raw>/<split>/<class>/<clip>/*.jpg``. Each
    clip gives ``timesteps + 1`` evenly spaced frames, grey and resized to ``shape``
    ``(h, w)``, whose differences make ``img`` ``[timesteps, 2, h, w]`` binary uint8."""

    SOURCE = "RGB gesture clips: frame folders (.jpg/.png) per split/class/clip, frame differences"
    PREPARE_NAME = "RgbGesture"
    SPLITS = ("train", "val", "test")
    LAYOUT = (
        "  <raw>/train/<class>/<clip>/00001.jpg ...\n  <raw>/val/<class>/<clip>/...  (or test/)"
    )

    def __init__(
        self,
        data_prefix: str = "data/rgbgesture",
        timesteps: int = 60,
        shape=(40, 40),
        threshold: float = 0.05,
        **kwargs,
    ):
        if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
            raise BidlError(f"RgbGesture: timesteps must be an int >= 1, got {timesteps!r}")
        self.timesteps, self.shape, self.threshold = (
            timesteps,
            size_pair(shape, "RgbGesture"),
            threshold,
        )
        kwargs.setdefault("split", "val" if kwargs.get("test_mode") else "train")
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {"timesteps": self.timesteps, "shape": list(self.shape), "threshold": self.threshold}

    def list_samples(self, split: str):
        return self.class_folder_samples(
            split, lambda folder: sorted(p for p in folder.glob("*") if p.is_dir())
        )

    def decode(self, ref) -> np.ndarray:
        files = natural_files(Path(ref), FRAME_SUFFIXES)
        if len(files) < 2:
            raise BidlError(f"RgbGesture: clip {ref} needs at least 2 frames, has {len(files)}")
        chosen = [files[i] for i in sample_indices(len(files), self.timesteps + 1)]
        gray = read_frames(chosen, size=self.shape, gray=True)[:, 0].astype(np.float32) / 255.0
        return frame_differences(gray, self.threshold)
