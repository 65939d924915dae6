"""Registries: map the type names used in config files to classes.

A config says ``dict(type="SeqClif3Fc3DmItout", nclass=10)``; ``build`` looks the name up
in the right registry and calls the class with the other keys.

A registry fills itself: the first time it is asked for a name, its length or its names,
it imports the modules of its ``locations`` (packages searched recursively) that register
something, so ``from bidl.registry import BACKBONES; BACKBONES.build(...)`` works in a
fresh interpreter. This module itself imports nothing of bidl.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class BidlError(Exception):
    """An error a user can cause and fix; its message says what, where and what to do."""


class UnknownTypeError(BidlError, KeyError):
    """A config names a type no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    """A named table of classes (or factory functions), filled by a decorator.

    ``locations``: dotted names of the packages whose modules register into it; they are
    imported on first use (see ``import_locations``)."""

    def __init__(self, name: str, locations: Iterable[str] = ()):
        self.name = name
        self.locations = tuple(locations)
        self._modules: dict[str, Callable] = {}
        self._imported = not self.locations

    def __contains__(self, key: str) -> bool:
        return key in self._table()

    def __len__(self) -> int:
        return len(self._table())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {len(self)} entries)"

    def names(self) -> list[str]:
        return sorted(self._table())

    def get(self, key: str) -> Callable:
        table = self._table()
        if key not in table:
            raise UnknownTypeError(
                f"unknown {self.name} {key!r}{_suggest(key, table)}; "
                f"`bidl list` shows the registered names, or register your own with "
                f"@{self.name.upper()}S.register_module()"
            )
        return table[key]

    def _table(self) -> dict[str, Callable]:
        if not self._imported:
            self.import_locations()
        return self._modules

    def import_locations(self) -> None:
        """Import every module under ``locations`` that registers something.

        A module counts when its source mentions ``register`` (a ``register_module`` call
        or a ``register_*`` decorator); the others (e.g. Triton kernels, which need an
        optional package) are left alone. Marked done first, so that a lookup made while
        these modules import does not start the import again."""
        self._imported = True
        for location in self.locations:
            for module_name in _registering_modules(location):
                importlib.import_module(module_name)

    def register_module(
        self,
        name: str | Iterable[str] | None = None,
        force: bool = False,
        module: Callable | None = None,
    ):
        """Register ``module`` under ``name`` (its own name by default; a list gives aliases).

        Usable as ``@REG.register_module()``, ``@REG.register_module(name=[...])`` or
        ``REG.register_module(module=cls)``.
        """

        def register(obj: Callable) -> Callable:
            names = [obj.__name__] if name is None else [name] if isinstance(name, str) else name
            for key in names:
                if not force and key in self._modules and self._modules[key] is not obj:
                    taken = self._modules[key]
                    raise KeyError(
                        f"{key!r} is already registered in the {self.name} registry (by "
                        f"{taken.__module__}.{taken.__qualname__}); pick another name or "
                        f"pass force=True to replace it"
                    )
                self._modules[key] = obj
            return obj

        if module is not None:
            return register(module)
        return register

    def build(self, cfg: dict | None, **default_args: Any) -> Any:
        return build(cfg, self, **default_args)


def _suggest(key: str, names: Iterable[str]) -> str:
    """`` (did you mean ...?)``: names equal to ``key`` but for case first, then the
    closest spellings (compared case-insensitively)."""
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(key.lower(), by_lower, n=3, cutoff=0.6)
    ranked = [by_lower[c] for c in close]
    if key.lower() in by_lower:  # get_close_matches ranks it first only on ties
        ranked = [by_lower[key.lower()], *(r for r in ranked if r != by_lower[key.lower()])]
    return f" (did you mean {', '.join(repr(c) for c in ranked)}?)" if ranked else ""


def _registering_modules(package: str, search: list[str] | None = None) -> list[str]:
    """Dotted names of ``package`` and of its modules (recursively) that register.

    Reads the files through the finders, importing nothing."""
    if search is None:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.submodule_search_locations is None:
            raise ModuleNotFoundError(f"registry location {package!r} is not a package")
        search = list(spec.submodule_search_locations)
    found = []
    for info in pkgutil.iter_modules(search):
        name = f"{package}.{info.name}"
        if info.ispkg:
            found += _registering_modules(name, [str(Path(info.module_finder.path) / info.name)])
            continue
        spec = info.module_finder.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        if origin and origin.suffix == ".py" and _calls_register(origin.read_text("utf-8")):
            found.append(name)
    return found


