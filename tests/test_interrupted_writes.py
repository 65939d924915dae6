"""An interrupted ``bidl data prepare`` (an exception in the writer, or SIGKILL mid-write) and
an interrupted ``bidl compile`` (an exception while the graph is written) leave nothing that a
later run trusts, and a rerun succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_dvs_datasets import make_gesture_raw

from bidl import fileio
from bidl.cli import main
from bidl.datasets.base import DatasetNotFoundError
from bidl.datasets.dvs_gesture import DVS128Gesture

TESTS = Path(__file__).resolve().parent
OPTIONS = dict(timesteps=3, size=16)


def prepare_argv(root: Path) -> list[str]:
    return ["data", "prepare", "DvsGesture", "--root", str(root / "data"), "--raw",
            str(root / "raw"), "--set", "timesteps=3", "size=16"]  # fmt: skip


def gesture(root: Path, split="train", auto_prepare=False) -> DVS128Gesture:
    return DVS128Gesture(
        str(root / "data"),
        raw_prefix=str(root / "raw"),
        split=split,
        auto_prepare=auto_prepare,
        **OPTIONS,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Both splits of a cache built without interruption: {split: (images, labels)}."""
    root = tmp_path_factory.mktemp("ref")
    make_gesture_raw(root / "raw")
    assert main(prepare_argv(root)) == 0
    return {
        split: (np.stack([i["img"] for i in d.data_infos]), d.get_gt_labels())
        for split in ("train", "test")
        for d in [gesture(root, split)]
    }


def assert_not_trusted_then_rerun(root: Path, reference) -> None:
    """A later run refuses the interrupted split; a rerun of prepare rebuilds both splits
    equal to the reference and leaves no temporary file."""
    with pytest.raises(DatasetNotFoundError, match="no usable cache of split 'train'"):
        gesture(root)
    assert main(prepare_argv(root)) == 0
    for split, (images, labels) in reference.items():
        dataset = gesture(root, split)
        np.testing.assert_array_equal(np.stack([i["img"] for i in dataset.data_infos]), images)
        np.testing.assert_array_equal(dataset.get_gt_labels(), labels)
    assert list((root / "data" / "bidl_cache").rglob("*.tmp")) == []


def test_prepare_failing_between_the_image_and_label_renames(
    tmp_path, monkeypatch, capsys, reference
):
    make_gesture_raw(tmp_path / "raw")
    renames = []
    original = fileio._commit

    def failing(tmp, path, mode):
        renames.append(Path(path).name)
        if Path(path).name == "train_img.npy":
            raise OSError(28, "No space left on device")  # the labels are renamed already
        original(tmp, path, mode)

    monkeypatch.setattr(fileio, "_commit", failing)
    assert main(prepare_argv(tmp_path)) == 1  # one clear error, no traceback
    assert "train_img.npy': No space left on device" in capsys.readouterr().err
    monkeypatch.setattr(fileio, "_commit", original)
    assert renames == ["train_label.npy", "train_img.npy"]
    folder = next((tmp_path / "data" / "bidl_cache").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["train_label.npy"]  # no meta, no temp
    assert_not_trusted_then_rerun(tmp_path, reference)


KILLER = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from bidl.cli import main
from bidl.datasets import cache
from bidl.datasets.dvs_gesture import DVS128Gesture

where = {where!r}
if where == "images":  # on the second sample: the image file is half written
    calls = []
    decode = DVS128Gesture.decode
    def dying(self, ref):
        calls.append(ref)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return decode(self, ref)
    DVS128Gesture.decode = dying
else:  # both arrays renamed into place, the meta not yet written
    def dying(path, data):
        os.kill(os.getpid(), signal.SIGKILL)
    cache.write_bytes_atomic = dying
main({argv!r})
"""


@pytest.mark.parametrize("where", ["images", "meta"])
def test_prepare_killed_mid_write(tmp_path, where, reference):
    make_gesture_raw(tmp_path / "raw")
    script = KILLER.format(tests=str(TESTS), where=where, argv=prepare_argv(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    folder = next((tmp_path / "data" / "bidl_cache").iterdir())
    left = sorted(p.name for p in folder.iterdir())
    if where == "images":
        assert [name.startswith(".train_") and name.endswith(".tmp") for name in left] == [
            True,
            True,
        ]
    else:
        assert left == ["train_img.npy", "train_label.npy"]
    assert_not_trusted_then_rerun(tmp_path, reference)


# --- bidl compile ---------------------------------------------------------------------


@pytest.fixture
def compile_inputs():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from deploy_helpers import tiny_config_checkpoint

    config, work_dir = tiny_config_checkpoint()
    return config, work_dir / "latest.pth"


def compile_argv(config, ckpt, out) -> list[str]:
    return ["compile", str(config), "--checkpoint", str(ckpt), "--out", str(out), "--batch", "2"]


def failing_export(monkeypatch):
    """Make the ONNX export write half of the graph file, then fail."""
    from bidl.deploy import compile as compile_module

    original = compile_module._export_onnx

    def half_written(graph, path, *args, **kwargs):
        original(graph, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise RuntimeError("injected failure while the graph is written")

    monkeypatch.setattr(compile_module, "_export_onnx", half_written)
    return lambda: monkeypatch.setattr(compile_module, "_export_onnx", original)


def test_compile_interrupted_leaves_the_previous_artifact(tmp_path, monkeypatch, compile_inputs):
    from bidl.deploy import Runtime
    from bidl.deploy.artifact import file_sha256

    config, ckpt = compile_inputs
    out = tmp_path / "art"
    assert main(compile_argv(config, ckpt, out)) == 0
    before = {p.name: file_sha256(p) for p in out.iterdir()}
    sample = np.random.default_rng(0).random((2, 4, 2, 16, 16)) < 0.3
    expected = Runtime(out).run(sample.astype(np.float32))
    restore = failing_export(monkeypatch)
    with pytest.raises(RuntimeError, match="injected failure"):
        main(compile_argv(config, ckpt, out))
    restore()
    assert {p.name: file_sha256(p) for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["art"]  # no temporary folder left
    np.testing.assert_array_equal(Runtime(out).run(sample.astype(np.float32)), expected)
    assert main(compile_argv(config, ckpt, out)) == 0


def test_compile_interrupted_leaves_no_artifact_to_reuse(tmp_path, monkeypatch, compile_inputs):
    from bidl.deploy import ArtifactError, Runtime, compile_config

    config, ckpt = compile_inputs
    out = tmp_path / "art"
    restore = failing_export(monkeypatch)
    with pytest.raises(RuntimeError, match="injected failure"):
        main(compile_argv(config, ckpt, out))
    restore()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArtifactError):
        Runtime(out)
    result = compile_config(config, ckpt, batch_size=2, out=str(out), use_legacy=True)
    assert not result.reused
    assert Runtime(out).run(np.zeros((4, 2, 16, 16), np.float32)).shape == (3,)
    assert os.path.isfile(out / "net_params.json")
