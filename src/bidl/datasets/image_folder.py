"""``ImageFolder``: static images in class folders (ImageNet's and CIFAR-10's image-file
layout), direct-encoded: the same frame at every timestep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..registry import DATASETS, BidlError
from .base import BaseDataset, DatasetNotFoundError
from .pipelines.loading import FRAME_SUFFIXES, read_frames

LAYOUT = (
    "  <data_prefix>/train/<class>/<image>.JPEG   (.jpg .jpeg .png .bmp, any case)\n"
    "  <data_prefix>/val/<class>/<image>.JPEG     (or test/: the test_mode split)\n"
    "  e.g. ImageNet: train/n01440764/n01440764_10026.JPEG; CIFAR-10 as images:\n"
    "  train/airplane/0001.png, test/airplane/0001.png"
)
#: the folder a test_mode split is read from, the first that exists
TEST_SPLITS = ("val", "test")


@DATASETS.register_module()
class ImageFolder(BaseDataset):
    """Images in one folder per class, for training spiking networks with direct encoding.

    ``img`` goes through the pipeline as one frame ``[1, 3, H, W]`` uint8 (RGB; ``size``
    ``(h, w)`` resizes at decoding), so crops, flips and normalisation run once; after it
    the frame is repeated to ``timesteps`` frames ``[T, 3, H, W]`` (direct encoding: the
    first layer sees the analog image at every step). Classes are the sub-folders of the
    ``train`` folder, sorted (ImageNet's WordNet ids, CIFAR-10's names), unless ``classes``
    names them; ``split`` picks another folder than ``train`` / ``val`` (``test``).
    """

    SOURCE = "images in class folders: train/<class>/*.JPEG, val/<class>/* (ImageNet layout)"

    def __init__(
        self,
        data_prefix: str = "data/imagenet",
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        timesteps: int = 4,
        size: int | Sequence[int] | None = None,
        split: str | None = None,
        classes: Sequence[str] | None = None,
        ann_file: str | None = None,
    ):
        if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
            raise BidlError(f"ImageFolder: timesteps must be an int >= 1, got {timesteps!r}")
        self.timesteps = timesteps
        self.size = None if size is None else _pair(size)
        self.split = split
        super().__init__(data_prefix, pipeline, classes, ann_file, test_mode)

    def split_folder(self, root: Path) -> Path:
        if self.split is not None:
            return root / self.split
        if not self.test_mode:
            return root / "train"
        found = [root / name for name in TEST_SPLITS if (root / name).is_dir()]
        return found[0] if found else root / TEST_SPLITS[0]

    def load_annotations(self) -> list[dict]:
        root = self.require_folder(
            self.data_prefix, "ImageFolder", LAYOUT, "copy the images into that layout"
        )
        folder = self.split_folder(root)
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"ImageFolder: split folder {str(folder)!r} does not exist.\nExpected layout:\n"
                f"{LAYOUT}"
            )
        if self.CLASSES is None:
            names_from = root / "train" if (root / "train").is_dir() else folder
            self.CLASSES = sorted(p.name for p in names_from.iterdir() if p.is_dir())
        index = self.class_to_idx
        infos = []
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if class_dir.name not in index:
                raise BidlError(
                    f"ImageFolder: {str(class_dir)!r} is a class the training split does not "
                    f"have ({len(index)} classes); every split needs the same class folders"
                )
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() in FRAME_SUFFIXES and path.is_file():
                    infos.append({"img_path": str(path), "gt_label": index[class_dir.name]})
        if not infos:
            raise DatasetNotFoundError(
                f"ImageFolder: no images ({', '.join(FRAME_SUFFIXES)}) under {str(folder)!r}."
                f"\nExpected layout:\n{LAYOUT}"
            )
        return infos

    def prepare_data(self, idx: int) -> dict:
        info = self.data_infos[idx]
        results = {"img": read_frames([Path(info["img_path"])], self.size), **info}
        results = self.pipeline(results)
        results["img"] = _repeat(results["img"], self.timesteps)
        return results


def _repeat(img, timesteps: int):
    """``[1, ...]`` -> ``[T, ...]``, a view (the batch collation copies it once)."""
    if img.shape[0] != 1:
        raise BidlError(
            f"ImageFolder: the pipeline must keep one frame (got {img.shape[0]}); the dataset "
            f"repeats it over the {timesteps} timesteps"
        )
    if isinstance(img, torch.Tensor):
        return img.expand(timesteps, *img.shape[1:])
    return np.broadcast_to(img, (timesteps, *img.shape[1:]))


def _pair(size) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and s > 0 for s in pair):
        raise BidlError(f"ImageFolder: size must be an int or (h, w) > 0, got {size!r}")
    return pair  # type: ignore[return-value]
