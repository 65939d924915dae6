"""``NCars``: N-CARS (Sironi et al. 2018, Prophesee): 100 ms recordings of cars and of
background from an ATIS sensor, one ``.dat`` file each, 120x100 pixels."""

from __future__ import annotations

from ..registry import DATASETS
from .event_dataset import EventDataset
from .events.formats import check_sensor, read_event_file


@DATASETS.register_module(name=["NCars", "NCARS"])
class NCars(EventDataset):
    """N-CARS: 2 classes (``background``, ``cars``), 7940 / 7482 train and 4396 / 4211
    test recordings. Samples are ``[timesteps, 2, 100, 120]`` uint8 counts over each
    recording's span."""

    CLASSES = ["background", "cars"]
    SENSOR_SIZE = (100, 120)
    PREPARE_NAME = "NCars"
    SOURCE = "N-CARS: Prophesee .dat files, n-cars_{train,test}/{cars,background}/obj_*_td.dat"
    LAYOUT = (
        "  <raw>/n-cars_train/cars/obj_004396_td.dat ...  <raw>/n-cars_train/background/...\n"
        "  <raw>/n-cars_test/cars/...  <raw>/n-cars_test/background/...\n"
        "  (or <raw>/train/..., <raw>/test/...)"
    )

    def __init__(self, data_prefix: str = "data/ncars", **kwargs):
        super().__init__(data_prefix, **kwargs)

    def list_samples(self, split: str):
        root = self.raw_prefix / f"n-cars_{split}"
        root = root if root.is_dir() else self.raw_prefix / split
        if not root.is_dir():
            raise self.missing(f"folder {root} (or n-cars_{split}) does not exist")
        refs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            files = sorted((root / name).glob("*.dat"))
            refs += [str(f) for f in files]
            labels += [label] * len(files)
        return refs, labels

    def read_events(self, ref):
        return check_sensor(ref, read_event_file(ref), self.SENSOR_SIZE), None, None
