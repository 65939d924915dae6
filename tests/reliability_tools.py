"""Ways to run bidl against a full disk in a child process.

- ``run_with_file_limit``: RLIMIT_FSIZE makes the kernel refuse (EFBIG) any write past a
  file size, from any code, torch's zip writer included; it needs no privileges.
- ``run_on_small_fs``: a real tmpfs of a few KiB, mounted in a private mount namespace
  (``unshare -rm``); skipped where user namespaces are not allowed.
"""

from __future__ import annotations

import functools
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def cli_script(argv: list[str]) -> str:
    """Python source that runs ``bidl ARGV`` and exits with its status."""
    return f"import sys\nfrom bidl.cli import main\nsys.exit(main({argv!r}))\n"


def run_with_file_limit(script: str, max_bytes: int, timeout: float = 120):
    """Run ``script`` in a child whose writes past ``max_bytes`` per file fail (EFBIG)."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        preexec_fn=limit,
    )


@functools.cache
def small_fs_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        probe = f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(folder)}"
        try:
            done = subprocess.run(
                ["unshare", "-rm", "sh", "-c", probe], capture_output=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def run_on_small_fs(
    mount: Path, size_kib: int, script: str, fill_kib: int = 0, timeout: float = 180
):
    """Run ``script`` with a ``size_kib`` tmpfs at ``mount`` (``fill_kib`` of it taken by
    a file ``filler``); returns the child's result and the file names left on the mount
    (listed inside the namespace, printed after the marker line)."""
    if not small_fs_available():
        pytest.skip("no private tmpfs here (unshare -rm / mount not allowed)")
    mount.mkdir(parents=True, exist_ok=True)
    target = shlex.quote(str(mount))
    fill = (
        f"head -c {fill_kib * 1024} /dev/zero > {target}/filler 2>/dev/null; " if fill_kib else ""
    )
    shell = (
        f"mount -t tmpfs -o size={size_kib}k tmpfs {target} && {fill}"
        f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}; status=$?; "
        f"echo '--- files'; cd {target} && find . -mindepth 1 | sort; "
        f"echo '--- sizes'; find . -type f -printf '%s %p\\n' | sort -k2; exit $status"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )
    listing = done.stdout.split("--- files\n", 1)[-1]
    files, _, sizes = listing.partition("--- sizes\n")
    names = [line[2:] for line in files.splitlines() if line.startswith("./")]
    size_of = {}
    for line in sizes.splitlines():
        size, _, name = line.partition(" ")
        size_of[name[2:]] = int(size)
    return done, names, size_of
