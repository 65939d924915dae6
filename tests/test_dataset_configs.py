"""The shipped config of each data family, shrunk by --cfg-options, builds its dataset from
tiny files written in the real format and trains two epochs; a user's own dataset file
loads through the config's custom_imports."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from format_writers import (
    random_events,
    write_aedat2_dvs128,
    write_dat,
    write_idx,
    write_jpeg_frames,
    write_nmnist,
)
from test_datasets_event_sets import audio_samples, write_spiking_audio
from test_dvs_datasets import make_gesture_raw
from test_frame_text_datasets import make_jester
from test_image_folder import write_images

from bidl.config import _PROJECT_CONFIGS, list_configs, load_config
from bidl.datasets import build_dataset
from bidl.datasets.cifar10_dvs import CIFAR10_CLASSES
from bidl.engine import train_model
from bidl.registry import BidlError


def shipped(name: str, root, backbone: dict, splits: dict, **options) -> tuple[str, dict]:
    """The shipped config ``name`` with --cfg-options that read the data from ``root`` in
    batches of 4 without workers for 2 epochs, and set ``backbone`` keys and the dataset
    keywords ``splits`` of train, val and test (``options``: any other key)."""
    merged = {
        "data.samples_per_gpu": 4,
        "data.workers_per_gpu": 0,
        "runner.max_epochs": 2,
        "log_config.interval": 1,
        "log_level": "WARNING",
        **{f"model.backbone.{key}": value for key, value in backbone.items()},
    }
    for split in ("train", "val", "test"):
        merged.update(
            {
                f"data.{split}.{key}": value
                for key, value in dict(splits, data_prefix=str(root)).items()
            }
        )
    return name, {**merged, **options}


def dvs_gesture(root):
    make_gesture_raw(root)  # AEDAT 3.1 recordings, label csv files, trial lists
    return shipped(
        "clif3flif2dg_itout-b16x1-dvsgesture",
        root,
        backbone=dict(timestep=4, h=16, w=16),
        splits=dict(timesteps=4, size=16),
        **{"data.train.pipeline.0.size": 16, "data.samples_per_gpu": 3},  # 3 training samples
    )


def mnist(root):
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    for prefix in ("train", "t10k"):  # the IDX files
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(8, dtype=np.uint8) % 10)
    return shipped(
        "clif3fc3mnrate_itout-b128x1-mnist",
        root,
        backbone=dict(timestep=4),
        splits={"encoder.timesteps": 4},
    )


def jester(root):
    make_jester(root)  # JPEG frame folders and the Jester csv files
    return shipped(
        "resnetlif18-itout-b16x4-8-jester",
        root,
        backbone=dict(timestep=3, h=16, w=16, stem_channels=8, base_channels=8, nclass=10),
        splits={"pipeline.0.num_frames": 3, "pipeline.0.size": 16},
        **{"data.train.pipeline.1.size": 16, "data.train.pipeline.1.padding": 2},
    )


def luna(root, name="clif3fc3lc_itout-b16x1-luna16cls"):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("0", "1"):  # CT patches as .npy volumes
            (root / split / label).mkdir(parents=True)
            for i in range(2):
                volume = rng.normal(-500, 300, (6, 20, 20)).astype(np.float32)
                np.save(root / split / label / f"{i}.npy", volume)
    return shipped(
        name,
        root,
        backbone=dict(timestep=4, h=16, w=16),
        splits=dict(timesteps=4, size=16),
        **{"data.train.pipeline.0.size": 16},
    )


def luna32(root):
    return luna(root, "clif3fc3lc_itout-b16x1-luna16cls32")


def imdb(root):
    for split in ("train", "test"):
        for label in ("pos", "neg"):  # aclImdb text reviews
            (root / "aclImdb" / split / label).mkdir(parents=True)
            for i in range(3):
                (root / "aclImdb" / split / label / f"{i}_1.txt").write_text(f"{label} movie {i}")
    return shipped(
        "fasttext-b16x1-imdb",
        root,
        backbone=dict(timestep=10, vocab_size=50, embedding_dim=8, hidden_dim=16),
        splits=dict(timesteps=10, vocab_size=50),
    )


def cifar10dvs(root):
    for name in CIFAR10_CLASSES:  # jAER AEDAT 2.0 recordings, one folder per class
        (root / name).mkdir()
        for i in range(2):
            write_aedat2_dvs128(
                root / name / f"cifar10_{name}_{i}.aedat", random_events(60, seed=i)
            )
    return shipped(
        "clif5fc2cd_itout-b64x1-cifar10dvs",
        root,
        backbone=dict(timestep=3, h=64, w=64),
        splits=dict(timesteps=3, size=64, train_ratio=0.5),
        **{"data.train.pipeline.0.size": 64, "data.train.pipeline.0.padding": 4},
    )


def dvs_mnist(root):
    for split in ("Train", "Test"):  # N-MNIST .bin files of 40-bit event records
        for digit in ("0", "1", "2"):
            (root / split / digit).mkdir(parents=True)
            for i in range(2):
                events = random_events(80, size=(34, 34), t_max=300_000, seed=10 * int(digit) + i)
                write_nmnist(root / split / digit / f"{i:05d}.bin", events)
    return shipped(
        "clif3fc3dm_itout-b16x1-dvsmnist", root, backbone=dict(timestep=4), splits=dict(timesteps=4)
    )


def rgbgesture(root):
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):  # folders of JPEG frames per split/class/clip
        for gesture in ("wave", "push"):
            for clip in range(2):
                frames = rng.integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)
                write_jpeg_frames(root / split / gesture / f"clip{clip}", frames)
    return shipped(
        "clif3flif2rg_itout-b16x1-rgbgesture",
        root,
        backbone=dict(timestep=4, h=16, w=16),
        splits=dict(timesteps=4, shape=16),
        **{"data.train.pipeline.0.size": 16},
    )


def es_imagenet(root):
    rng = np.random.default_rng(0)
    for folder, labels in (("train", "trainlabel.txt"), ("val", "vallabel.txt")):
        (root / folder).mkdir()
        rows = []
        for i in range(4):  # pos/neg events (x, y, t = 1..8) in the 254-pixel frame
            pos, neg = (
                np.column_stack([rng.integers(0, 254, (50, 2)), rng.integers(1, 9, 50)])
                for _ in range(2)
            )
            np.savez(root / folder / f"n{i}_{folder}.npz", pos=pos, neg=neg)
            rows.append(f"n{i}_{folder}.JPEG {i % 3} 254 254\n")
        (root / labels).write_text("".join(rows))
    return shipped(
        "resnetlif18-itout-b64x4-esimagenet",
        root,
        backbone=dict(h=16, w=16, stem_channels=8, base_channels=8, low_resolut=True, nclass=10),
        splits=dict(size=16),
        **{"data.train.pipeline.0.size": 16, "data.train.pipeline.0.padding": 2},
    )


def event_frames(name, root, size, **splits):
    """A SeqClif3Fc3DmItout config shrunk to 3 frames of ``size`` pixels."""
    return shipped(
        name,
        root,
        backbone=dict(timestep=3, h=size[0], w=size[1]),
        splits=dict(timesteps=3, size=size, **splits),
        **{"data.train.pipeline.0.size": size, "data.train.pipeline.0.padding": 1},
    )


def ncaltech101(root):
    for c, name in enumerate(["accordion", "airplanes"]):  # .bin files of 40-bit records
        folder = root / "Caltech101" / name
        folder.mkdir(parents=True)
        for i in range(1, 5):
            events = random_events(60, size=(180, 240), t_max=300_000, seed=10 * c + i)
            write_nmnist(folder / f"image_{i:04d}.bin", events)
    return event_frames("clif3fc3dm_itout-b16x1-ncaltech101", root, (18, 24), train_ratio=0.5)


def ncars(root):
    for split in ("train", "test"):  # Prophesee .dat recordings per class
        for c, name in enumerate(["background", "cars"]):
            folder = root / f"n-cars_{split}" / name
            folder.mkdir(parents=True)
            for i in range(2):
                events = random_events(80, size=(100, 120), t_max=100_000, seed=4 * c + i)
                write_dat(folder / f"obj_{i:06d}_td.dat", events, size=(100, 120))
    return event_frames("clif3fc3dm_itout-b16x1-ncars", root, (20, 24))


def asl_dvs(root):
    scipy_io = pytest.importorskip("scipy.io")
    for c, letter in enumerate("ab"):  # MATLAB files of x, y, ts, pol columns per letter
        (root / letter).mkdir()
        for i in range(1, 4):
            events = random_events(50, size=(180, 240), t_max=200_000, seed=10 * c + i)
            columns = {key: events[k].reshape(-1, 1) for key, k in
                       (("x", "x"), ("y", "y"), ("ts", "t"), ("pol", "p"))}  # fmt: skip
            scipy_io.savemat(root / letter / f"{letter}_{i:04d}.mat", columns)
    return event_frames("clif3fc3dm_itout-b16x1-asldvs", root, (18, 24), **{"train_ratio": 0.67})


def spiking_audio(root, name, prefix, splits, nclass):
    keys = [f"class-{i}" for i in range(nclass)]
    for seed, split in enumerate(splits):  # HDF5 spike trains of 700 channels
        write_spiking_audio(
            root / f"{prefix}_{split}.h5", audio_samples(4, seed), [0, 1, 2, nclass - 1], keys
        )
    return shipped(
        name,
        root,
        backbone=dict(timestep=10, hidden=[16]),
        splits=dict(timesteps=10),
    )


def shd(root):
    return spiking_audio(root, "fclifmlp_itout-b32x1-shd", "shd", ("train", "test"), 20)


def ssc(root):
    return spiking_audio(root, "fclifmlp_itout-b32x1-ssc", "ssc", ("train", "valid", "test"), 35)


def cifar10_images(root):
    classes = ["airplane", "cat"]  # image files in split/class folders
    write_images(root, "train", classes, per_class=2, suffix=".png", size=(20, 20))
    write_images(root, "test", classes, per_class=1, suffix=".png", size=(20, 20))
    return shipped(
        "spikformer_4_384-b128x4-cifar10",
        root,
        backbone=dict(timestep=2, h=16, w=16, depth=1, embed_dim=32, num_heads=4),
        splits=dict(timesteps=2, size=16),
        # mixup is off: its soft targets crash LabelSmoothLoss (a separate defect)
        **{"data.train.pipeline.0.size": 16, "data.train.pipeline.0.padding": 2, "mixup": None},
    )


BABI_STORY = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the garden.
5 Where is Daniel? \tgarden\t4
1 Sandra journeyed to the office.
2 Where is Sandra? \toffice\t1
3 John travelled to the kitchen.
4 Where is John? \tkitchen\t3
"""


