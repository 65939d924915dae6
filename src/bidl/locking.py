"""One writer at a time: an advisory lock (``fcntl.flock``) on a work dir or an artifact.

The lock file holds who took it (pid, host, start time, command), so a second writer is
told whom it waits for. The kernel drops a flock when its process dies, even by SIGKILL,
so a lock left by a dead run is free again; on file systems without flock the holder's
pid decides (a dead pid on this host means a stale lock, which is taken over).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .fileio import pid_alive, write_failure
from .registry import BidlError


class LockError(BidlError):
    """Another process is writing the same work dir or artifact."""


def _holder_text(holder: dict) -> str:
    started = holder.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, int | float)
        else "an unknown time"
    )
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}, "
        f"command {holder.get('command', '?')!r}"
    )


def read_holder(path: str | os.PathLike) -> dict:
    """What the lock file says about its holder ({} if nothing readable)."""
    try:
        with open(path, "rb") as handle:
            holder = json.loads(handle.read(4096) or b"{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _stale(holder: dict) -> bool:
    """A holder on this host whose process is gone."""
    pid = holder.get("pid")
    return (
        holder.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and not isinstance(pid, bool)
        and not pid_alive(pid)
    )


class WriterLock:
    """An exclusive lock on ``path`` (a lock file); ``what`` names the guarded thing in
    messages and ``advice`` says what to do when it is taken."""

    def __init__(self, path: str | os.PathLike, what: str, advice: str):
        self.path, self.what, self.advice = Path(path), what, advice
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_failure(self.path.parent, err, what="folder") from err
        for _ in range(10):  # the file may be unlinked by a releasing holder meanwhile
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as err:
                raise write_failure(self.path, err) from err
            try:
                if not self._flock(fd):
                    holder = read_holder(self.path)
                    gone = (
                        " (that process has ended, but a child process it started, such as a "
                        "data loader worker, still holds the lock)"
                        if _stale(holder)
                        else ""
                    )
                    raise LockError(
                        f"{self.what} is in use by another bidl process: {_holder_text(holder)}"
                        f"{gone} (lock file {str(self.path)!r}). {self.advice}"
                    )
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    os.close(fd)  # we locked a file that was unlinked: try the new one
                    continue
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            self._write_holder()
            return self
        raise LockError(f"could not take the lock {str(self.path)!r}; try again")

    def _flock(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as err:  # no flock here (some network file systems): pid check
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            holder = read_holder(self.path)
            return not holder or _stale(holder) or holder.get("pid") == os.getpid()

    def _write_holder(self) -> None:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:500],
        }
        with contextlib.suppress(OSError):  # a full disk: the lock holds without the note
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(holder).encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: a waiter then re-opens a fresh file
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


WORK_DIR_LOCK = ".bidl.lock"


def work_dir_lock(work_dir: str | os.PathLike) -> WriterLock:
    """The lock of a training work dir (``bidl train``)."""
    work_dir = Path(work_dir)
    return WriterLock(
        work_dir / WORK_DIR_LOCK,
        f"work dir {str(work_dir)!r}",
        "Wait for that run to finish, stop it, or train into another --work-dir.",
    )


def folder_lock(target: str | os.PathLike) -> WriterLock:
    """The lock of an artifact folder while it is written (it sits beside the folder,
    which is replaced as a whole)."""
    target = Path(target)
    return WriterLock(
        target.parent / f".{target.name}.lock",
        f"{str(target)!r}",
        "Wait for that compile to finish, stop it, or write to another --out.",
    )


#: how long a dataset preparation waits for another process preparing the same folder
PREPARE_WAIT_SECONDS = 3600.0


@contextlib.contextmanager
def waiting_lock(lock: WriterLock, timeout: float | None = None, poll: float = 0.2):
    """Hold ``lock``, waiting up to ``timeout`` seconds (``PREPARE_WAIT_SECONDS``) for
    another holder to let go (its work is then usually done: the caller checks again
    inside). Past the timeout, the holder is named as ``acquire`` names it."""
    deadline = time.monotonic() + (PREPARE_WAIT_SECONDS if timeout is None else timeout)
    while True:
        try:
            lock.acquire()
            break
        except LockError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll)
    try:
        yield lock
    finally:
        lock.release()


def dataset_lock(root: str | os.PathLike, name: str) -> WriterLock:
    """The lock of a dataset folder while its cache is built (``bidl data prepare``, or the
    first use of a generated dataset by several processes at once, e.g. DDP ranks)."""
    root = Path(root).resolve()
    # beside the folder, as folder_lock: a run killed mid-write leaves the folder as it was
    return WriterLock(
        root.parent / f".{root.name}.prepare.lock",
        f"the {name} folder {str(root)!r}",
        "Wait for that preparation to finish, or stop it.",
    )
