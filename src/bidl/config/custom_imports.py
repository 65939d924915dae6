"""A config's ``custom_imports``: the user's own modules (datasets, backbones, pipeline
steps) imported before anything is built, so their ``register_module`` decorators run.

``custom_imports = dict(imports=["my_dataset", "plugins/steps.py"])`` names modules
importable as usual (on ``PYTHONPATH``), or else files found relative to the config's
folder: ``my_dataset`` -> ``<config folder>/my_dataset.py``, or a ``.py`` path. No edit
inside bidl and no ``sys.path`` change is needed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

from ..registry import BidlError


def _load_file(path: Path, module_name: str) -> ModuleType:
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _private_name(path: Path) -> str:
    """The module name a file beside a config is imported under: unique per path, so two
    projects' ``my_dataset.py`` in one process do not shadow each other."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return f"bidl_custom_{path.stem}_{digest}"


def _import_one(name: str, folder: Path) -> ModuleType:
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = (folder / name).resolve()
        if not path.is_file():
            raise ModuleNotFoundError(f"no file {path}")
        return _load_file(path, _private_name(path))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name.split(".")[0]:
            raise  # the module exists but imports something missing
        path = folder / (name.replace(".", "/") + ".py")
        if not path.is_file():
            raise ModuleNotFoundError(
                f"no module {name!r} on the path and no file {path}"
            ) from None
        return _load_file(path.resolve(), _private_name(path.resolve()))


def import_custom_modules(custom_imports, config_path: str | Path) -> list[ModuleType]:
    """Import what ``custom_imports`` (``dict(imports=[...], allow_failed_imports=False)``)
    names; modules not found elsewhere are looked up beside ``config_path``."""
    if not custom_imports:
        return []
    if not isinstance(custom_imports, dict) or "imports" not in custom_imports:
        raise BidlError(
            f"config {config_path}: custom_imports must be dict(imports=[module names or .py "
            f"paths]), got {custom_imports!r}"
        )
    imports = custom_imports["imports"]
    imports = [imports] if isinstance(imports, str) else list(imports)
    allow_failed = bool(custom_imports.get("allow_failed_imports", False))
    folder = Path(config_path).resolve().parent
    modules = []
    for name in imports:
        try:
            modules.append(_import_one(name, folder))
        except ModuleNotFoundError as err:
            message = (
                f"config {config_path}: custom_imports cannot find {name!r} ({err}); give a "
                f"module on PYTHONPATH or a .py file relative to the config's folder {folder}"
            )
            if allow_failed:
                warnings.warn(message, stacklevel=2)
                continue
            raise BidlError(message) from None
        except Exception as err:
            raise BidlError(
                f"config {config_path}: custom_imports {name!r} failed while importing: "
                f"{type(err).__name__}: {err}"
            ) from err
    return modules