def babi(root):
    folder = root / "tasks_1-20_v1-2" / "en"  # bAbI v1.2 task files, numbered lines
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text(BABI_STORY)
    return shipped(
        "fasttext-b32x1-babi",
        root,
        backbone=dict(timestep=24, vocab_size=40, embedding_dim=8, hidden_dim=16),
        splits=dict(timesteps=24),
    )


FAMILIES = [
    dvs_gesture,
    mnist,
    jester,
    luna,
    luna32,
    imdb,
    cifar10dvs,
    dvs_mnist,
    rgbgesture,
    es_imagenet,
    babi,
    ncaltech101,
    ncars,
    asl_dvs,
    shd,
    ssc,
    cifar10_images,
]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_family_config_trains_two_epochs(tmp_path, family):
    root = tmp_path / "data"
    root.mkdir()
    config, options = family(root)
    work = tmp_path / "work"
    metrics = train_model(str(config), work_dir=str(work), cfg_options=options, device="cpu")
    assert "accuracy_top-1" in metrics
    assert (work / "epoch_2.pth").is_file()


def test_every_dataset_of_the_shipped_configs_is_trained_above(tmp_path):
    shipped_types = {
        load_config(path).data.train.type
        for path in list_configs().values()
        if path.resolve().is_relative_to(_PROJECT_CONFIGS.resolve())
    }
    trained = set()
    for family in FAMILIES:
        root = tmp_path / family.__name__
        root.mkdir()
        trained.add(load_config(family(root)[0]).data.train.type)
    # DigitsDVS is generated by bidl (tests/test_digits_dvs.py); generating even its
    # smallest set takes about half a minute here. The detection sets: DigitsDVSDet trains
    # through the CLI in tests/test_detection_engine.py; Gen1Detection's samples are checked
    # on files in GEN1's layout (tests/test_gen1_detection.py), but its configs (11 steps of
    # 256x320 histograms into YOLOv5) take minutes a step on this CPU and are not trained
    assert shipped_types - trained == {"DigitsDVS", "DigitsDVSDet", "Gen1Detection"}


