"""Event recordings in HDF5 files (``h5py``, the ``formats`` extra), in the layouts that
cameras and data sets use, read in slices:

- Prophesee (Metavision): a compound dataset ``/CD/events`` with fields x, y, p, t. Metavision
  compresses it with its ECF codec (HDF5 filter 36559); without that plugin the file cannot
  be decoded and the reader says so.
- DSEC: ``events/x``, ``events/y``, ``events/t`` (microseconds from ``t_offset``),
  ``events/p``, with ``t_offset`` and ``ms_to_idx`` beside them; times are returned absolute
  (``t + t_offset``).
- Flat columns: ``x``, ``y``, ``t``, ``p`` datasets at the root or in an ``events`` group
  (integer ``t`` in microseconds).
- MVSEC style: an ``[N, 4]`` array named ``events`` (for instance ``davis/left/events``)
  with columns x, y, t, p; a floating-point ``t`` is in seconds (MVSEC's), an integer one
  in microseconds; polarities -1/1 or 0/1.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .records import EventFileError, events_from_columns, optional_module

BLOCK_EVENTS = 1 << 20
ECF_FILTER = 36559
SUFFIXES = (".h5", ".hdf5", ".hdf")


def _h5py(path):
    return optional_module("h5py", "formats", path, "HDF5 event files")


def find_layout(handle, path) -> tuple[str, dict]:
    """The layout of an open file: ``(name, datasets)``."""
    if "CD" in handle and "events" in handle["CD"]:
        return "prophesee", {"events": handle["CD"]["events"]}
    for group in (handle.get("events"), handle):
        if group is not None and all(k in group for k in "xytp"):
            columns = {k: group[k] for k in "xytp"}
            if all(len(c.shape) == 1 for c in columns.values()):
                offset = handle.get("t_offset")
                return "dsec" if offset is not None else "columns", {**columns, "t_offset": offset}
    found = []
    handle.visititems(
        lambda name, obj: (
            found.append(obj)
            if name.rsplit("/", 1)[-1] == "events"
            and getattr(obj, "shape", None) is not None
            and len(obj.shape) == 2
            and obj.shape[1] == 4
            else None
        )
    )
    if found:
        return "array", {"events": found[0]}
    raise EventFileError(
        f"{path}: no event layout found: expected /CD/events (Prophesee), events/x,y,t,p "
        f"(DSEC), x, y, t, p datasets, or an [N, 4] 'events' array (MVSEC)"
    )


def _check_filters(dataset, path, h5py) -> None:
    """An unreadable compression filter named before any read fails obscurely."""
    plist = dataset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code, _, _, name = plist.get_filter(i)
        if h5py.h5z.filter_avail(code):
            continue
        # hdf5plugin, where installed, makes the common third-party filters available on import
        with contextlib.suppress(ImportError):
            importlib.import_module("hdf5plugin")
        if h5py.h5z.filter_avail(code):
            continue
        label = name.decode("latin-1", "replace") if isinstance(name, bytes) else str(name)
        if code == ECF_FILTER:
            raise EventFileError(
                f"{path}: {dataset.name} is compressed with Prophesee's ECF codec (HDF5 filter "
                f"{ECF_FILTER}), whose plugin is not installed, so it cannot be decoded here; "
                f"install Metavision's HDF5 ECF plugin (and set HDF5_PLUGIN_PATH), or convert "
                f"the recording to .raw or .dat with Metavision"
            )
        raise EventFileError(
            f"{path}: {dataset.name} is compressed with HDF5 filter {code} ({label}), which "
            f"is not installed; pip install hdf5plugin (it provides the common filters)"
        )


def iter_hdf5_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """The events of an HDF5 recording, in slices of ``BLOCK_EVENTS``."""
    path = Path(path)
    h5py = _h5py(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise EventFileError(f"{path}: not a readable HDF5 file ({err})") from None
    with handle:
        layout, data = find_layout(handle, path)
        datasets = [d for k, d in data.items() if k != "t_offset" and d is not None]
        for dataset in datasets:
            _check_filters(dataset, path, h5py)
        lengths = {d.shape[0] for d in datasets}
        if len(lengths) != 1:
            sizes = {d.name: d.shape[0] for d in datasets}
            raise EventFileError(f"{path}: the event columns differ in length: {sizes}")
        total = lengths.pop()
        t_offset = int(np.asarray(data["t_offset"][()]).ravel()[0]) if layout == "dsec" else 0
        for start in range(0, total, BLOCK_EVENTS):
            part = slice(start, min(total, start + BLOCK_EVENTS))
            try:
                yield _decode(layout, data, part, t_offset, path)
            except OSError as err:
                raise EventFileError(
                    f"{path}: cannot read events {part.start}..{part.stop} of "
                    f"{datasets[0].name} ({err})"
                ) from None


def _decode(layout: str, data: dict, part: slice, t_offset: int, path) -> np.ndarray:
    if layout == "prophesee":
        block = data["events"][part]
        columns = {k: block[k] for k in "xytp"}
    elif layout == "array":
        block = np.asarray(data["events"][part])
        columns = dict(zip("xytp", block.T, strict=True))
        if columns["t"].dtype.kind == "f":  # MVSEC: seconds
            columns["t"] = np.round(columns["t"].astype(np.float64) * 1e6)
        for name in "xyp":
            if columns[name].dtype.kind == "f":
                if not np.array_equal(columns[name], np.round(columns[name])):
                    raise EventFileError(f"{path}: {name} of {data['events'].name} is fractional")
                columns[name] = columns[name].astype(np.int64)
    else:
        columns = {k: np.asarray(data[k][part]) for k in "xytp"}
    if t_offset:
        columns["t"] = columns["t"].astype(np.int64) + t_offset
    return events_from_columns(path, columns)
