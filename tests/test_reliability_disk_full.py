"""A full disk while bidl writes: one ``WriteError`` naming the file and the free space,
never a raw traceback, a 0-byte file, a log handler's traceback or a SIGBUS.

The kernel refuses the writes here in two ways (``reliability_tools``): a per-process file
size limit (EFBIG, everywhere) and a real tmpfs of a few KiB (ENOSPC, where a private mount
namespace is allowed)."""

from __future__ import annotations

import errno
import io
import logging
import os
import signal

from conftest import write_tiny_config
from reliability_tools import cli_script, run_on_small_fs, run_with_file_limit
from test_dvs_datasets import make_gesture_raw

from bidl import fileio
from bidl.cli import main

TRAIN_OPTIONS = ["runner.max_epochs=1", "data.train.num_samples=8", "data.val.num_samples=4"]
# uint8 frames of [64, 2, 128, 128]: 2 MiB a sample, far more than the small disk holds
BIG_CACHE = ["--set", "timesteps=64", "size=128"]


def train_argv(config, work_dir) -> list[str]:
    return ["train", str(config), "--work-dir", str(work_dir), "--device", "cpu",
            "--cfg-options", *TRAIN_OPTIONS]  # fmt: skip


def prepare_argv(root, raw, extra=()) -> list[str]:
    return ["data", "prepare", "DvsGesture", "--root", str(root), "--raw", str(raw), *extra]


def assert_one_clear_error(done, path_part: str, reason: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "Logging error" not in done.stderr, done.stderr[-3000:]
    assert "could not write '" in done.stderr and path_part in done.stderr, done.stderr
    assert reason in done.stderr and " free in '" in done.stderr, done.stderr


# --- checkpoints: torch's zip writer reports the failed write as a RuntimeError ---------


def test_checkpoint_past_the_file_limit_is_one_write_error(tmp_path):
    script = f"""
import torch
from bidl.engine.checkpoint import CheckpointError, save_checkpoint
from bidl.fileio import WriteError
try:
    save_checkpoint({str(tmp_path / "big.pth")!r}, torch.nn.Linear(512, 512))
except CheckpointError as err:
    assert isinstance(err, WriteError)
    print("ERROR", err)
"""
    done = run_with_file_limit(script, 64 * 1024)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"ERROR could not write {str(tmp_path / 'big.pth')!r}: File too large" in done.stdout
    assert "--work-dir" in done.stdout
    assert os.listdir(tmp_path) == []  # no half file, no temp file


# --- the config dump and train.log when the disk is (nearly) full at the start ----------


def test_config_dump_on_a_full_disk_leaves_no_empty_file(tmp_path, monkeypatch, capsys):
    config = write_tiny_config(tmp_path)
    work_dir = tmp_path / "w"

    def full(fd):  # a file system that allocates late reports the full disk at fsync
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(train_argv(config, work_dir)) == 1
    err = capsys.readouterr().err
    assert f"could not write {str(work_dir / config.name)!r}: No space left on device" in err
    assert os.listdir(work_dir) == []  # no 0-byte config, no temp file, no lock file


def test_nearly_full_disk_at_the_start(tmp_path):
    config = write_tiny_config(tmp_path)
    done, names, sizes = run_on_small_fs(
        tmp_path / "disk", 64, cli_script(train_argv(config, tmp_path / "disk" / "w")), 63
    )
    assert_one_clear_error(done, "disk/w/", "No space left on device")
    assert all(size > 0 for name, size in sizes.items() if name.startswith("w/")), sizes


def test_a_log_line_the_disk_refuses_is_reported_once(capsys):
    from bidl.engine.runner import QuietFileHandler

    class FullStream(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    handler = QuietFileHandler(os.devnull, delay=True)
    handler.stream = FullStream()
    log = logging.getLogger("bidl.test.fulllog")
    log.addHandler(handler)
    try:
        for i in range(3):
            log.error("line %d", i)
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == (
        f"bidl: could not write {os.devnull!r} ([Errno 28] No space left on device); "
        f"it gets no more lines\n"
    )


# --- bidl data prepare: the memory-mapped cache must never die of SIGBUS -----------------


def test_cache_space_is_allocated_before_it_is_mapped(tmp_path, monkeypatch, capsys):
    make_gesture_raw(tmp_path / "raw")
    calls = []

    def no_space(fd, offset, length):
        calls.append(length)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    assert main(prepare_argv(tmp_path / "data", tmp_path / "raw", BIG_CACHE)) == 1
    assert calls and calls[0] > 3 * 64 * 2 * 128 * 128  # the whole image file at once
    err = capsys.readouterr().err
    assert "train_img.npy': No space left on device" in err
    cache = next((tmp_path / "data" / "bidl_cache").iterdir())
    assert os.listdir(cache) == []  # no temp file, no meta


def test_prepare_on_a_full_disk_is_an_error_not_sigbus(tmp_path):
    make_gesture_raw(tmp_path / "raw")
    root = tmp_path / "disk" / "data"
    done, names, _ = run_on_small_fs(
        tmp_path / "disk", 1024, cli_script(prepare_argv(root, tmp_path / "raw", BIG_CACHE))
    )
    assert done.returncode != -signal.SIGBUS and done.returncode != 128 + signal.SIGBUS
    assert_one_clear_error(done, "train_img.npy", "No space left on device")
    assert not [n for n in names if n.endswith(".tmp") or n.endswith(".npy")], names


def test_write_error_names_the_free_space(tmp_path):
    err = fileio.write_failure(tmp_path / "a.bin", OSError(errno.ENOSPC, "No space left"))
    assert isinstance(err, fileio.WriteError)
    assert str(err).startswith(f"could not write {str(tmp_path / 'a.bin')!r}: No space left; ")
    assert f" free in {str(tmp_path)!r}. Free disk space or write elsewhere." in str(err)
