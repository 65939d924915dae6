"""The compiled artifact on disk: a folder with the step graph and ``net_params.json``.

``net_params.json`` is the manifest: what the graph takes and returns per step, its
states, the aggregation, and hashes of the config and weights it was compiled from (so
``--use_legacy 1`` can refuse a stale artifact). It is written last, into a temporary
folder that is then renamed into place, so a folder with a manifest is always complete.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .. import fileio
from ..locking import LockError, folder_lock
from ..registry import BidlError

MANIFEST = "net_params.json"
SUMMARY = "summary.txt"
FORMAT = "bidl-step-graph"
PIPELINE_FORMAT = "bidl-pipeline"  # a chain of segment artifacts (see segments.py)
FORMAT_VERSION = 1
#: backend -> its graph file; 'torch' keeps the weights and rebuilds the model from the
#: manifest's config through the registry (no code in the file, runs on any device)
BACKENDS = {"onnxruntime": "step.onnx", "aoti": "step.pt2", "torch": "weights.pt"}
DTYPE_BYTES = {"float32": 4, "float16": 2, "uint8": 1, "int64": 8}


class ArtifactError(BidlError):
    """A compiled artifact is missing, incomplete, corrupted or does not fit the request."""


# --- hashes ---------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(model_cfg: dict) -> str:
    """Hash of the config's ``model`` section (what decides the graph), key order ignored."""
    text = json.dumps(model_cfg, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def weights_hash(model: torch.nn.Module) -> str:
    """Hash of every parameter and buffer (names, dtypes, shapes, values)."""
    return state_hash(model.state_dict())


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """Hash of a ``state_dict`` (names, dtypes, shapes, values), key order ignored."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_finite_weights(model: torch.nn.Module) -> None:
    """Refuse a model with NaN or infinite parameters or buffers: spiking layers read NaN as
    "no spike", so such a model compiles and runs, giving plausible wrong answers."""
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise ArtifactError(
            f"the model has NaN or infinite values in {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}; nothing was compiled or replaced. Compile an "
            f"earlier checkpoint."
        )


# --- reading --------------------------------------------------------------------------

_REQUIRED = {
    "format": str,
    "format_version": int,
    "backend": str,
    "graph": str,
    "files": dict,
    "batch_size": int,
    "timesteps": int,
    "input": dict,
    "output": dict,
    "states": list,
    "aggregation": str,
    "hashes": dict,
}


def artifact_file(folder: Path, name: object) -> Path:
    """The path of a file the manifest names; only plain names inside the folder pass."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ArtifactError(
            f"{folder / MANIFEST}: file name {name!r} is not a plain file name inside the "
            f"artifact folder; the manifest is damaged or was edited. Recompile."
        )
    return folder / name


