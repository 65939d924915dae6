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
            f"{registry.name} {obj_type!r}: {err}; check the keys of its config"
        ) from None
    except ValueError:  # builtins without a signature
        pass
    return factory(**kwargs)


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
