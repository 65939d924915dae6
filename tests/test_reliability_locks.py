"""Two writers: a second ``bidl train`` on a work dir (or a second compile into an artifact
folder) is refused with a message naming the holder; a lock left by a dead process is free
again; the start-up clean-up never deletes a live writer's temp file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from reliability_tools import TESTS

from bidl import fileio
from bidl.cli import main
from bidl.deploy.artifact import write_artifact
from bidl.engine.checkpoint import remove_stale_temp_files
from bidl.locking import LockError, folder_lock, read_holder, work_dir_lock

SMALL = ["runner.max_epochs=1", "data.train.num_samples=8", "data.val.num_samples=4"]

HOLDER = """
import os, sys
from bidl.locking import {function}
lock = {function}({path!r}).acquire()
if {leave_child}:  # the holder exits; a child it forked keeps the lock's descriptor
    if os.fork():
        os._exit(0)
print("held", flush=True)
sys.stdin.readline()
"""


class Holder:
    """A process (no torch) that takes a lock and keeps it until told or killed."""

    def __init__(self, function: str, path, leave_child: bool = False):
        script = textwrap.dedent(
            HOLDER.format(function=function, path=str(path), leave_child=leave_child)
        )
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, "--holder-of", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout.readline() == "held\n"

    def release(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def test_a_second_training_on_a_work_dir_is_refused_naming_the_first(tiny_config, tmp_path, capsys):
    work_dir = tmp_path / "w"
    holder = Holder("work_dir_lock", work_dir)
    try:
        argv = ["train", str(tiny_config), "--work-dir", str(work_dir), "--device", "cpu"]
        assert main([*argv, "--cfg-options", *SMALL]) == 1
        err = capsys.readouterr().err
        assert f"work dir {str(work_dir)!r} is in use by another bidl process: " in err
        assert f"pid {holder.proc.pid} on host {socket.gethostname()}, started 20" in err
        assert f"--holder-of {work_dir}" in err  # the holder's command line
        assert "Wait for that run to finish, stop it, or train into another --work-dir." in err
        assert sorted(os.listdir(work_dir)) == [".bidl.lock"]  # nothing of the second run
    finally:
        holder.proc.kill()  # SIGKILL: the kernel drops the lock with the process
        holder.proc.wait()
    # the dead holder's lock is free again, and its note is replaced
    assert main([*argv, "--cfg-options", *SMALL]) == 0
    assert not (work_dir / ".bidl.lock").exists()
    records = [json.loads(line) for line in (work_dir / "log.json").read_text().splitlines()]
    assert [r["mode"] for r in records].count("meta") == 1


def test_a_lock_kept_by_a_leftover_child_says_its_holder_has_ended(tmp_path):
    holder = Holder("work_dir_lock", tmp_path, leave_child=True)
    holder.proc.wait(timeout=30)  # the holder itself is gone; its child keeps the lock
    try:
        with pytest.raises(LockError, match="that process has ended, but a child process"):
            work_dir_lock(tmp_path).acquire()
    finally:
        holder.release()
    for _ in range(200):  # the child exits on its own time after its stdin closes
        try:
            work_dir_lock(tmp_path).acquire().release()
            break
        except LockError:
            time.sleep(0.05)
    else:
        pytest.fail("the lock stayed taken after its last holder ended")


def test_a_stale_note_without_a_lock_is_taken_over(tmp_path):
    note = {"pid": 2**22 + 12345, "host": socket.gethostname(), "started": 0, "command": "x"}
    (tmp_path / ".bidl.lock").write_text(json.dumps(note))
    lock = work_dir_lock(tmp_path).acquire()
    try:
        assert read_holder(tmp_path / ".bidl.lock")["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_second_compile_into_an_artifact_folder_is_refused(tmp_path):
    target = tmp_path / "art"
    holder = Holder("folder_lock", target)
    try:
        with pytest.raises(LockError, match=rf"'{target}' is in use by .*pid {holder.proc.pid}"):
            write_artifact(target, lambda folder: None, {}, "")
        assert sorted(os.listdir(tmp_path)) == [".art.lock"]  # no stage, no artifact
    finally:
        holder.release()
    with folder_lock(target):
        pass


def test_start_up_clean_up_keeps_a_live_writers_temp_file(tmp_path):
    live = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        names = {
            "live": f".latest.pth.{live.pid}.abcd1234.tmp",
            "dead": f".latest.pth.{dead.pid}.abcd1234.tmp",
            "older bidl": ".latest.pth.k2x_9abc.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"half a checkpoint")
        removed = remove_stale_temp_files(tmp_path)
        assert sorted(p.name for p in removed) == sorted([names["dead"], names["older bidl"]])
        assert sorted(os.listdir(tmp_path)) == [names["live"]]
    finally:
        live.stdin.close()
        live.wait()


def test_temp_names_carry_the_writers_pid(tmp_path):
    tmp = fileio.temp_path(tmp_path / "latest.pth")
    assert fileio.writer_pid(tmp) == os.getpid()
    assert tmp.name.startswith(f".latest.pth.{os.getpid()}.") and tmp.suffix == ".tmp"
    assert fileio.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not fileio.pid_alive(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert not fileio.pid_alive(zombie.pid)
    zombie.wait()
