"""``DvsDatasetFolder``: any event dataset laid out as a folder per split and class."""

from __future__ import annotations

from ..registry import DATASETS, BidlError
from .cached_dataset import natural_files
from .event_dataset import EventDataset
from .events.formats import SUFFIXES, read_event_file


@DATASETS.register_module()
class DvsDatasetFolder(EventDataset):
    """Event files in ``<raw>/<split>/<class>/`` (any of AEDAT 2/3.1/4, N-MNIST ``.bin``,
    ``.npz`` with x, y, t, p); classes are the sorted folder names of the train split.
    Samples are ``[timesteps, C, H, W]`` uint8 counts over each recording's span."""

    SOURCE = "event files (.aedat, .aedat4, .bin, .npz x/y/t/p), a folder per split and class"
    PREPARE_NAME = "DvsDatasetFolder"
    LAYOUT = "  <raw>/train/<class>/<recording>.npz|.aedat|.bin ...\n  <raw>/test/<class>/..."

    def __init__(self, data_prefix: str, sensor_size=(128, 128), **kwargs):
        try:
            height, width = (int(s) for s in sensor_size)
        except (TypeError, ValueError):
            raise BidlError(
                f"DvsDatasetFolder: sensor_size must be (H, W), got {sensor_size!r}"
            ) from None
        self.SENSOR_SIZE = (height, width)
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {**super().cache_params(), "sensor_size": list(self.SENSOR_SIZE)}

    def list_samples(self, split: str):
        return self.class_folder_samples(split, lambda folder: natural_files(folder, SUFFIXES))

    def read_events(self, ref):
        events = read_event_file(ref)
        height, width = self.SENSOR_SIZE
        if events.size and (events["x"].max() >= width or events["y"].max() >= height):
            raise BidlError(
                f"{ref}: events reach x={events['x'].max()}, y={events['y'].max()}, outside "
                f"sensor_size (H, W) = {self.SENSOR_SIZE}; set sensor_size in the config"
            )
        return events, None, None
