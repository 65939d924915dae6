"""SIGKILL loop: kill tiny training runs at random moments (often in the middle of writing a
checkpoint), check after every kill that ``latest.pth`` loads, resume from it, and check that
runs resumed after kills end with the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import write_tiny_config

from bidl.engine import load_checkpoint

TESTS = Path(__file__).resolve().parent
MIN_KILLS, MAX_KILLS, BUDGET_S = 50, 55, 50.0
MAX_EPOCHS = 3
# small epochs, so that a run killed after 0.05-1 s often gets past a checkpoint
OPTIONS = {
    "runner.max_epochs": MAX_EPOCHS,
    "data.train.num_samples": 16,
    "data.val.num_samples": 6,
    "log_config.interval": 1,
}


class Zygote:
    def __init__(self):
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "kill_zygote.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **command) -> str:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer, "the fork server died"
        return answer

    def run(self, config, work_dir, resume_from=None) -> int:
        return int(
            self.ask(
                op="run",
                config=str(config),
                work_dir=str(work_dir),
                resume_from=str(resume_from) if resume_from else None,
                options=OPTIONS,
            )
        )

    def wait(self, pid: int) -> str:
        return self.ask(op="wait", pid=pid)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def weights(path):
    return load_checkpoint(path)["state_dict"]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def finished(work_dir: Path, status: str) -> None:
    assert status == "exit 0", (status, _child_error(work_dir))


def _child_error(work_dir: Path) -> str:
    error = work_dir / "child_error.txt"
    return error.read_text() if error.exists() else ""


def test_sigkill_loop_latest_always_loads_and_resume_matches(tmp_path):
    config = write_tiny_config(tmp_path)
    rng = random.Random(1234)
    zygote = Zygote()
    try:
        zygote.ask(op="warm", config=str(config), work_dir=str(tmp_path / "warm"), options=OPTIONS)
        reference = tmp_path / "reference"
        finished(reference, zygote.wait(zygote.run(config, reference)))
        assert load_checkpoint(reference / "latest.pth")["meta"]["epoch"] == MAX_EPOCHS

        kills = mid_write = completed = resumes = 0
        campaign = 0
        work_dir = tmp_path / f"killed_{campaign}"
        start = time.monotonic()
        while kills < MAX_KILLS and (kills < MIN_KILLS or time.monotonic() - start < BUDGET_S):
            latest = work_dir / "latest.pth"
            resume = latest if latest.exists() else None  # resume from its own work dir
            resumes += resume is not None
            pid = zygote.run(config, work_dir, resume)
            time.sleep(rng.uniform(0.05, 1.0))
            os.kill(pid, signal.SIGKILL)
            status = zygote.wait(pid)
            if status == f"signal {signal.SIGKILL}":
                kills += 1
                mid_write += any(work_dir.glob(".*.tmp"))  # killed inside atomic_write
                if latest.exists():
                    load_checkpoint(latest)  # never a half-written latest.pth
                for path in work_dir.glob("epoch_*.pth"):
                    load_checkpoint(path)
                continue
            finished(work_dir, status)  # the run ended before the kill
            assert_same_weights(reference / "latest.pth", latest)
            assert not list(work_dir.glob(".*.tmp")), "stale temp files left behind"
            completed += 1
            campaign += 1
            work_dir = tmp_path / f"killed_{campaign}"

        # the last campaign: resume from its last good checkpoint and run to the end
        latest = work_dir / "latest.pth"
        pid = zygote.run(config, work_dir, latest if latest.exists() else None)
        finished(work_dir, zygote.wait(pid))
        assert_same_weights(reference / "latest.pth", latest)
        assert not list(work_dir.glob(".*.tmp")), "stale temp files left behind"
        elapsed = time.monotonic() - start
    finally:
        zygote.close()
    print(
        f"kill loop: {kills} SIGKILLs ({mid_write} inside a checkpoint write), "
        f"{resumes} resumes, {completed + 1} runs finished after kills, {elapsed:.1f} s"
    )
    assert kills >= MIN_KILLS
    assert mid_write >= 5