def _calls_register(source: str) -> bool:
    """Whether the code (not its docstrings or comments) calls something named
    ``register...`` (``@REG.register_module()``, ``register_spiking_backbone(...)``, ...)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("register"):
                return True
    return False


def build(cfg: dict | None, registry: Registry, **default_args: Any) -> Any:
    """Build an object from ``dict(type=NAME, **kwargs)``; ``default_args`` fill missing keys."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise BidlError(
            f"a {registry.name} config must be a dict with a 'type' key, got {type(cfg).__name__}"
        )
    if "type" not in cfg:
        raise BidlError(f"a {registry.name} config needs a 'type' key; got keys {sorted(cfg)}")
    kwargs = {k: v for k, v in dict(cfg).items() if k != "type"}
    for key, value in default_args.items():
        kwargs.setdefault(key, value)
    obj_type = cfg["type"]
    factory = registry.get(obj_type) if isinstance(obj_type, str) else obj_type
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:
        raise BidlError(
            f"{registry.name} {obj_type!r}: {err}; {_takes(factory)}check the keys of its config"
        ) from None
    except ValueError:  # builtins without a signature
        pass
    try:
        obj = factory(**kwargs)
    except TypeError as err:  # a **kwargs passed on to a base class that does not take it
        if "unexpected keyword argument" not in str(err):
            raise
        raise BidlError(
            f"{registry.name} {obj_type!r}: {err}; {_takes(factory)}check the keys of its config"
        ) from None
    if hasattr(obj, "config_keys"):  # a class that declares it is told its config's keys
        obj.config_keys = tuple(sorted(k for k in dict(cfg) if k != "type"))
    return obj


def accepted_keys(factory: Callable) -> tuple[set[str], bool]:
    """The keyword names ``factory`` takes, and whether it takes any other (an open ``**kw``).

    A class whose ``__init__`` passes ``**kwargs`` on to its base classes takes the keys of
    every ``__init__`` up the chain; the chain is closed when one of them has no ``**kw``."""
    inits = (
        [c.__dict__["__init__"] for c in factory.__mro__ if "__init__" in c.__dict__]
        if inspect.isclass(factory)
        else [factory]
    )
    names: set[str] = set()
    for init in inits:
        if init is object.__init__:
            break
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):  # builtins without a signature
            return names, True
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}, False
    return names - {"self"}, True


def _takes(factory: Callable) -> str:
    names, is_open = accepted_keys(factory)
    if is_open or not names:
        return ""
    return f"it takes {', '.join(sorted(names))}; "


def check_keys(cfg: Any, registry: Registry, path: str) -> None:
    """Check the config ``cfg`` found at key path ``path`` (e.g. ``model.backbone``) before it
    is built: a dict whose ``type`` ``registry`` knows and whose other keys that type takes.
    Missing keys are left to the build; a mistake raises a ``BidlError`` naming the path."""
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        raise BidlError(
            f"{path}: expected a dict with a 'type' key (a {registry.name} config), "
            f"got {type(cfg).__name__} {cfg!r:.60}"
        )
    if "type" not in cfg:
        raise BidlError(f"{path}: a {registry.name} config needs a 'type' key; got {sorted(cfg)}")
    obj_type = cfg["type"]
    if not isinstance(obj_type, str):
        if callable(obj_type):
            return
        raise BidlError(
            f"{path}.type: expected a {registry.name} name (a string), got {obj_type!r}"
        )
    try:
        factory = registry.get(obj_type)
    except UnknownTypeError as err:
        raise UnknownTypeError(f"{path}.type: {err}") from None
    names, is_open = accepted_keys(factory)
    unknown = sorted(k for k in cfg if k != "type" and k not in names)
    if unknown and not is_open:
        key = unknown[0]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BidlError(
            f"{path}.{key}: unknown key for {registry.name} {obj_type!r}{hint}; "
            f"it takes {', '.join(sorted(names)) or 'no keys'}"
        )


# where each registry's entries are defined (imported on first use)
_MODELS = ("bidl.models",)
_DATASETS = ("bidl.datasets",)

BACKBONES = Registry("backbone", _MODELS)
NECKS = Registry("neck", _MODELS)
HEADS = Registry("head", _MODELS)
LOSSES = Registry("loss", _MODELS)
CLASSIFIERS = Registry("classifier", _MODELS)
DATASETS = Registry("dataset", _DATASETS)
PIPELINES = Registry("pipeline", _DATASETS)
NEURONS = Registry("neuron", ("bidl.neurons",))

REGISTRIES = {
    "models": BACKBONES,
    "classifiers": CLASSIFIERS,
    "heads": HEADS,
    "losses": LOSSES,
    "datasets": DATASETS,
    "pipelines": PIPELINES,
    "neurons": NEURONS,
}