MY_DATASET = """
import numpy as np
from bidl.datasets import BaseDataset
from bidl.registry import DATASETS

@DATASETS.register_module(force=True)
class MyOwnDataset(BaseDataset):
    CLASSES = ["a", "b"]
    def load_annotations(self):
        return [{"img": np.full((2, 1, 3, 3), i, np.uint8), "gt_label": i % 2} for i in range(5)]
"""


def test_custom_imports_loads_a_dataset_file_beside_the_config(tmp_path):
    (tmp_path / "my_dataset.py").write_text(textwrap.dedent(MY_DATASET))
    config = tmp_path / "mine.py"
    config.write_text(
        "custom_imports = dict(imports=['my_dataset'], allow_failed_imports=False)\n"
        "model = dict(type='ImageClassifier')\n"
        "data = dict(train=dict(type='MyOwnDataset', data_prefix='unused'))\n"
    )
    cfg = load_config(str(config))
    dataset = build_dataset(cfg.data.train)
    assert len(dataset) == 5 and dataset[3]["img"][0, 0, 0, 0] == 3


def test_two_projects_with_a_same_named_module_both_load_in_one_process(tmp_path):
    # a notebook that loads one project's config, then another's: each gets its own file
    for project, name in (("one", "FirstOwnSet"), ("two", "SecondOwnSet")):
        folder = tmp_path / project
        folder.mkdir()
        own = textwrap.dedent(MY_DATASET).replace("class MyOwnDataset", f"class {name}")
        (folder / "my_dataset.py").write_text(own)
        (folder / "mine.py").write_text(
            "custom_imports = dict(imports=['my_dataset'])\n"
            "model = dict(type='ImageClassifier')\n"
            f"data = dict(train=dict(type='{name}', data_prefix='unused'))\n"
        )
        assert len(build_dataset(load_config(str(folder / "mine.py")).data.train)) == 5


def test_custom_imports_accepts_a_relative_py_path(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "own.py").write_text(textwrap.dedent(MY_DATASET))
    config = tmp_path / "mine.py"
    config.write_text(
        "custom_imports = dict(imports=['plugins/own.py'])\n"
        "model = dict(type='ImageClassifier')\n"
        "data = dict(train=dict(type='MyOwnDataset', data_prefix='unused'))\n"
    )
    assert len(build_dataset(load_config(str(config)).data.train)) == 5


def test_custom_imports_of_a_missing_module_says_where_it_looked(tmp_path):
    config = tmp_path / "mine.py"
    config.write_text(
        "custom_imports = dict(imports=['not_there'])\nmodel = dict()\ndata = dict()\n"
    )
    with pytest.raises(
        BidlError, match=r"custom_imports cannot find 'not_there'.*relative to the config's folder"
    ):
        load_config(str(config))
