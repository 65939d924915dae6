"""Interrupted or invalid replacement of an artifact folder (class 3).

A compile SIGKILLed between the two renames of its folder swap, or just before them, leaves
one complete artifact after the next start; a compile whose result does not open or gives
non-finite outputs (timestep=0, NaN weights) replaces nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bidl.cli import main
from bidl.deploy.artifact import (
    MANIFEST,
    SUMMARY,
    ArtifactError,
    file_sha256,
    read_manifest,
    write_artifact,
)
from bidl.deploy.compile import check_staged

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# A child that rewrites the artifact (through fileio alone: no torch to import) and is
# SIGKILLed right after one rename of the swap.
KILLED_SWAP = """
import os, shutil, signal
from pathlib import Path
from bidl import fileio

real = os.replace

def replace(src, dst):
    real(src, dst)
    if {kill_after!r} == "old aside" and Path(dst).parent.suffix == ".old":
        os.kill(os.getpid(), signal.SIGKILL)  # the old artifact aside, the new not in place
    if {kill_after!r} == "journal" and Path(dst).name.endswith(".swap"):
        os.kill(os.getpid(), signal.SIGKILL)  # the journal written, nothing renamed yet

fileio.os.replace = replace
with fileio.staged_folder({target!r}) as stage:
    for path in Path({target!r}).iterdir():
        shutil.copy(path, stage)
    (stage / "summary.txt").write_text("new")
"""


@pytest.fixture
def old_artifact(tmp_path):
    """A working artifact at tmp_path/art (summary 'old') and its manifest."""
    from deploy_helpers import tiny_artifact

    target = tmp_path / "art"
    shutil.copytree(tiny_artifact(), target)
    (target / SUMMARY).write_text("old")
    return target, json.loads((target / MANIFEST).read_text())


def hashes(folder):
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())}


def kill_during_swap(target, kill_after: str) -> None:
    script = KILLED_SWAP.format(kill_after=kill_after, target=str(target))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def test_a_kill_between_the_two_renames_is_finished_at_the_next_open(old_artifact):
    from bidl.deploy import Runtime

    target, manifest = old_artifact
    kill_during_swap(target, "old aside")
    left = sorted(p.name for p in target.parent.iterdir())
    assert "art" not in left  # the state the kill leaves: no artifact at --out
    assert [n.endswith(".old") for n in left if n.startswith(".art.") and n != ".art.swap"]
    assert ".art.swap" in left
    runtime = Runtime(target)  # the next start finishes the swap
    assert (target / SUMMARY).read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["art"]
    sample = np.zeros((2, 4, *runtime.step_shape), np.float32)
    assert np.isfinite(runtime.run(sample)).all()


def test_a_kill_after_the_journal_keeps_the_old_artifact(old_artifact):
    from bidl.deploy import Runtime

    target, manifest = old_artifact
    before = hashes(target)
    kill_during_swap(target, "journal")
    Runtime(target)
    assert hashes(target) == before
    write_artifact(target, lambda folder: shutil.copy(target / "step.onnx", folder), manifest, "3")
    assert sorted(p.name for p in target.parent.iterdir()) == ["art"]  # leftovers cleaned


def test_an_old_artifact_moved_aside_without_a_journal_is_put_back(old_artifact):
    from bidl.deploy import Runtime

    target, _ = old_artifact
    before = hashes(target)
    aside = target.parent / ".art.k2x_9abc.old"
    aside.mkdir()
    os.replace(target, aside / "art")  # what a kill between the renames left before journals
    Runtime(target)
    assert hashes(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["art"]


def test_an_artifact_that_does_not_open_replaces_nothing(old_artifact):
    target, manifest = old_artifact
    before = hashes(target)
    graph = (target / "step.onnx").read_bytes()
    broken = dict(manifest, timesteps=0)
    with pytest.raises(ArtifactError, match=r"does not open: .*timesteps.*Nothing was replaced"):
        write_artifact(
            target,
            lambda folder: (folder / "step.onnx").write_bytes(graph),
            broken,
            "",
            check=check_staged,  # what compile passes
        )
    assert hashes(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["art"]


def test_nan_weights_are_refused_at_compile(old_artifact):
    from deploy_helpers import tiny_snn

    from bidl.deploy import compile_model

    target, _ = old_artifact
    before = hashes(target)
    model = tiny_snn()
    with torch.no_grad():
        next(model.parameters())[0].fill_(float("nan"))
    with pytest.raises(
        ArtifactError,
        match=r"NaN or infinite values in body\.0\.conv\.weight; nothing was compiled or replaced",
    ):
        compile_model(model, target, batch_size=2)
    assert hashes(target) == before


def test_compile_with_timestep_0_keeps_the_good_artifact(tmp_path, capsys):
    from deploy_helpers import tiny_config_checkpoint

    config, work_dir = tiny_config_checkpoint()
    out = tmp_path / "art"
    argv = ["compile", str(config), "--checkpoint", str(work_dir / "latest.pth"), "--out",
            str(out), "--batch", "2"]  # fmt: skip
    assert main(argv) == 0
    before = hashes(out)
    assert main([*argv, "--cfg-options", "model.backbone.timestep=0"]) == 1
    err = capsys.readouterr().err
    assert "model.backbone.timestep: the number of timesteps must be a positive int, got 0" in err
    assert hashes(out) == before
    assert read_manifest(out)["timesteps"] == 4
