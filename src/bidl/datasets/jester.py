"""``Jester20bn``: 20BN-Jester hand gestures, folders of JPEG frames and ``;``-separated
csv annotations; frames are decoded on access by ``LoadFramesInFolder`` (the set is
too large to cache decoded)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..registry import DATASETS, BidlError
from .base import BaseDataset, DatasetNotFoundError

LAYOUT = (
    "  <root>/jester-v1-labels.csv        one class name per line (27)\n"
    "  <root>/jester-v1-train.csv         '<video id>;<class name>' per line\n"
    "  <root>/jester-v1-validation.csv    same, the validation split\n"
    "  <root>/20bn-jester-v1/<video id>/00001.jpg 00002.jpg ...   (or <root>/<video id>/)"
)
ANN_FILES = {False: "jester-v1-train.csv", True: "jester-v1-validation.csv"}


def read_jester_csv(path: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """``(video id, label)`` rows of a Jester annotation csv."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        video, _, name = line.partition(";")
        if name.strip() not in class_to_idx:
            raise BidlError(
                f"{path}, line {number}: unknown class {name.strip()!r} (expected "
                f"'<video id>;<class name>' with a name from jester-v1-labels.csv)"
            )
        rows.append((video.strip(), class_to_idx[name.strip()]))
    return rows


@DATASETS.register_module(name=["Jester20bn", "Jester"])
class Jester20bn(BaseDataset):
    """20BN-Jester v1: 27 gestures, ~148k clips of 12 fps JPEG frames. Each sample holds
    its ``frame_dir``; put ``LoadFramesInFolder(n_frame=8 or 16)`` first in the pipeline
    to get ``img`` ``[T, 3, H, W]`` uint8 RGB. ``ann_file`` picks the csv (default: the
    train csv, or the validation csv with ``test_mode``)."""

    SOURCE = "20BN-Jester v1: JPEG frame folders + jester-v1-{labels,train,validation}.csv"

    def __init__(
        self,
        data_prefix: str = "data/jester",
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        ann_file: str | None = None,
        classes=None,
    ):
        super().__init__(data_prefix, pipeline, classes, ann_file, test_mode)

    def load_annotations(self) -> list[dict]:
        root = self.require_folder(
            self.data_prefix,
            "Jester20bn",
            LAYOUT,
            f"bidl data prepare Jester20bn --root {self.data_prefix}",
        )
        labels = root / "jester-v1-labels.csv"
        ann = root / (self.ann_file or ANN_FILES[self.test_mode])
        for path in (labels, ann):
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"Jester20bn: {path} does not exist.\nExpected layout:\n{LAYOUT}"
                )
        if self.CLASSES is None:
            self.CLASSES = [n.strip() for n in labels.read_text().splitlines() if n.strip()]
        frames = root / "20bn-jester-v1"
        frames = frames if frames.is_dir() else root
        return [
            {"frame_dir": str(frames / video), "gt_label": label}
            for video, label in read_jester_csv(ann, self.class_to_idx)
        ]
