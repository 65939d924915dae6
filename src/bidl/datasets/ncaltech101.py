"""``NCaltech101``: Caltech101 images recorded by an ATIS sensor on a moving platform
(Orchard et al. 2015), one N-MNIST-style ``.bin`` file of 40-bit events per image."""

from __future__ import annotations

from ..registry import DATASETS, BidlError
from .cifar10_dvs import natural_key
from .event_dataset import EventDataset
from .events.formats import check_sensor, read_nmnist


@DATASETS.register_module(name=["NCaltech101", "NCALTECH101"])
class NCaltech101(EventDataset):
    """N-Caltech101: 101 folders of recordings (100 object classes and
    ``BACKGROUND_Google``; ``exclude`` drops folders), on a 180x240 canvas (the recordings
    are no larger). There is no official split: the first ``train_ratio`` of each class's
    files (in numeric order) train, the rest test. Samples are ``[timesteps, 2, H, W]``
    uint8 counts (channels OFF, ON) over each recording's span."""

    SENSOR_SIZE = (180, 240)
    PREPARE_NAME = "NCaltech101"
    SOURCE = "N-Caltech101: Caltech101/<class>/image_NNNN.bin (N-MNIST 40-bit events)"
    LAYOUT = (
        "  <raw>/Caltech101/accordion/image_0001.bin ...\n"
        "  <raw>/Caltech101/<class>/...   (or the class folders directly under <raw>)"
    )

    def __init__(
        self,
        data_prefix: str = "data/ncaltech101",
        train_ratio: float = 0.9,
        exclude=(),
        **kwargs,
    ):
        if not 0 < train_ratio < 1:
            raise BidlError(f"NCaltech101: train_ratio must be in (0, 1), got {train_ratio!r}")
        self.train_ratio = float(train_ratio)
        self.exclude = sorted(str(e) for e in exclude)
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {**super().cache_params(), "train_ratio": self.train_ratio, "exclude": self.exclude}

    def _root(self):
        nested = self.raw_prefix / "Caltech101"
        return nested if nested.is_dir() else self.raw_prefix

    def list_samples(self, split: str):
        root = self._root()
        if not root.is_dir():
            raise self.missing(f"folder {root} does not exist")
        if self.CLASSES is None:
            self.CLASSES = sorted(
                p.name for p in root.iterdir() if p.is_dir() and p.name not in self.exclude
            )
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            files = sorted((root / name).glob("*.bin"), key=natural_key)
            cut = int(round(len(files) * self.train_ratio))
            chosen = files[:cut] if split == "train" else files[cut:]
            refs += [str(f) for f in chosen]
            labels += [label] * len(chosen)
        return refs, labels

    def read_events(self, ref):
        return check_sensor(ref, read_nmnist(ref), self.SENSOR_SIZE), None, None
