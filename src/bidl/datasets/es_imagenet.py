"""``ESImagenet``: ES-ImageNet, ImageNet images turned into 8 event frames each, one
``.npz`` of ON (``pos``) and OFF (``neg``) events per sample, read on access."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .base import BaseDataset, DatasetNotFoundError
from .events.integration import size_pair

SPLITS = {"train": ("train", "trainlabel.txt"), "test": ("val", "vallabel.txt")}
LAYOUT = (
    "  <root>/trainlabel.txt, vallabel.txt   '<file> <label> <width> <height>' per line\n"
    "  <root>/train/<file>.npz, <root>/val/<file>.npz   arrays pos, neg: [N, 3] (u, v, t 1..8)"
)
CANVAS = 256  # the official loader places each sample in a 256-pixel canvas, then crops


def read_es_imagenet(
    path: str | Path,
    extent: tuple[int, int] = (254, 254),
    source_size: int = 254,
    size: int = 224,
    timesteps: int = 8,
):
    """Binary frames ``[timesteps, 2, size, size]`` (channel 0 ``pos``, 1 ``neg``) of one
    ES-ImageNet file, placed as the dataset's own loader places them: an event (u, v) of a
    ``width x height`` sample (``extent``, from the label file) goes to
    ``(u + (source_size - width) // 2, v + (source_size - height) // 2)`` of a 256-pixel
    canvas whose central ``size`` pixels are kept."""
    frames = np.zeros((timesteps, 2, size, size), dtype=np.uint8)
    crop = (CANVAS - size) // 2
    shift_u = (source_size - extent[0]) // 2 - crop
    shift_v = (source_size - extent[1]) // 2 - crop
    try:
        with np.load(path, allow_pickle=False) as data:
            polarities = [np.asarray(data["pos"]), np.asarray(data["neg"])]
    except (OSError, ValueError, KeyError) as err:
        raise BidlError(
            f"ESImagenet: cannot read {path} ({err}); it needs arrays pos and neg"
        ) from None
    for channel, events in enumerate(polarities):
        if events.size == 0:
            continue
        if events.ndim != 2 or events.shape[1] < 3:
            raise BidlError(
                f"ESImagenet: {path}: events must be [N, 3] (u, v, t), got {events.shape}"
            )
        u, v, t = (events[:, i].astype(np.int64) for i in range(3))
        u, v, t = u + shift_u, v + shift_v, t - 1
        keep = (u >= 0) & (u < size) & (v >= 0) & (v < size) & (t >= 0) & (t < timesteps)
        frames[t[keep], channel, u[keep], v[keep]] = 1
    return frames


@DATASETS.register_module(name=["ESImagenet", "ESImageNet"])
class ESImagenet(BaseDataset):
    """ES-ImageNet: 1000 classes, samples ``[8, 2, H, W]`` binary uint8 frames (channel 0
    ON, 1 OFF, as the dataset's own loader orders them). Files are small and the set is large (1.3 M samples), so each sample is
    read from its ``.npz`` on access (no cache). ``size`` downsamples 224 by pooling."""

    SOURCE = (
        "ES-ImageNet: .npz per sample (pos/neg events u, v, t), trainlabel.txt/vallabel.txt "
        "(file, label, width, height)"
    )
    LAYOUT = LAYOUT

    def __init__(
        self,
        data_prefix: str = "data/es_imagenet",
        pipeline: Sequence[dict] = (),
        test_mode: bool = False,
        source_size: int = 254,
        size=None,
        classes=None,
        ann_file: str | None = None,
    ):
        self.source_size = int(source_size)
        self.size = size_pair(size, "ESImagenet")
        super().__init__(data_prefix, pipeline, classes, ann_file, test_mode)

    def load_annotations(self) -> list[dict]:
        root = self.require_folder(
            self.data_prefix, "ESImagenet", LAYOUT, "bidl data prepare ESImagenet --root DIR"
        )
        folder, default_labels = SPLITS["test" if self.test_mode else "train"]
        labels = root / (self.ann_file or default_labels)
        if not labels.is_file():
            raise DatasetNotFoundError(f"ESImagenet: label file {labels} does not exist.\n{LAYOUT}")
        infos = []
        for number, line in enumerate(labels.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            numbers = fields[1:4]
            if len(fields) < 2 or not all(f.lstrip("-").isdigit() for f in numbers):
                raise BidlError(
                    f"{labels}, line {number}: expected '<file> <label> <width> <height>', "
                    f"got {line!r}"
                )
            name = fields[0] if fields[0].endswith(".npz") else Path(fields[0]).with_suffix(".npz")
            width, height = (int(f) for f in fields[2:4]) if len(fields) >= 4 else (254, 254)
            infos.append(
                {
                    "path": str(root / folder / name),
                    "gt_label": int(fields[1]),
                    "extent": (width, height),
                }
            )
        if self.CLASSES is None:
            self.CLASSES = [str(i) for i in range(max(i["gt_label"] for i in infos) + 1)]
        return infos

    def prepare_data(self, idx: int) -> dict:
        info = self.data_infos[idx]
        frames = read_es_imagenet(info["path"], info["extent"], self.source_size)
        if self.size is not None:
            frames = pool_frames(frames, self.size)
        return self.pipeline({"img": frames, "gt_label": info["gt_label"]})


def pool_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Max-pool binary frames ``[..., H, W]`` onto ``size`` (``(h, w)``, dividing H, W)."""
    height, width = frames.shape[-2:]
    h, w = size
    if height % h or width % w:
        raise BidlError(f"ESImagenet: size {size} must divide the frame size {(height, width)}")
    shaped = frames.reshape(*frames.shape[:-2], h, height // h, w, width // w)
    return shaped.max(axis=(-3, -1))
