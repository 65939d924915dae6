"""A tiny registered event dataset for tests; configs load it through custom_imports."""

import numpy as np

from bidl.datasets import BaseDataset
from bidl.registry import DATASETS


@DATASETS.register_module(force=True)
class TinyBlinks(BaseDataset):
    """Each class lights its own quadrant of a 16x16 sensor at random steps (testing only)."""

    CLASSES = ["top-left", "top-right", "bottom-left"]

    def __init__(self, num_samples=48, timesteps=4, **kwargs):
        self.num_samples, self.timesteps = num_samples, timesteps
        super().__init__(**kwargs)

    def load_annotations(self):
        rng = np.random.default_rng(1 if self.test_mode else 0)
        infos = []
        for index in range(self.num_samples):
            label = index % 3
            img = (rng.random((self.timesteps, 2, 16, 16)) < 0.05).astype(np.uint8)
            rows = slice(0, 8) if label in (0, 1) else slice(8, 16)
            cols = slice(0, 8) if label in (0, 2) else slice(8, 16)
            img[:, :, rows, cols] |= (rng.random((self.timesteps, 2, 8, 8)) < 0.5).astype(np.uint8)
            infos.append({"img": img, "gt_label": label})
        return infos
