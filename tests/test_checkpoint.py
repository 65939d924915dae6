import random

import numpy as np
import pytest
import torch

from bidl.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    rng_states,
    save_checkpoint,
    set_rng_states,
)


def test_checkpoint_round_trip_keeps_weights_optimizer_and_meta(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "c.pth", model, optimizer, meta={"epoch": 3})
    other = torch.nn.Linear(3, 2)
    checkpoint = load_weights(other, tmp_path / "c.pth")
    assert torch.equal(other.weight, model.weight)
    assert checkpoint["meta"]["epoch"] == 3
    assert "momentum_buffer" in checkpoint["optimizer"]["state"][0]


def test_rng_states_survive_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    save_checkpoint(tmp_path / "c.pth", torch.nn.Linear(1, 1), meta={"rng": rng_states()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_states(load_checkpoint(tmp_path / "c.pth")["meta"]["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    save_checkpoint(path, torch.nn.Linear(2, 2), meta={"epoch": 1})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous file"):
        save_checkpoint(path, torch.nn.Linear(2, 2), meta={"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["meta"]["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pth"]


def test_checkpoint_carrying_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="never runs code"):
        load_checkpoint(path)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "c.pth"
    save_checkpoint(path, torch.nn.Linear(4, 4))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="could not load checkpoint"):
        load_checkpoint(path)


def test_weights_of_another_model_are_refused_with_the_keys(tmp_path):
    save_checkpoint(tmp_path / "c.pth", torch.nn.Linear(4, 4))
    with pytest.raises(
        CheckpointError, match="(?s)does not fit this model.*size mismatch for weight"
    ):
        load_weights(torch.nn.Linear(4, 5), tmp_path / "c.pth")
