"""Durable writes: every file and folder bidl writes goes through this module.

A file is written into a temp file beside its target (``.NAME.<pid>.XXXXXXXX.tmp``), flushed,
fsynced, renamed over the target, and the folder is fsynced, so a crash, a kill or a power
loss leaves either the old file or the new one, never a mix. A folder (a compiled artifact)
is staged the same way and swapped in with a journal, so that an interrupted swap can be
finished at the next start (``recover_folder``).

Every failure to write (ENOSPC, EDQUOT, EROFS, EIO, and torch's zip writer turning ENOSPC
into a ``RuntimeError``) becomes one ``WriteError`` that names the file and the free space.
The pid in temp names lets a clean-up tell a dead writer's leftovers from a live writer's.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .registry import BidlError

#: errno values that mean "the disk refused", whatever call they came from
DISK_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}
)
#: ``.NAME.<pid>.XXXXXXXX.tmp`` (or ``.old``): the pid of the process that made it
_STAGE_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.(?:tmp|old)$")


class WriteError(BidlError):
    """A file or folder could not be written; the message names it and the free space."""


def free_space(path: str | os.PathLike) -> str:
    """Free space on the file system that holds ``path`` (its nearest existing parent)."""
    place = Path(path)
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        free = shutil.disk_usage(place).free
    except OSError:
        return "unknown free space"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free} bytes free" if unit == "bytes" else f"{free:.1f} {unit} free"
        free /= 1024
    raise AssertionError("unreachable")


def write_failure(
    path: str | os.PathLike,
    err: BaseException,
    error: type[WriteError] = WriteError,
    hint: str = "",
    what: str = "file",
) -> WriteError:
    """The one error for a failed write of ``path``."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    previous = {
        "file": "the previous file there (if any) is intact",
        "folder": "the previous folder there (if any) is intact",
        "log": "the lines written before are intact",
    }[what]
    return error(
        f"could not write {str(path)!r}: {reason}; {previous}; "
        f"{free_space(Path(path).parent)} in {str(Path(path).parent)!r}. "
        + (hint or "Free disk space or write elsewhere.")
    )


def _is_disk_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_ERRNOS


class _Watched:
    """A file object that remembers the first ``OSError`` of its writes: torch's zip writer
    reports a failed write as a ``RuntimeError`` that no longer says why."""

    def __init__(self, handle: IO[bytes]):
        self._handle = handle
        self.failure: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._handle.write(data)
        except OSError as err:
            self.failure = self.failure or err
            raise

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as err:
            self.failure = self.failure or err
            raise

    def __getattr__(self, name: str):  # tell, seek, ... go to the real file
        return getattr(self._handle, name)


def temp_path(path: str | os.PathLike) -> Path:
    """A new empty temp file beside ``path``, named after it and this process."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    return Path(tmp)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new entry in ``folder`` survive a power loss."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot fsync a folder
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _commit(tmp: Path, path: Path, mode: int) -> None:
    _fsync_file(tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], Any],
    error: type[WriteError] = WriteError,
    hint: str = "",
    mode: int = 0o644,
) -> Path:
    """Call ``write(file_object)`` on a temp file beside ``path``, then make it ``path``.

    ``write`` may be ``torch.save``, ``np.save`` or anything that writes bytes. A failure
    part-way leaves the previous file at ``path`` untouched and no temp file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
    except OSError as err:
        raise write_failure(path, err, error, hint) from err
    watched = None
    try:
        with open(tmp, "wb") as handle:
            watched = _Watched(handle)
            write(watched)
            watched.flush()
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if watched is not None and watched.failure is not None:
            raise write_failure(path, watched.failure, error, hint) from err
        if _is_disk_error(err):
            raise write_failure(path, err, error, hint) from err
        raise
    try:
        _commit(tmp, path, mode)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_failure(path, err, error, hint) from err
    return path


def write_bytes(path: str | os.PathLike, data: bytes, **kwargs) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), **kwargs)


def write_text(path: str | os.PathLike, text: str, **kwargs) -> Path:
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2, **kwargs) -> Path:
    """``data`` as JSON, ending with a newline (``default`` and ``sort_keys`` go to
    ``json.dumps``; the other keywords to ``atomic_write``)."""
    dumps = {k: kwargs.pop(k) for k in ("default", "sort_keys") if k in kwargs}
    text = json.dumps(data, indent=indent, **dumps) + "\n"
    return write_text(path, text, **kwargs)


