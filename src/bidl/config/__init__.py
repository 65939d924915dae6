"""Config files: find one by name, load it (mmengine's ``Config``), apply overrides."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from mmengine.config import Config, DictAction

from ..registry import BidlError
from .check import check_config
from .compat import adapt_bidl_config
from .custom_imports import import_custom_modules
from .ranges import check_override_depth

__all__ = ["Config", "config_roots", "find_config", "list_configs", "load_config"]

# src/bidl/config/__init__.py: three folders up is the project root
_PROJECT_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def config_roots() -> list[Path]:
    """Folders searched for configs: ``$BIDL_CONFIG_PATH`` entries, ./configs, the project's."""
    roots = [Path(p) for p in os.environ.get("BIDL_CONFIG_PATH", "").split(os.pathsep) if p]
    roots += [Path.cwd() / "configs", _PROJECT_CONFIGS]
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and root.resolve() not in [u.resolve() for u in unique]:
            unique.append(root)
    return unique


def list_configs() -> dict[str, Path]:
    """Every config file under the config roots, by name (the file's stem)."""
    found: dict[str, Path] = {}
    for root in config_roots():
        for path in sorted(root.rglob("*.py")):
            if not path.name.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def find_config(name_or_path: str | os.PathLike) -> Path:
    """Resolve a config path, or a bare config name such as ``clif3fc3dm_itout-b16x1-digitsdvs``."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".py" and candidate.is_file():
        return candidate
    if candidate.is_file():
        raise BidlError(f"config {str(candidate)!r} is not a Python file; configs are .py files")
    name = candidate.name.removesuffix(".py")
    configs = list_configs()
    if name in configs:
        return configs[name]
    close = difflib.get_close_matches(name, configs, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    where = ", ".join(str(r) for r in config_roots()) or "no configs/ folder found"
    raise BidlError(
        f"no config named {name!r}{hint}; searched {where}. "
        f"Give a path to a .py file or a name from `bidl list configs`."
    )


def parse_cfg_options(items: list[str], flag: str = "--cfg-options") -> dict:
    """``["runner.max_epochs=2", "model.backbone.neuron=lifplus"]`` -> a dict of overrides
    (values parsed as mmengine's ``DictAction`` parses them: numbers, ``None``, ``True``,
    lists ``[1,2]``, tuples ``(1,2)``). A malformed item is one ``BidlError`` that says how
    to write it."""
    options: dict = {}
    for index, item in enumerate(items):
        key, equals, value = item.partition("=")
        if equals and key.strip():
            check_override_depth({key.strip(): value}, flag)  # before a recursive parse
            options[key.strip()] = DictAction._parse_iterable(value)
            continue
        if not equals:
            following = items[index + 1] if index + 1 < len(items) else None
            fix = (
                f"{item}={following}"
                if following is not None and "=" not in following
                else f"{item}=VALUE"
            )
            raise BidlError(
                f"{flag}: {item!r} has no '='; write each override as KEY=VALUE with "
                f"no spaces around '=' (here: {fix})"
            )
        raise BidlError(
            f"{flag}: {item!r} has no key before '='; write KEY=VALUE, e.g. runner.max_epochs=2"
        )
    return options


def load_config(name_or_path: str | os.PathLike, cfg_options: dict | None = None) -> Config:
    """Load a config by name or path and merge ``--cfg-options`` style overrides (``a.b=c``)."""
    path = find_config(name_or_path)
    try:
        cfg = Config.fromfile(str(path), import_custom_modules=False)
    except Exception as err:  # syntax errors and bad imports inside the user's file
        raise BidlError(f"could not read config {str(path)!r}: {err}") from err
    import_custom_modules(cfg.get("custom_imports"), path)
    if cfg_options:
        check_override_depth(cfg_options)  # before a recursive merge
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:  # e.g. a dict over a string: mmengine's TypeError
            raise BidlError(
                f"--cfg-options {sorted(cfg_options)} do not fit config {str(path)!r}: {err}"
            ) from None
    adapt_bidl_config(cfg)  # BIDL's own keys -> bidl's, with a note each
    for part in ("model", "data"):
        if part not in cfg:
            raise BidlError(f"config {str(path)!r} has no {part!r} section; see docs/config.md")
    try:
        check_config(cfg)
    except BidlError as err:
        raise type(err)(f"config {str(path)!r}: {err}") from None
    return cfg


def config_name(cfg: Config) -> str:
    """The config's name: its file's stem (the name ``--config`` takes)."""
    return Path(cfg.filename).stem if cfg.filename else "config"
