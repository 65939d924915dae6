"""Registries: map the type names used in config files to classes.

A config says ``dict(type="SeqClif3Fc3DmItout", nclass=10)``; ``build`` looks the name up
in the right registry and calls the class with the other keys.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any


class BidlError(Exception):
    """An error a user can cause and fix; its message says what, where and what to do."""


class UnknownTypeError(BidlError, KeyError):
    """A config names a type no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    """A named table of classes (or factory functions), filled by a decorator."""

    def __init__(self, name: str):
        self.name = name
        self._modules: dict[str, Callable] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {len(self)} entries)"

    def names(self) -> list[str]:
        return sorted(self._modules)

    def get(self, key: str) -> Callable:
        if key not in self._modules:
            close = difflib.get_close_matches(key, self._modules, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise UnknownTypeError(
                f"unknown {self.name} {key!r}{hint}; "
                f"`bidl list` shows the registered names, or register your own with "
                f"@{self.name.upper()}S.register_module()"
            )
        return self._modules[key]

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
                    raise KeyError(f"{key!r} is already registered in the {self.name} registry")
                self._modules[key] = obj
            return obj

        if module is not None:
            return register(module)
        return register

    def build(self, cfg: dict | None, **default_args: Any) -> Any:
        return build(cfg, self, **default_args)


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
        return factory(**kwargs)
    except TypeError as err:  # a **kwargs passed on to a base class that does not take it
        if "unexpected keyword argument" not in str(err):
            raise
        raise BidlError(
            f"{registry.name} {obj_type!r}: {err}; {_takes(factory)}check the keys of its config"
        ) from None


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


BACKBONES = Registry("backbone")
NECKS = Registry("neck")
HEADS = Registry("head")
LOSSES = Registry("loss")
CLASSIFIERS = Registry("classifier")
DATASETS = Registry("dataset")
PIPELINES = Registry("pipeline")
NEURONS = Registry("neuron")

REGISTRIES = {
    "models": BACKBONES,
    "classifiers": CLASSIFIERS,
    "heads": HEADS,
    "losses": LOSSES,
    "datasets": DATASETS,
    "pipelines": PIPELINES,
    "neurons": NEURONS,
}
