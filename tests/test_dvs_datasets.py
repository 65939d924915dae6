"""The DVS datasets read tiny files written in their distributed formats, integrate the
events into frames and cache them."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import random_events, write_aedat2_dvs128, write_aedat31, write_nmnist

from bidl.datasets import DatasetNotFoundError, build_dataset
from bidl.datasets.cifar10_dvs import CIFAR10_CLASSES
from bidl.datasets.dvs_gesture import DVS128Gesture
from bidl.datasets.es_imagenet import read_es_imagenet
from bidl.datasets.events import EventIntegration, denoise
from bidl.datasets.events.formats import make_events
from bidl.registry import BidlError

SEGMENTS = [(1, 0, 1_000_000), (5, 1_000_000, 2_000_000), (11, 2_000_000, 3_000_000)]


def make_gesture_raw(root):
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    recordings = {}
    for seed, name in enumerate(["user01_fluorescent", "user02_lab"]):
        events = random_events(600, t_max=3_000_000, seed=seed)
        write_aedat31(folder / f"{name}.aedat", events)
        rows = "".join(f"{c},{s},{e}\n" for c, s, e in SEGMENTS)
        (folder / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + rows)
        recordings[name] = events
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (folder / "trials_to_test.txt").write_text("user02_lab.aedat\n")
    return recordings


@pytest.fixture(scope="module")
def gesture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("gesture")
    return root, make_gesture_raw(root)


def test_gesture_gives_one_sample_per_labelled_segment(gesture_root):
    root, _ = gesture_root
    dataset = DVS128Gesture(str(root), timesteps=4)
    assert len(dataset) == 3
    assert dataset.get_gt_labels().tolist() == [0, 4, 10]


def test_gesture_frames_count_the_events_of_their_segment(gesture_root):
    root, recordings = gesture_root
    dataset = DVS128Gesture(str(root), timesteps=4, test_mode=True)
    t = recordings["user02_lab"]["t"]
    for info, (_, start, end) in zip(dataset.data_infos, SEGMENTS, strict=True):
        assert info["img"].shape == (4, 2, 128, 128) and info["img"].dtype == np.uint8
        assert int(info["img"].astype(np.int64).sum()) == int(((t >= start) & (t < end)).sum())


def test_gesture_downsampled_to_40_keeps_every_event(gesture_root):
    root, recordings = gesture_root
    dataset = build_dataset(dict(type="DvsGesture", data_prefix=str(root), timesteps=3, size=40))
    img = dataset[0]["img"]
    assert img.shape == (3, 2, 40, 40)
    t = recordings["user01_fluorescent"]["t"]
    assert int(img.astype(np.int64).sum()) == int((t < 1_000_000).sum())


def test_cache_is_reused_without_the_raw_files(tmp_path):
    make_gesture_raw(tmp_path / "raw")
    first = DVS128Gesture(str(tmp_path / "data"), raw_prefix=str(tmp_path / "raw"), timesteps=2)
    for path in (tmp_path / "raw" / "DvsGesture").iterdir():
        path.unlink()
    again = DVS128Gesture(str(tmp_path / "data"), raw_prefix=str(tmp_path / "raw"), timesteps=2)
    np.testing.assert_array_equal(np.asarray(again[1]["img"]), np.asarray(first[1]["img"]))


def test_missing_raw_files_name_the_layout_and_the_prepare_command(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        DVS128Gesture(str(tmp_path / "nowhere"))
    message = str(err.value)
    assert "trials_to_train.txt does not exist" in message
    assert "user01_fluorescent_labels.csv" in message
    assert "bidl data prepare DvsGesture --root" in message


def test_interrupted_cache_build_leaves_no_split_and_a_rerun_completes(tmp_path, monkeypatch):
    make_gesture_raw(tmp_path)
    calls = {"n": 0}
    original = DVS128Gesture.decode

    def failing(self, ref):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, ref)

    monkeypatch.setattr(DVS128Gesture, "decode", failing)
    with pytest.raises(KeyboardInterrupt):
        DVS128Gesture(str(tmp_path), timesteps=2)
    folders = list((tmp_path / "bidl_cache").iterdir())
    assert [p.name for p in folders[0].iterdir()] == []  # no temp files, no meta
    monkeypatch.setattr(DVS128Gesture, "decode", original)
    assert len(DVS128Gesture(str(tmp_path), timesteps=2, auto_prepare=True)) == 3


def test_without_auto_prepare_a_missing_cache_is_an_error(gesture_root):
    root, _ = gesture_root
    with pytest.raises(DatasetNotFoundError, match="no usable cache of split 'train'"):
        DVS128Gesture(str(root), timesteps=7, auto_prepare=False)


def test_malformed_label_csv_names_the_file_and_line(tmp_path):
    make_gesture_raw(tmp_path)
    (tmp_path / "DvsGesture" / "user01_fluorescent_labels.csv").write_text("class,s,e\n12,0,10\n")
    with pytest.raises(
        BidlError, match=r"user01_fluorescent_labels\.csv, line 2: class must be 1\.\.11"
    ):
        DVS128Gesture(str(tmp_path))


def test_cifar10dvs_splits_each_class_by_train_ratio(tmp_path):
    for name in CIFAR10_CLASSES:
        (tmp_path / name).mkdir()
        for i in range(5):
            write_aedat2_dvs128(
                tmp_path / name / f"cifar10_{name}_{i}.aedat", random_events(20, seed=i)
            )
    train = build_dataset(
        dict(type="Cifar10Dvs", data_prefix=str(tmp_path), timesteps=2, train_ratio=0.8)
    )
    test = build_dataset(
        dict(
            type="Cifar10Dvs",
            data_prefix=str(tmp_path),
            timesteps=2,
            train_ratio=0.8,
            test_mode=True,
        )
    )
    assert (len(train), len(test)) == (40, 10)
    assert np.bincount(test.get_gt_labels()).tolist() == [1] * 10
    assert int(test[0]["img"].astype(np.int64).sum()) == 20


def test_dvs_mnist_reads_train_and_test_folders(tmp_path):
    written = {}
    for split in ("Train", "Test"):
        for digit in ("3", "7"):
            (tmp_path / split / digit).mkdir(parents=True)
            events = random_events(50, size=(34, 34), t_max=300_000, seed=int(digit))
            write_nmnist(tmp_path / split / digit / "00001.bin", events)
            written[split, digit] = events
    dataset = build_dataset(
        dict(type="DvsMnist", data_prefix=str(tmp_path), timesteps=5, test_mode=True)
    )
    assert dataset.get_gt_labels().tolist() == [3, 7]
    expected = EventIntegration(5)(
        make_events(*(written["Test", "7"][k] for k in "xytp")), (34, 34)
    )
    np.testing.assert_array_equal(dataset[1]["img"], expected)


def make_npz_folder(root, sensor=(20, 30)):
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            np.savez(root / split / name / "r0.npz", **random_events(40, size=sensor))


def test_dvs_dataset_folder_reads_npz_events_with_one_channel(tmp_path):
    make_npz_folder(tmp_path)
    dataset = build_dataset(
        dict(
            type="DvsDatasetFolder",
            data_prefix=str(tmp_path),
            sensor_size=(20, 30),
            timesteps=3,
            polarity=False,
        )
    )
    assert dataset.CLASSES == ["a", "b"]
    assert dataset[0]["img"].shape == (3, 1, 20, 30)
    assert int(dataset[0]["img"].astype(np.int64).sum()) == 40


def test_events_outside_the_configured_sensor_are_reported(tmp_path):
    make_npz_folder(tmp_path, sensor=(64, 64))
    with pytest.raises(BidlError, match="outside sensor_size"):
        build_dataset(
            dict(type="DvsDatasetFolder", data_prefix=str(tmp_path), sensor_size=(20, 30))
        )


def test_load_events_runs_tonic_augmentations_before_integration(tmp_path):
    make_npz_folder(tmp_path)
    pipeline = [
        dict(type="DropEvent", p=0.5),
        dict(type="SpatialJitter", var_x=1.0, var_y=1.0),
        dict(type="TimeJitter", std=10.0),
        dict(type="EventsToFrames", timesteps=4, size=10),
    ]
    dataset = build_dataset(
        dict(
            type="DvsDatasetFolder",
            data_prefix=str(tmp_path),
            sensor_size=(20, 30),
            load_events=True,
            pipeline=pipeline,
        )
    )
    np.random.seed(0)
    sample = dataset[0]
    assert sample["img"].shape == (4, 2, 10, 10)
    assert 0 < int(sample["img"].astype(np.int64).sum()) < 40
    assert "events" not in sample


def test_count_frames_hold_equal_shares_of_the_events():
    events = make_events(np.zeros(12), np.zeros(12), np.arange(12) ** 2, np.ones(12))
    frames = EventIntegration(3, frame_by="count")(events, (4, 4))
    assert frames.sum(axis=(1, 2, 3)).tolist() == [4, 4, 4]


def test_binary_frames_clip_counts_to_one():
    events = make_events(np.zeros(5), np.zeros(5), np.arange(5), np.ones(5))
    assert EventIntegration(1, binary=True)(events, (2, 2)).max() == 1


def test_denoise_drops_isolated_events_and_keeps_supported_ones():
    events = make_events([5, 6, 20], [5, 5, 20], [0, 100, 150], [1, 1, 1])
    kept = denoise(events, 1000, (32, 32))
    assert kept["x"].tolist() == [6]


def test_es_imagenet_file_becomes_binary_frames(tmp_path):
    """Placed as the dataset's own loader places events: a full-size (254 x 254) sample
    sits 16 pixels into the kept 224 crop; channel 0 is pos (ON)."""
    pos = np.array([[16, 16, 1], [20, 30, 8], [15, 100, 2]])  # the last falls off the crop
    neg = np.array([[100, 40, 3]])
    np.savez(tmp_path / "a.npz", pos=pos, neg=neg)
    frames = read_es_imagenet(tmp_path / "a.npz", (254, 254), source_size=254, size=224)
    assert frames.shape == (8, 2, 224, 224) and frames.sum() == 3
    assert frames[0, 0, 0, 0] == 1 and frames[7, 0, 4, 14] == 1 and frames[2, 1, 84, 24] == 1


def test_es_imagenet_centres_a_smaller_sample_by_its_width_and_height(tmp_path):
    np.savez(tmp_path / "b.npz", pos=np.array([[0, 0, 1]]), neg=np.zeros((0, 3)))
    frames = read_es_imagenet(tmp_path / "b.npz", (200, 100))
    # u: (254 - 200) // 2 - 16 = 11, v: (254 - 100) // 2 - 16 = 61
    assert frames[0, 0, 11, 61] == 1 and frames.sum() == 1


def test_es_imagenet_dataset_reads_the_label_file(tmp_path):
    (tmp_path / "val").mkdir()
    np.savez(tmp_path / "val" / "x1.npz", pos=np.array([[20, 20, 1]]), neg=np.zeros((0, 3)))
    (tmp_path / "vallabel.txt").write_text("x1.JPEG 7 120 160\n")  # the published line format
    dataset = build_dataset(
        dict(type="ESImagenet", data_prefix=str(tmp_path), test_mode=True, size=56)
    )
    sample = dataset[0]
    assert (
        sample["gt_label"] == 7
        and sample["img"].shape == (8, 2, 56, 56)
        and sample["img"].sum() == 1
    )


def test_cifar10dvs_turns_events_as_tonic_and_spikingjelly_read_them(tmp_path):
    """One ON event written at address (x=10, y=3) lands at x = 127 - 3, y = 127 - 10 in
    the OFF channel (the recordings' orientation, polarity inverted, as the field reads it)."""
    for name in CIFAR10_CLASSES:
        (tmp_path / name).mkdir()
        one = {k: np.array([v]) for k, v in dict(x=10, y=3, t=5, p=1).items()}
        for i in range(2):  # the first trains, the second tests
            write_aedat2_dvs128(tmp_path / name / f"cifar10_{name}_{i}.aedat", one)
    dataset = build_dataset(
        dict(type="Cifar10Dvs", data_prefix=str(tmp_path), timesteps=1, train_ratio=0.5)
    )
    frames = np.asarray(dataset[0]["img"])
    assert frames.shape == (1, 2, 128, 128) and frames.sum() == 1
    assert frames[0, 0, 127 - 10, 127 - 3] == 1
