"""``bidl data prepare NAME`` builds every split's cache; ``bidl data convert`` migrates
BIDL's pickles only with an explicit opt-in."""

from __future__ import annotations

import pickle

import numpy as np
from test_dvs_datasets import make_gesture_raw

from bidl.cli import main
from bidl.datasets.legacy import legacy_infos, read_bidl_npz


def test_prepare_builds_both_splits_and_prints_a_summary(tmp_path, capsys):
    make_gesture_raw(tmp_path / "raw")
    argv = [
        "data",
        "prepare",
        "DvsGesture",
        "--root",
        str(tmp_path / "data"),
        "--raw",
        str(tmp_path / "raw"),
    ]
    assert main([*argv, "--set", "timesteps=4", "size=32"]) == 0
    out = capsys.readouterr().out
    assert "train: 3 samples of [4x2x32x32] uint8" in out
    assert "test: 3 samples of [4x2x32x32] uint8" in out
    assert "hand_clapping: 1" in out
    assert len(list((tmp_path / "data" / "bidl_cache").glob("*/train_img.npy"))) == 1


def test_prepare_without_raw_files_fails_with_the_layout(tmp_path, capsys):
    assert main(["data", "prepare", "Cifar10Dvs", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "class folder" in err and "airplane/cifar10_airplane_0.aedat" in err


def write_bidl_pickle(path):
    frames = (np.random.default_rng(0).random((3, 2, 2, 4, 4)) < 0.5).astype(np.uint8)
    dats = [np.packbits(f) for f in frames]
    path.write_bytes(pickle.dumps({"dats": dats, "lbls": [0, 1, 1], "shape": (2, 2, 4, 4)}))
    return frames


def test_convert_refuses_a_pickle_without_opt_in(tmp_path, capsys):
    write_bidl_pickle(tmp_path / "train.pkl")
    assert main(["data", "convert", str(tmp_path / "train.pkl")]) == 1
    assert "loading it runs code" in capsys.readouterr().err
    assert not (tmp_path / "train.npz").exists()


def test_converted_npz_unpacks_to_the_original_frames(tmp_path):
    frames = write_bidl_pickle(tmp_path / "train.pkl")
    assert main(["data", "convert", str(tmp_path / "train.pkl"), "--allow-pickle"]) == 0
    infos = legacy_infos(read_bidl_npz(tmp_path / "train.npz"))
    assert [i["gt_label"] for i in infos] == [0, 1, 1]
    unpacked = np.unpackbits(infos[2]["img"], count=frames[2].size).reshape(infos[2]["pack"])
    np.testing.assert_array_equal(unpacked, frames[2])
