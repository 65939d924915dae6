"""A full disk (ENOSPC) while a real training run saves its checkpoints: one clear
``CheckpointError``, the previous checkpoint intact and loadable, and a resume finishes."""

from __future__ import annotations

import errno

import pytest
import torch

from bidl.engine.apis import train_model
from bidl.engine.checkpoint import CheckpointError, load_checkpoint

SMALL = {"runner.max_epochs": 2, "data.train.num_samples": 8, "data.val.num_samples": 4}


def test_disk_full_during_a_real_save(tiny_config, tmp_path, monkeypatch):
    work_dir = tmp_path / "w"
    real_save = torch.save
    attempts = []

    def save_until_the_disk_fills(obj, handle, *args, **kwargs):
        epoch = obj["meta"]["epoch"]
        attempts.append(epoch)
        if epoch == 2:  # half a checkpoint goes out, then the disk is full
            handle.write(b"\0" * 65536)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    with pytest.raises(CheckpointError) as err:
        train_model(tiny_config, work_dir=str(work_dir), device="cpu", cfg_options=SMALL)
    monkeypatch.setattr(torch, "save", real_save)
    message = str(err.value)
    assert f"could not write {str(work_dir / 'epoch_2.pth')!r}: No space left on device" in message
    assert "the previous file there (if any) is intact" in message
    assert attempts == [1, 1, 1, 2]  # epoch_1, latest, best; then epoch_2 failed
    names = sorted(p.name for p in work_dir.iterdir() if p.suffix == ".pth" or p.name[0] == ".")
    assert names == ["best.pth", "epoch_1.pth", "latest.pth"]  # no epoch_2, no temp file
    latest = load_checkpoint(work_dir / "latest.pth")
    assert latest["meta"]["epoch"] == 1
    epoch_1 = load_checkpoint(work_dir / "epoch_1.pth")
    for key, value in latest["state_dict"].items():
        assert torch.equal(value, epoch_1["state_dict"][key])
    # with space again, the run resumes from the intact checkpoint and finishes
    metrics = train_model(
        tiny_config,
        work_dir=str(work_dir),
        device="cpu",
        cfg_options={**SMALL, "resume_from": str(work_dir / "latest.pth")},
    )
    assert "accuracy_top-1" in metrics
    assert load_checkpoint(work_dir / "latest.pth")["meta"]["epoch"] == 2
