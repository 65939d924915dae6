"""DigitsDVS: the embedded event-camera digits, its cache and its frames."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from bidl.datasets import DatasetNotFoundError, DigitsDVS, build_dataset, prepare_digits_dvs
from bidl.datasets.digits_dvs import (
    DURATION_US,
    GENERATOR_VERSION,
    cache_problem,
    load_digits_dvs_events,
    saccade_offsets,
    upsample_matrix,
)
from bidl.registry import DATASETS, BidlError

SMALL = 100  # digits in the quick caches


@pytest.fixture(scope="session")
def full_root(tmp_path_factory):
    """All 1797 digits, generated once per session (a few seconds)."""
    return prepare_digits_dvs(tmp_path_factory.mktemp("digits_dvs_full"))


@pytest.fixture(scope="session")
def small_root(tmp_path_factory):
    return prepare_digits_dvs(tmp_path_factory.mktemp("digits_dvs_small"), num_samples=SMALL)


@pytest.fixture(scope="session")
def full_train(full_root):
    return DigitsDVS(str(full_root), auto_prepare=False)


@pytest.fixture(scope="session")
def full_test(full_root):
    return DigitsDVS(str(full_root), auto_prepare=False, test_mode=True)


def small(root, **kwargs):
    return DigitsDVS(str(root), num_samples=SMALL, auto_prepare=False, **kwargs)


# ----------------------------------------------------------------------------- split


def test_split_has_1437_train_and_360_test_samples(full_train, full_test):
    assert (len(full_train), len(full_test)) == (1437, 360)


def test_train_and_test_are_disjoint_and_cover_every_digit(full_train, full_test):
    train = {info["sample_idx"] for info in full_train.data_infos}
    test = {info["sample_idx"] for info in full_test.data_infos}
    assert not train & test
    assert train | test == set(range(1797))


def test_test_split_is_stratified_by_label(full_test):
    counts = np.bincount(full_test.get_gt_labels(), minlength=10)
    assert counts.min() >= 34
    assert counts.max() <= 37


def test_labels_are_the_sklearn_digit_labels(full_test):
    from sklearn.datasets import load_digits

    target = load_digits().target
    for info in full_test.data_infos[:50]:
        assert info["gt_label"] == target[info["sample_idx"]]


# ----------------------------------------------------------------------------- samples


def test_sample_img_is_uint8_time_by_polarity_by_pixels(full_train):
    info = full_train.data_infos[0]
    assert info["img"].shape == (8, 2, 34, 34)
    assert info["img"].dtype == np.uint8
    assert isinstance(info["gt_label"], int)


def test_frames_hold_every_event_of_the_sample(full_test):
    frames = np.stack([info["img"] for info in full_test.data_infos]).astype(np.int64)
    np.testing.assert_array_equal(frames.sum(axis=(1, 2, 3, 4)), full_test.event_counts)


def test_every_sample_has_thousands_of_events_of_both_polarities(full_train):
    assert full_train.event_counts.min() > 2000
    assert full_train.event_counts.max() < 10000
    frames = np.stack([info["img"] for info in full_train.data_infos[:100]])
    on_share = frames[:, :, 1].sum() / frames.sum()
    assert 0.4 < on_share < 0.6


def test_every_time_bin_has_events(full_train):
    frames = np.stack([info["img"] for info in full_train.data_infos[:100]]).astype(np.int64)
    assert frames.sum(axis=(2, 3, 4)).min() > 0


def test_events_stay_inside_the_sensor_and_recording(full_root):
    arrays, _ = load_digits_dvs_events(full_root)
    assert arrays["x"].dtype == np.uint8 and arrays["x"].max() < 34
    assert arrays["y"].max() < 34
    assert arrays["t"].dtype == np.int64
    assert arrays["t"].min() >= 0 and arrays["t"].max() <= DURATION_US
    assert set(np.unique(arrays["p"]).tolist()) == {0, 1}


def test_events_of_each_sample_are_in_time_order(full_root):
    arrays, _ = load_digits_dvs_events(full_root)
    t, offsets = arrays["t"], arrays["offsets"]
    step = np.diff(t)
    boundary = np.zeros(step.size, dtype=bool)
    boundary[offsets[1:-1] - 1] = True
    assert np.all((step >= 0) | boundary)


def test_time_summed_frames_let_a_linear_model_read_the_digit(full_train, full_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def features(ds):
        x = np.stack([info["img"] for info in ds.data_infos]).astype(np.float32).sum(axis=1)
        x = x[:, :, :32, :32].reshape(len(ds), 2, 8, 4, 8, 4).sum(axis=(3, 5))
        return x.reshape(len(ds), -1)

    scaler = StandardScaler().fit(features(full_train))
    model = LogisticRegression(max_iter=2000, C=0.1)
    model.fit(scaler.transform(features(full_train)), full_train.get_gt_labels())
    accuracy = model.predict(scaler.transform(features(full_test))) == full_test.get_gt_labels()
    assert accuracy.mean() >= 0.9


def test_digit_fills_the_middle_of_the_sensor_with_a_margin():
    weights = upsample_matrix(34)
    covered = np.flatnonzero(weights.sum(axis=1) > 0.5)
    assert 24 <= covered.size <= 28
    assert covered.min() >= 3 and covered.max() <= 30
    assert np.abs(saccade_offsets(34)).max() <= 3


def test_saccades_return_to_the_start():
    path = saccade_offsets(34)
    np.testing.assert_allclose(path[0], path[-1])


# ----------------------------------------------------------------------------- integration


def test_timesteps_sets_the_number_of_frames(small_root):
    assert small(small_root, timesteps=5).data_infos[0]["img"].shape == (5, 2, 34, 34)


def test_window_us_integrates_consecutive_windows_from_the_start(small_root):
    arrays, _ = load_digits_dvs_events(small_root)
    ds = small(small_root, timesteps=4, window_us=25_000)
    i = ds.data_infos[0]["sample_idx"]
    t = arrays["t"][arrays["offsets"][i] : arrays["offsets"][i + 1]]
    per_window = ds.data_infos[0]["img"].astype(np.int64).sum(axis=(1, 2, 3))
    expected = np.bincount(t[t < 100_000] // 25_000, minlength=4)
    np.testing.assert_array_equal(per_window, expected)


def test_pipeline_turns_samples_into_tensors(small_root):
    pipeline = [
        dict(type="RandomCropVideo", size=32, padding=2),
        dict(type="ToTensorType", keys=["img"], dtype="float32"),
        dict(type="ToTensor", keys=["gt_label"]),
        dict(type="Collect", keys=["img", "gt_label"]),
    ]
    out = small(small_root, pipeline=pipeline)[0]
    assert out["img"].shape == (8, 2, 32, 32)
    assert out["img"].dtype == torch.float32
    assert out["gt_label"].dtype == torch.int64


def test_evaluate_scores_perfect_predictions_100(small_root):
    ds = small(small_root, test_mode=True)
    scores = np.eye(10)[ds.get_gt_labels()]
    assert ds.evaluate(scores, metric_options=dict(topk=(1,))) == {"accuracy_top-1": 100.0}


# ----------------------------------------------------------------------------- cache


def test_meta_records_seed_size_version_and_counts(small_root):
    meta = json.loads((small_root / "meta.json").read_text())
    assert (meta["seed"], meta["size"], meta["generator_version"]) == (0, 34, GENERATOR_VERSION)
    assert (meta["num_samples"], meta["num_train"], meta["num_test"]) == (SMALL, 80, 20)
    arrays, _ = load_digits_dvs_events(small_root)
    assert meta["num_events"] == arrays["t"].size == arrays["offsets"][-1]


def test_cache_folder_holds_only_events_and_meta(small_root):
    assert sorted(os.listdir(small_root)) == ["events.npz", "meta.json"]


def test_generation_is_deterministic_for_a_seed(tmp_path):
    a, _ = load_digits_dvs_events(prepare_digits_dvs(tmp_path / "a", num_samples=50))
    b, _ = load_digits_dvs_events(prepare_digits_dvs(tmp_path / "b", num_samples=50))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_another_seed_gives_other_events(tmp_path):
    a, _ = load_digits_dvs_events(prepare_digits_dvs(tmp_path / "a", num_samples=50))
    b, _ = load_digits_dvs_events(prepare_digits_dvs(tmp_path / "b", seed=1, num_samples=50))
    assert a["t"].size != b["t"].size or not np.array_equal(a["t"], b["t"])


def test_a_sample_has_the_same_events_whatever_num_samples(small_root, tmp_path):
    big, _ = load_digits_dvs_events(prepare_digits_dvs(tmp_path, num_samples=130))
    few, _ = load_digits_dvs_events(small_root)
    n = few["offsets"][-1]
    for key in "xytp":
        np.testing.assert_array_equal(big[key][:n], few[key])


def test_size_sets_the_sensor(tmp_path):
    ds = DigitsDVS(str(tmp_path), size=20, timesteps=2, num_samples=50)
    assert ds.data_infos[0]["img"].shape == (2, 2, 20, 20)


def test_missing_cache_without_auto_prepare_says_layout_and_command(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as info:
        DigitsDVS(str(root), auto_prepare=False)
    message = str(info.value)
    assert "events.npz" in message and "meta.json" in message
    assert f"bidl data prepare digits_dvs --root {root}" in message


def test_cache_of_another_seed_is_refused_without_auto_prepare(small_root):
    with pytest.raises(DatasetNotFoundError, match=r"seed 0 \(wanted 3\)"):
        DigitsDVS(str(small_root), seed=3, num_samples=SMALL, auto_prepare=False)


def test_missing_cache_is_generated_with_auto_prepare_and_says_so(tmp_path, capsys):
    ds = DigitsDVS(str(tmp_path / "new"), num_samples=50)
    assert len(ds) == 40
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "generating the event cache" in out
    assert (tmp_path / "new" / "meta.json").is_file()


def test_mismatched_cache_is_regenerated_with_auto_prepare(tmp_path):
    prepare_digits_dvs(tmp_path, num_samples=50)
    DigitsDVS(str(tmp_path), seed=2, num_samples=50)
    assert json.loads((tmp_path / "meta.json").read_text())["seed"] == 2


def test_events_without_meta_are_not_trusted(tmp_path):
    prepare_digits_dvs(tmp_path, num_samples=50)
    (tmp_path / "meta.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"meta.json is missing"):
        DigitsDVS(str(tmp_path), num_samples=50, auto_prepare=False)


def test_prepare_keeps_a_matching_cache(tmp_path):
    prepare_digits_dvs(tmp_path, num_samples=50)
    before = (tmp_path / "events.npz").stat().st_mtime_ns
    prepare_digits_dvs(tmp_path, num_samples=50)
    assert (tmp_path / "events.npz").stat().st_mtime_ns == before


def test_prepare_overwrite_regenerates(tmp_path):
    prepare_digits_dvs(tmp_path, num_samples=50)
    (tmp_path / "events.npz").write_bytes(b"broken")
    prepare_digits_dvs(tmp_path, num_samples=50, overwrite=True)
    arrays, _ = load_digits_dvs_events(tmp_path)
    assert arrays["labels"].size == 50


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_events_file_is_one_clear_error(tmp_path, damage):
    prepare_digits_dvs(tmp_path, num_samples=50)
    data = (tmp_path / "events.npz").read_bytes()
    broken = data[: len(data) // 2] if damage == "truncated" else b"x" * 1000
    (tmp_path / "events.npz").write_bytes(broken)
    with pytest.raises(BidlError, match=r"DigitsDVS: cannot read .*events.npz .*regenerate it"):
        load_digits_dvs_events(tmp_path)


# ----------------------------------------------------------------------------- arguments


def test_registered_as_digitsdvs_and_digitsdvs_alias():
    assert DATASETS.get("DigitsDVS") is DigitsDVS
    assert DATASETS.get("DigitsDvs") is DigitsDVS


def test_build_dataset_builds_from_a_config(small_root):
    ds = build_dataset(
        dict(type="DigitsDvs", data_prefix=str(small_root), test_mode=True, timesteps=4),
        default_args=dict(num_samples=SMALL, auto_prepare=False),
    )
    assert isinstance(ds, DigitsDVS)
    assert len(ds) == 20


def test_classes_are_the_ten_digits():
    assert [str(i) for i in range(10)] == DigitsDVS.CLASSES


def test_timesteps_below_one_is_refused(tmp_path):
    with pytest.raises(BidlError, match=r"timesteps must be >= 1, got 0"):
        DigitsDVS(str(tmp_path), timesteps=0)


def test_too_small_size_is_refused(tmp_path):
    with pytest.raises(BidlError, match=r"size must be an int in \[16, 255\], got 8"):
        DigitsDVS(str(tmp_path), size=8)


def test_too_few_samples_is_refused(tmp_path):
    with pytest.raises(
        BidlError, match=r"num_samples must be None \(all 1797\) or an int in \[50, 1797\]"
    ):
        prepare_digits_dvs(tmp_path, num_samples=10)


PREPARE_IN_A_PROCESS = """
import sys
from bidl.datasets.digits_dvs import prepare_digits_dvs
prepare_digits_dvs(sys.argv[1], seed=3, num_samples=60, verbose=True)
"""


def test_two_processes_preparing_one_folder_generate_it_once(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "shared"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", PREPARE_IN_A_PROCESS, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    assert sum(out.count("DigitsDVS: wrote 60 samples") for out, _ in outputs) == 1
    assert sorted(os.listdir(root)) == ["events.npz", "meta.json"]  # the lock file is gone
    assert cache_problem(root, seed=3, num_samples=60) is None


def test_a_preparation_that_waits_too_long_names_the_holder(tmp_path, monkeypatch):
    from bidl import locking

    monkeypatch.setattr(locking, "PREPARE_WAIT_SECONDS", 0.5)
    in_use = pytest.raises(locking.LockError, match=r"the DigitsDVS folder .* is in use by")
    with locking.dataset_lock(tmp_path, "DigitsDVS"), in_use:
        prepare_digits_dvs(tmp_path, num_samples=50)