def read_manifest(folder: str | os.PathLike) -> dict:
    """Load and validate ``net_params.json`` of an artifact folder."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ArtifactError(
            f"artifact folder {str(folder)!r} does not exist; compile one with "
            f"`bidl compile CONFIG --checkpoint CKPT --out {folder}`"
        )
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ArtifactError(
            f"{path}: a link or not a regular file; an artifact holds only its own files. "
            f"Recompile the artifact."
        )
    if not path.is_file():
        raise ArtifactError(
            f"{str(folder)!r} has no {MANIFEST}: it is not a compiled artifact, or its "
            f"compile did not finish. Recompile with `bidl compile`."
        )
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON ({err}); recompile the artifact") from None
    if isinstance(manifest, dict) and manifest.get("format") == PIPELINE_FORMAT:
        raise ArtifactError(
            f"{str(folder)!r} holds a model cut into segments (bidl compile --segments); run "
            f"it over a device grid with `bidl infer-multi`, or compile without --segments "
            f"for one device"
        )
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a bidl step-graph manifest; recompile the artifact")
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(
                f"{path}: {key!r} is missing or not a {kind.__name__}; recompile the artifact"
            )
    if manifest["format_version"] > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format version {manifest['format_version']} is newer than this bidl "
            f"reads ({FORMAT_VERSION}); upgrade bidl or recompile"
        )
    if manifest["backend"] not in BACKENDS:
        raise ArtifactError(f"{path}: unknown backend {manifest['backend']!r}")
    _check_entries(path, manifest)
    for name in [*graph_files(manifest), *manifest["files"]]:
        artifact_file(folder, name)
    return manifest


MAX_ELEMENTS = 2**28  # a tensor the manifest describes; more means a damaged manifest


def _check_entries(path: Path, manifest: dict) -> None:
    """The nested parts the runtime reads: tensor entries, sizes, hashes (fuzzing found
    damaged ones surfacing as TypeError / KeyError deep inside the runtime)."""

    def bad(where: str, what: str):
        return ArtifactError(f"{path}: {where} {what}; recompile the artifact")

    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for key in ("batch_size", "timesteps"):
        if not is_int(manifest[key]) or manifest[key] < 1:
            raise bad(key, "must be a positive integer")
    if not all(isinstance(v, str) for v in manifest["files"].values()):
        raise bad("'files'", "must map file names to hashes (strings)")
    if not all(isinstance(v, str) for v in manifest["hashes"].values()):
        raise bad("'hashes'", "must map names to hashes (strings)")
    if manifest.get("device") is not None and not isinstance(manifest["device"], str):
        raise bad("'device'", "must be a string")
    if manifest.get("source") is not None and not isinstance(manifest["source"], dict):
        raise bad("'source'", "must be a dict")
    entries = [("input", manifest["input"]), ("output", manifest["output"])]
    if "head" in manifest:  # a detector's neck and head (head_graph.py)
        head = manifest["head"]
        if not isinstance(head, dict) or not isinstance(head.get("graph"), str):
            raise bad("'head'", "must be a dict naming its graph file")
        entries += [("head.input", head.get("input")), ("head.output", head.get("output"))]
    entries += [(f"states[{i}]", s) for i, s in enumerate(manifest["states"])]
    for where, entry in entries:
        if not isinstance(entry, dict):
            raise bad(where, "must be a dict with name, shape and dtype")
        if not isinstance(entry.get("name"), str):
            raise bad(f"{where}.name", "must be a string")
        if not isinstance(entry.get("dtype"), str) or entry["dtype"] not in DTYPE_BYTES:
            raise bad(f"{where}.dtype", f"must be one of {sorted(DTYPE_BYTES)}")
        shape = entry.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(is_int(d) and 0 <= d <= MAX_ELEMENTS for d in shape)
        ):
            raise bad(f"{where}.shape", "must be a non-empty list of non-negative integers")
        if not where.startswith("states") and 0 in shape:  # data and results are never empty
            raise bad(f"{where}.shape", "must be a non-empty list of positive integers")
        count = 1
        for size in shape:
            count *= size
        if count > MAX_ELEMENTS:
            raise bad(f"{where}.shape", f"has more than {MAX_ELEMENTS} elements")
        for key in ("init", "scale"):
            value = entry.get(key, None if where.startswith("states") and key == "init" else 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(f"{where}.{key}", "must be a number")


def graph_files(manifest: dict) -> list[str]:
    """The step graph's file, and a detector's head graph's (``head_graph.py``)."""
    head = manifest.get("head")
    return [manifest["graph"], *([head["graph"]] if isinstance(head, dict) else [])]


