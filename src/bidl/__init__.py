"""bidl: brain-inspired deep spiking networks for spatiotemporal data.

The public Python API (see docs/python-api.md) is importable from here:
``bidl.load_config``, ``bidl.build_classifier``, ``bidl.train_model``, ``bidl.Runtime``, ...
Each name is imported on first access (PEP 562), so ``import bidl`` loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "BidlError": "bidl.registry",
    "Registry": "bidl.registry",
    "BACKBONES": "bidl.registry",
    "CLASSIFIERS": "bidl.registry",
    "DATASETS": "bidl.registry",
    "HEADS": "bidl.registry",
    "LOSSES": "bidl.registry",
    "NECKS": "bidl.registry",
    "NEURONS": "bidl.registry",
    "PIPELINES": "bidl.registry",
    "load_config": "bidl.config",
    "find_config": "bidl.config",
    "list_configs": "bidl.config",
    "build_classifier": "bidl.models",
    "build_dataset": "bidl.datasets",
    "build_dataloader": "bidl.engine.dataloader",
    "train_model": "bidl.engine",
    "evaluate_checkpoint": "bidl.engine",
    "load_weights": "bidl.engine",
    "reset_states": "bidl.neurons",
    "compile_config": "bidl.deploy",
    "compile_model": "bidl.deploy",
    "Runtime": "bidl.deploy",
    "export_nir": "bidl.deploy.nir_export",
    "to_nir": "bidl.deploy.nir_export",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bidl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
