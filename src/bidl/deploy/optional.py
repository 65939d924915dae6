"""Optional dependencies of deployment (onnx, onnxruntime, nir): imported when used, with
one error naming the extra that installs them."""

from __future__ import annotations

import importlib

from ..registry import BidlError


def require(module: str, what: str):
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BidlError(
            f"{what} needs the package {module!r}, which is not installed; "
            f"install the deployment extra: pip install 'bidl[deploy]'"
        ) from None