def verify_files(folder: Path, manifest: dict) -> None:
    """Every file the manifest lists exists, is a regular file (no link) and has the hash
    it was written with; the graph (and a head graph) are among them."""
    for graph in graph_files(manifest):
        if graph not in manifest["files"]:
            raise ArtifactError(
                f"{folder / MANIFEST}: the graph {graph!r} is not among the hashed "
                f"files; the manifest is damaged or was edited. Recompile the artifact."
            )
    for name, expected in manifest["files"].items():
        path = artifact_file(folder, name)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ArtifactError(
                f"{path}: a link or not a regular file; an artifact holds only its own files "
                f"(a link could point anywhere). Recompile the artifact."
            )
        if not path.is_file():
            raise ArtifactError(f"{str(folder)!r}: {name} is missing; recompile the artifact")
        if file_sha256(path) != expected:
            raise ArtifactError(
                f"{path}: its content does not match the hash in {MANIFEST}: the file is "
                f"corrupted or was changed after compiling. Recompile the artifact."
            )


def stale_reason(folder: str | os.PathLike, expected: dict) -> str | None:
    """Why the artifact at ``folder`` cannot be reused for ``expected``, or None if it can.

    ``expected`` holds manifest keys (nested ``hashes`` and ``input`` values are compared
    key by key); anything unreadable or corrupted is a reason too.
    """
    try:
        manifest = read_manifest(folder)
        verify_files(Path(folder), manifest)
    except ArtifactError as err:
        return str(err)
    return manifest_difference(manifest, expected)


def manifest_difference(manifest: dict, expected: dict) -> str | None:
    """The first key of ``expected`` whose value ``manifest`` does not have, said in words
    (nested dicts are compared key by key); None when all match."""
    for key, want in expected.items():
        have = manifest.get(key)
        if isinstance(want, dict):
            for sub, sub_want in want.items():
                sub_have = (have or {}).get(sub)
                if sub_have != sub_want:
                    return f"{key}.{sub} differs (artifact: {sub_have!r}, now: {sub_want!r})"
        elif have != want:
            return f"{key} differs (artifact: {have!r}, now: {want!r})"
    return None


# --- writing --------------------------------------------------------------------------


class ArtifactWriteError(ArtifactError, fileio.WriteError):
    """An artifact folder could not be written (full disk, read-only place)."""


def write_artifact(
    folder: str | os.PathLike,
    write_graph: Callable[[Path], None],
    manifest: dict,
    summary: str,
    check: Callable[[Path, Path], None] | None = None,
) -> Path:
    """Write an artifact atomically: graph files, summary, then ``net_params.json``, into a
    temporary folder beside ``folder`` that replaces it only once ``check(tmp, folder)``
    passes (``compile_model`` checks that it opens and runs; None skips that).

    ``write_graph(tmp_folder)`` writes the graph file(s); ``manifest['files']`` is filled
    with the hash of every file it wrote.
    """
    folder = Path(folder)
    with staged_folder(folder) as tmp:
        write_graph(tmp)
        manifest = dict(manifest, files={p.name: file_sha256(p) for p in sorted(tmp.iterdir())})
        write_manifest(tmp, manifest, summary)
        if check is not None:
            check(tmp, folder)
    return folder


