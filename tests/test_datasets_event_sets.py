"""N-Caltech101, N-CARS, ASL-DVS, SHD / SSC, GEN1 and the tonic adapter, each read from
small files written in its distributed layout: samples equal the integration of the
events written, labels follow the folders or files, and `bidl list datasets` names them."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import random_events, write_dat, write_nmnist

from bidl.cli import main
from bidl.datasets import build_dataset
from bidl.datasets.events import EventIntegration, make_events
from bidl.datasets.spiking_audio import bin_spikes
from bidl.registry import BidlError

h5py = pytest.importorskip("h5py")


def frames_of(events, sensor, size, timesteps=4):
    events = make_events(events["x"], events["y"], events["t"], events["p"])
    return EventIntegration(timesteps, size=size)(events, sensor)


def test_ncaltech101_reads_class_folders_of_bin_files(tmp_path):
    written = {}
    for c, name in enumerate(["accordion", "airplanes"]):
        folder = tmp_path / "raw" / "Caltech101" / name
        folder.mkdir(parents=True)
        for i in range(1, 6):
            events = random_events(60, size=(180, 240), t_max=300_000, seed=10 * c + i)
            write_nmnist(folder / f"image_{i:04d}.bin", events)
            written[(c, i)] = events
    common = dict(data_prefix=str(tmp_path), raw_prefix=str(tmp_path / "raw"), timesteps=4)
    train = build_dataset(dict(type="NCaltech101", train_ratio=0.6, size=(45, 60), **common))
    test = build_dataset(
        dict(type="NCaltech101", train_ratio=0.6, size=(45, 60), test_mode=True, **common)
    )
    assert (len(train), len(test)) == (6, 4)
    assert train.CLASSES == ["accordion", "airplanes"]
    np.testing.assert_array_equal(test.get_gt_labels(), [0, 0, 1, 1])
    np.testing.assert_array_equal(test[2]["img"], frames_of(written[(1, 4)], (180, 240), (45, 60)))


def test_ncars_reads_dat_files_of_both_classes(tmp_path):
    written = {}
    for split in ("train", "test"):
        for c, name in enumerate(["background", "cars"]):
            folder = tmp_path / f"n-cars_{split}" / name
            folder.mkdir(parents=True)
            for i in range(2):
                events = random_events(
                    80, size=(100, 120), t_max=100_000, seed=hash((split, c, i)) % 1000
                )
                write_dat(folder / f"obj_{i:06d}_td.dat", events, size=(100, 120))
                written[(split, c, i)] = events
    test = build_dataset(dict(type="NCars", data_prefix=str(tmp_path), timesteps=4, test_mode=True))
    np.testing.assert_array_equal(test.get_gt_labels(), [0, 0, 1, 1])
    np.testing.assert_array_equal(
        test[3]["img"], frames_of(written[("test", 1, 1)], (100, 120), None)
    )


def test_asl_dvs_reads_mat_files_with_rows_turned_upright(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    written = {}
    for c, letter in enumerate("ab"):
        (tmp_path / letter).mkdir()
        for i in range(1, 6):
            events = random_events(50, size=(180, 240), t_max=200_000, seed=c * 10 + i)
            columns = {
                "x": events["x"].reshape(-1, 1).astype(np.int32),
                "y": events["y"].reshape(-1, 1).astype(np.int32),
                "ts": events["t"].reshape(-1, 1).astype(np.int64),
                "pol": events["p"].reshape(-1, 1).astype(np.uint8),
            }
            scipy_io.savemat(tmp_path / letter / f"{letter}_{i:04d}.mat", columns)
            written[(c, i)] = events
    test = build_dataset(
        dict(type="AslDvs", data_prefix=str(tmp_path), timesteps=4, test_mode=True)
    )
    assert test.CLASSES == ["a", "b"] and len(test) == 2
    turned = dict(written[(1, 5)])
    turned["y"] = 179 - turned["y"]
    np.testing.assert_array_equal(test[1]["img"], frames_of(turned, (180, 240), None))


def write_spiking_audio(path, samples, labels, keys):
    """spikes/times (vlen float32, seconds), spikes/units (vlen uint16), labels (uint16),
    extra/keys: the SHD / SSC layout."""
    with h5py.File(path, "w") as handle:
        times = handle.create_dataset(
            "spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32)
        )
        units = handle.create_dataset(
            "spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16)
        )
        for i, (t, u) in enumerate(samples):
            times[i], units[i] = t.astype(np.float32), u.astype(np.uint16)
        handle.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        handle.create_dataset("extra/keys", data=np.array(keys, dtype="S"))


def audio_samples(n, seed):
    rng = np.random.default_rng(seed)
    return [(np.sort(rng.random(300) * 1.2), rng.integers(0, 700, 300)) for _ in range(n)]


def test_shd_bins_the_spikes_of_700_channels(tmp_path):
    keys = [f"english-{i}" for i in range(10)] + [f"german-{i}" for i in range(10)]
    train, test = audio_samples(6, 1), audio_samples(4, 2)
    write_spiking_audio(tmp_path / "shd_train.h5", train, [0, 1, 2, 3, 4, 19], keys)
    write_spiking_audio(tmp_path / "shd_test.h5", test, [5, 6, 7, 19], keys)
    data = build_dataset(
        dict(type="SHD", data_prefix=str(tmp_path), timesteps=50, duration_s=1.0, test_mode=True)
    )
    assert keys == data.CLASSES and len(data) == 4
    np.testing.assert_array_equal(data.get_gt_labels(), [5, 6, 7, 19])
    times, units = test[3]
    img = data[3]["img"]
    assert img.shape == (50, 700)
    inside = times.astype(np.float32).astype(np.float64) < 1.0
    assert img.sum() == inside.sum()  # spikes after 1 s are left out
    np.testing.assert_array_equal(img, bin_spikes(times.astype(np.float32), units, 50, 1.0))


def test_bin_spikes_counts_per_bin_and_channel():
    counts = bin_spikes([0.0, 0.05, 0.099, 0.1, 2.0], [3, 3, 699, 3, 1], 10, 1.0)
    assert counts[0, 3] == 2 and counts[0, 699] == 1 and counts[1, 3] == 1
    assert counts.sum() == 4
    with pytest.raises(BidlError, match=r"units must be in \[0, 700\)"):
        bin_spikes([0.1], [700], 10, 1.0)


def test_ssc_has_a_validation_split(tmp_path):
    keys = [f"w{i}" for i in range(35)]
    for split, seed in (("train", 1), ("valid", 2), ("test", 3)):
        write_spiking_audio(tmp_path / f"ssc_{split}.h5", audio_samples(2, seed), [0, 34], keys)
    val = build_dataset(dict(type="SSC", data_prefix=str(tmp_path), timesteps=20, split="val"))
    assert len(val) == 2 and keys == val.CLASSES


def test_gen1_yields_events_and_boxes(tmp_path):
    folder = tmp_path / "val"
    folder.mkdir()
    events = random_events(2000, size=(240, 304), t_max=2_000_000, seed=5)
    write_dat(folder / "rec_a_td.dat", events, size=(240, 304))
    box_dtype = [("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                 ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")]  # fmt: skip
    boxes = np.array(
        [(500_000, 10, 20, 30, 40, 0, 1, 1), (500_000, 50, 60, 20, 20, 1, 1, 2),
         (1_500_000, 12, 22, 30, 40, 0, 1, 1)], dtype=box_dtype,
    )  # fmt: skip
    np.save(folder / "rec_a_bbox.npy", boxes)
    whole = build_dataset(
        dict(type="Gen1Detection", data_prefix=str(tmp_path), split="val", load_events=True)
    )
    sample = whole[0]
    assert len(whole) == 1 and len(sample["events"]) == 2000 and len(sample["boxes"]) == 3
    windows = build_dataset(
        dict(
            type="Gen1Detection",
            data_prefix=str(tmp_path),
            split="val",
            window_us=50_000,
            load_events=True,
        )
    )
    assert len(windows) == 2
    first = windows[0]
    expected = (events["t"] >= 450_000) & (events["t"] < 500_000)
    np.testing.assert_array_equal(first["events"]["t"], events["t"][expected])
    np.testing.assert_array_equal(first["events"]["x"], events["x"][expected])
    assert first["boxes"]["class_id"].tolist() == [0, 1]


class FakeTonicDataset:
    """Built like a tonic dataset: (events, target) pairs, sensor_size (W, H, P), classes."""

    sensor_size = (40, 30, 2)
    classes = ["left", "right"]
    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])

    def __init__(self):
        self.samples = []
        for i in range(4):
            raw = random_events(100, size=(30, 40), seed=i)
            events = np.empty(100, self.dtype)
            for k in "xytp":
                events[k] = raw[k]
            self.samples.append((events, i % 2))
        self.targets = [t for _, t in self.samples]

    def __getitem__(self, index):
        return self.samples[index]

    def __len__(self):
        return len(self.samples)


def test_tonic_dataset_objects_become_bidl_datasets():
    tonic_like = FakeTonicDataset()
    data = build_dataset(dict(type="TonicDataset", dataset=tonic_like, timesteps=4))
    assert data.CLASSES == ["left", "right"] and len(data) == 4
    np.testing.assert_array_equal(data.get_gt_labels(), [0, 1, 0, 1])
    events, _ = tonic_like[2]
    np.testing.assert_array_equal(data[2]["img"], frames_of(events, (30, 40), None))
    raw = build_dataset(dict(type="TonicDataset", dataset=tonic_like, load_events=True))
    assert raw[1]["events"].size == 100 and raw[1]["sensor_size"] == (30, 40)


def test_bidl_list_datasets_names_the_new_sets(capsys):
    assert main(["list", "datasets"]) == 0
    listed = capsys.readouterr().out
    for name in ("NCaltech101", "NCars", "AslDvs", "SHD", "SSC", "Gen1Detection", "TonicDataset"):
        assert f"\n{name}  " in f"\n{listed}", name
