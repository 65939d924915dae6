"""File output for figures and their data, written durably through ``bidl.fileio``."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

from .. import fileio
from ..registry import BidlError


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` durably (``bidl.fileio``), so a reader never sees half a
    file and a failure leaves the old file in place."""
    return fileio.write_bytes(path, data, hint="Free disk space or pick another --out.")


def _clean(value):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data) -> Path:
    return write_bytes(path, (json.dumps(_clean(data), indent=2) + "\n").encode())


def save_figure(fig, path: str | os.PathLike, formats=("png", "svg"), dpi: int = 100) -> list[Path]:
    """Save a matplotlib figure as ``path`` with each suffix of ``formats``; returns the paths.
    The figure keeps its size: a PNG is ``figsize * dpi`` pixels."""
    path = Path(path)
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi)
        written.append(write_bytes(path.with_suffix(f".{fmt}"), buffer.getvalue()))
    return written


def new_figure(width: float, height: float):
    """A matplotlib figure drawn by the Agg backend, without touching pyplot's global state."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # matplotlib is the 'plots' extra
        raise BidlError(
            "figures need matplotlib, which is not installed; install it with: "
            "pip install 'bidl[plots]'"
        ) from None

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig
