"""``DvsMnist``: N-MNIST, MNIST digits recorded by an ATIS sensor on a moving platform,
one 40-bit-per-event ``.bin`` file per sample."""

from __future__ import annotations

from ..registry import DATASETS
from .event_dataset import EventDataset
from .events.formats import read_nmnist

FOLDERS = {"train": "Train", "test": "Test"}


@DATASETS.register_module(name=["DvsMnist", "NMNIST"])
class DvsMnist(EventDataset):
    """N-MNIST: 60000 training and 10000 test digits on a 34x34 sensor, samples
    ``[timesteps, 2, H, W]`` uint8 counts (channels OFF, ON) over each recording."""

    CLASSES = [str(i) for i in range(10)]
    SENSOR_SIZE = (34, 34)
    PREPARE_NAME = "DvsMnist"
    SOURCE = "N-MNIST: .bin files of 40-bit events (x, y, polarity, 23-bit time), Train/Test"
    LAYOUT = "  <raw>/Train/0/00002.bin ... <raw>/Train/9/...\n  <raw>/Test/0/... <raw>/Test/9/..."

    def __init__(self, data_prefix: str = "data/dvs_mnist", **kwargs):
        super().__init__(data_prefix, **kwargs)

    def list_samples(self, split: str):
        root = self.raw_prefix / FOLDERS[split]
        if not root.is_dir():
            raise self.missing(f"folder {root} does not exist")
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            files = sorted((root / name).glob("*.bin"))
            refs += [str(f) for f in files]
            labels += [label] * len(files)
        return refs, labels

    def read_events(self, ref):
        return read_nmnist(ref), None, None