@contextlib.contextmanager
def staged_folder(target: Path):
    """A temporary folder beside ``target`` to fill, while ``target`` is locked against
    other writers; when the block ends without an error it replaces ``target`` (a swap that
    a kill interrupts is finished by the next writer or reader), otherwise it is deleted."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fileio.write_failure(target, err, ArtifactWriteError, what="folder") from err
    with folder_lock(target):
        fileio.recover_folder(target)
        remove_stale_stages(target)
        with fileio.staged_folder(
            target, error=ArtifactWriteError, hint="Free disk space or pick another --out."
        ) as tmp:
            yield tmp


def recover_interrupted(target: str | os.PathLike) -> str | None:
    """Finish a replacement of ``target`` that a kill interrupted between its two renames
    (``fileio.recover_folder``), unless a writer holds ``target`` now; what was done."""
    target = Path(target)
    if target.exists() or not (
        fileio.journal_path(target).exists()
        or any(target.parent.glob(f".{glob.escape(target.name)}.*.old"))
    ):
        return None
    try:
        with folder_lock(target):
            return fileio.recover_folder(target)
    except (LockError, OSError):
        return None


STALE_STAGE_S = 3600.0


def remove_stale_stages(target: Path, older_than_s: float = STALE_STAGE_S) -> list[Path]:
    """Delete temporary folders of ``target`` that a killed compile left behind (nothing
    trusts them: they have no place under the target's name). A folder named with the pid
    of its writer goes when that process is dead; others when untouched for
    ``older_than_s``, so a compile still running beside this one keeps its folder."""
    removed = []
    now = time.time()
    for stage in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if stage.suffix not in (".tmp", ".old") or not stage.is_dir() or stage.is_symlink():
            continue
        pid = fileio.writer_pid(stage)
        if pid is not None:
            stale = not fileio.pid_alive(pid)
        else:
            newest = max((p.lstat().st_mtime for p in stage.rglob("*")), default=0.0)
            stale = now - max(newest, stage.stat().st_mtime) > older_than_s
        if stale:
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    return removed


def write_manifest(folder: Path, manifest: dict, summary: str) -> None:
    """The summary, then the manifest: written last, it marks the folder complete."""
    fileio.write_text(folder / SUMMARY, summary, error=ArtifactWriteError)
    fileio.write_json(folder / MANIFEST, manifest, error=ArtifactWriteError)


def replace_folder(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an old ``target`` is moved aside first, then deleted
    (see ``fileio.replace_folder``)."""
    if target.exists() and (not target.is_dir() or target.is_symlink()):
        raise ArtifactError(f"{str(target)!r} exists and is not a folder; pick another --out")
    fileio.replace_folder(new, target)


def tensor_table(manifest: dict) -> list[tuple[str, str, list[int], str, int]]:
    """(role, name, shape, dtype, bytes) of the graph's input, output and states."""
    rows = []
    for role, entry in (("input", manifest["input"]), ("output", manifest["output"])):
        rows.append((role, entry["name"], entry["shape"], entry["dtype"]))
    rows += [("state", s["name"], s["shape"], s["dtype"]) for s in manifest["states"]]
    table = []
    for role, name, shape, dtype in rows:
        count = 1
        for size in shape:
            count *= int(size)
        table.append((role, name, list(shape), dtype, count * DTYPE_BYTES.get(dtype, 4)))
    return table


def describe_manifest(manifest: dict) -> str:
    """A human-readable description of an artifact: BIDL's model description, in text."""
    inp = manifest["input"]
    lines = [
        f"backend: {manifest['backend']} ({manifest['graph']})"
        + (f", device {manifest['device']}" if manifest.get("device") else ""),
        f"batch size: {manifest['batch_size']}, timesteps: {manifest['timesteps']}, "
        f"aggregation: {manifest['aggregation']}",
        f"input dtype: {inp['dtype']}"
        + (
            f" (scaled by {inp.get('scale', 1.0):g} in the graph)"
            if inp["dtype"] == "uint8"
            else ""
        ),
        f"inputs: {1 + len(manifest['states'])} (x_t and {len(manifest['states'])} states), "
        f"outputs: {1 + len(manifest['states'])} (y_t and the new states)",
        "",
        f"{'role':<7} {'name':<36} {'shape':<22} {'dtype':<8} {'bytes':>10}",
    ]
    for role, name, shape, dtype, nbytes in tensor_table(manifest):
        lines.append(f"{role:<7} {name:<36} {str(shape):<22} {dtype:<8} {nbytes:>10}")
    hashes = manifest["hashes"]
    lines += [
        "",
        f"config hash:  {hashes.get('config', '?')}",
        f"weights hash: {hashes.get('weights', '?')}",
    ]
    if manifest.get("source"):
        lines.append(
            "compiled from: " + ", ".join(f"{k} {v}" for k, v in manifest["source"].items())
        )
    return "\n".join(lines)
