"""``runner.compile``: training through ``torch.compile`` with the same checkpoints."""

from __future__ import annotations

import torch

from bidl.engine import load_checkpoint, train_model


def test_runner_compile_trains_and_saves_plain_checkpoint_keys(tiny_config, tmp_path):
    # the "eager" backend exercises the option without needing a C++ compiler on the CPU
    options = {"runner.max_epochs": 1, "runner.compile": {"backend": "eager"}}
    metrics = train_model(tiny_config, work_dir=str(tmp_path / "w"), cfg_options=options)
    assert "accuracy_top-1" in metrics
    state = load_checkpoint(tmp_path / "w" / "latest.pth", map_location="cpu")["state_dict"]
    assert state and not any("_orig_mod" in key for key in state)
    assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point())