def append_text(path: str | os.PathLike, text: str, error: type[WriteError] = WriteError) -> None:
    """Append ``text`` to a log file (not atomic: a log grows line by line); a failure
    becomes a ``WriteError`` naming the file and the free space."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        raise write_failure(path, err, error, what="log") from err


def reserve(
    path: str | os.PathLike,
    size: int,
    error: type[WriteError] = WriteError,
    target: str | os.PathLike | None = None,
) -> None:
    """Allocate ``size`` bytes of disk for ``path`` now. A memory-mapped write into space the
    disk cannot give dies of SIGBUS; this turns that into a ``WriteError`` up front (naming
    ``target``, the file that ``path`` is staged for, when given)."""
    try:
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, max(int(size), 1))
        finally:
            os.close(fd)
    except OSError as err:
        raise write_failure(target or path, err, error) from err


@contextlib.contextmanager
def staged_file(
    path: str | os.PathLike,
    error: type[WriteError] = WriteError,
    hint: str = "",
    mode: int = 0o644,
) -> Iterator[Path]:
    """A temp file beside ``path`` for code that needs a file name (a memory map); when the
    block ends without an error the temp file becomes ``path``, otherwise it is deleted.
    Only disk errors in the block become a ``WriteError``; others pass through."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
    except OSError as err:
        raise write_failure(path, err, error, hint) from err
    try:
        yield tmp
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if _is_disk_error(err):
            raise write_failure(path, err, error, hint) from err
        raise
    try:
        _commit(tmp, path, mode)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_failure(path, err, error, hint) from err


# ---------------------------------------------------------------- leftovers of dead writers
def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie does not count)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def writer_pid(path: str | os.PathLike) -> int | None:
    """The pid in a temp name made here; None for other names."""
    match = _STAGE_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def remove_stale_temp_files(folder: str | os.PathLike, pattern: str = ".*.tmp") -> list[Path]:
    """Delete temp files in ``folder`` whose writer is dead (a SIGKILL gives a writer no
    chance to clean up). A live writer's temp file stays; a temp file without a pid in its
    name (written by an older bidl) is stale."""
    removed = []
    for path in Path(folder).glob(pattern):
        if not path.is_file() or path.is_symlink():
            continue
        pid = writer_pid(path)
        if pid is not None and pid_alive(pid):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


# ---------------------------------------------------------------- folders
def stage_dir(target: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A new empty folder beside ``target``, named after it and this process."""
    target = Path(target)
    return Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=suffix, dir=target.parent)
    )


def journal_path(target: Path) -> Path:
    return target.parent / f".{target.name}.swap"


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_file(Path(root) / name)
        fsync_dir(root)


def replace_folder(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make the complete folder ``new`` be ``target``.

    An old ``target`` is moved aside first. A journal written before the two renames
    (``.NAME.swap``) lets ``recover_folder`` finish a swap that a kill interrupted."""
    new, target = Path(new), Path(target)
    _fsync_tree(new)
    if not target.exists():
        os.replace(new, target)
        fsync_dir(target.parent)
        return
    if not target.is_dir() or target.is_symlink():
        raise WriteError(f"{str(target)!r} exists and is not a folder; pick another place")
    old = stage_dir(target, ".old")
    journal = journal_path(target)
    write_json(journal, {"new": new.name, "old": old.name}, indent=None)
    os.replace(target, old / target.name)
    os.replace(new, target)
    fsync_dir(target.parent)
    journal.unlink()
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(target: str | os.PathLike) -> str | None:
    """Finish a folder swap that a kill interrupted; returns what was done, or None.

    With the journal: if the new folder never reached ``target`` it is moved there (it was
    complete before the swap began); failing that, the old one goes back. Without one
    (a swap by an older bidl), a missing ``target`` gets back its newest moved-aside copy."""
    target = Path(target)
    journal = journal_path(target)
    done = None
    if journal.is_file():
        try:
            names = json.loads(journal.read_text())
            new, old = target.parent / names["new"], target.parent / names["old"]
            if "/" in names["new"] + names["old"]:
                raise ValueError("a path in the journal")
        except (OSError, ValueError, KeyError, TypeError):
            new = old = None
        if new is not None and not target.exists():
            if new.is_dir() and not new.is_symlink():
                os.replace(new, target)
                done = f"finished an interrupted replacement of {str(target)!r}"
            elif (old / target.name).is_dir():
                os.replace(old / target.name, target)
                done = f"put back the previous {str(target)!r} after an interrupted replacement"
            fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        journal.unlink(missing_ok=True)
        fsync_dir(target.parent)
        return done
    if target.exists():
        return None
    pattern = f".{glob.escape(target.name)}.*.old"
    aside = [
        p / target.name
        for p in target.parent.glob(pattern)
        if p.is_dir() and (p / target.name).is_dir()
    ]
    if aside:
        newest = max(aside, key=lambda p: p.stat().st_mtime)
        os.replace(newest, target)
        shutil.rmtree(newest.parent, ignore_errors=True)
        fsync_dir(target.parent)
        return f"put back the previous {str(target)!r} after an interrupted replacement"
    return None


@contextlib.contextmanager
def staged_folder(
    target: str | os.PathLike, error: type[WriteError] = WriteError, hint: str = ""
) -> Iterator[Path]:
    """A temp folder beside ``target`` to fill; when the block ends without an error it
    replaces ``target`` (see ``replace_folder``), otherwise it is deleted and ``target``
    is left as it was. Disk errors become a ``WriteError`` naming ``target``."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_folder(target)
        tmp = stage_dir(target)
    except OSError as err:
        raise write_failure(target, err, error, hint, what="folder") from err
    try:
        yield tmp
        replace_folder(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_disk_error(err):
            raise write_failure(target, err, error, hint, what="folder") from err
        raise
