"""A fork server for the SIGKILL loop (tests/test_kill_loop.py).

It imports torch and bidl once, then forks one training run per command, so a test can
start and SIGKILL dozens of runs in seconds. Commands on stdin, one JSON object a line:

- ``{"op": "run", "config": ..., "work_dir": ..., "resume_from": ... | null}`` -> ``pid``
- ``{"op": "warm", "config": ..., "work_dir": ...}``: one run in this process first
- ``{"op": "wait", "pid": N}`` -> ``exit CODE`` or ``signal SIG``

Checkpoint writes in the children are slowed down (written in small chunks with pauses), so
that random kills often land in the middle of one.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import tiny_dataset  # noqa: F401
import torch

import bidl.datasets  # noqa: F401  (imported once here, not in every child)
import bidl.engine.checkpoint as checkpoint
import bidl.models  # noqa: F401
from bidl.engine import train_model

CHUNK, PAUSE = 256 * 1024, 0.01
_atomic_write = checkpoint.atomic_write


def slow_atomic_write(path, write):
    def dribble(handle):
        class Collect:
            def __init__(self):
                self.parts = []

            def write(self, data):
                self.parts.append(bytes(data))
                return len(data)

            def flush(self):
                pass

        buffer = Collect()
        write(buffer)
        data = b"".join(buffer.parts)
        for start in range(0, len(data), CHUNK):
            handle.write(data[start : start + CHUNK])
            handle.flush()
            time.sleep(PAUSE)

    return _atomic_write(path, dribble)


def child(command: dict) -> None:
    torch.set_num_threads(1)
    checkpoint.atomic_write = slow_atomic_write
    options = dict(command.get("options") or {})
    if command.get("resume_from"):
        options["resume_from"] = command["resume_from"]
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    train_model(
        command["config"],
        work_dir=command["work_dir"],
        cfg_options=options,
        device="cpu",
        deterministic=True,
    )


def main() -> None:
    torch.set_num_threads(1)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "warm":  # one run in-process: lazy imports, first-call costs
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            train_model(
                command["config"],
                work_dir=command["work_dir"],
                device="cpu",
                cfg_options=command.get("options"),
                deterministic=True,
            )
            sys.stdout = sys.__stdout__
            print("warm", flush=True)
        elif command["op"] == "run":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    child(command)
                except BaseException:  # noqa: BLE001
                    code = 3
                    with open(os.path.join(command["work_dir"], "child_error.txt"), "a") as out:
                        out.write(traceback.format_exc())
                os._exit(code)
            print(pid, flush=True)
        elif command["op"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            if os.WIFSIGNALED(status):
                print(f"signal {os.WTERMSIG(status)}", flush=True)
            else:
                print(f"exit {os.WEXITSTATUS(status)}", flush=True)


if __name__ == "__main__":
    main()
