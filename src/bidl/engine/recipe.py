"""The training-recipe keys of a config around each step: ``mixup`` (mixup / CutMix),
``distill`` (a frozen teacher) and ``ema`` (averaged weights). The runner calls:

- ``targets(img, labels, epoch)`` before the forward: the (mixed) input and the targets,
  soft ``[B, K]`` when mixing or distilling, else the labels unchanged;
- ``after_step(model)`` after each optimizer step (EMA);
- ``eval_model(model)``: the model to validate (the EMA copy with ``ema.evaluate``);
- ``checkpoint(model)``: the model whose weights are the checkpoint's ``state_dict`` and
  the extra entries (``ema_state_dict`` or ``train_state_dict``);
- ``resume(checkpoint, model)``: restore both after ``load_weights``.

With ``ema.evaluate=True`` the checkpoint's ``state_dict`` holds the averaged weights,
the ones validation measured: ``bidl test``, ``compile`` and ``analyze`` read them; the
training weights travel as ``train_state_dict`` for ``--resume``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import BidlError
from .distill import Distiller, build_teacher
from .ema import ModelEma
from .mixup import BatchMixer


def _num_classes(cfg: Mapping, train_set) -> int:
    """The width of soft targets: ``mixup.num_classes``, else the training set's classes,
    else the backbone's ``nclass``."""
    given = (cfg.get("mixup") or {}).get("num_classes")
    if given is None and getattr(train_set, "CLASSES", None):
        given = len(train_set.CLASSES)
    if given is None:
        given = ((cfg.get("model") or {}).get("backbone") or {}).get("nclass")
    if given is None:
        raise BidlError(
            "mixup / distill need the number of classes: set mixup.num_classes (the training "
            "set names no CLASSES and the backbone no nclass)"
        )
    return int(given)


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), classes).float()


class TrainingRecipe:
    """Built from the config by the runner; without the keys every call is a no-op."""

    def __init__(self, cfg: Mapping, model: nn.Module, train_set, device, seed: int = 0) -> None:
        mixup = dict(cfg.get("mixup") or {})
        distill = dict(cfg.get("distill") or {})
        self.mixer = self.distiller = self.ema = None
        if mixup or distill:
            mixup.pop("num_classes", None)
            classes = _num_classes(cfg, train_set)
        if mixup:
            self.mixer = BatchMixer(classes, seed=seed, **mixup)
        if distill:
            teacher = build_teacher(distill.pop("teacher", None), device)
            self.distiller = Distiller(teacher, **distill)
        self.classes = classes if mixup or distill else 0
        if cfg.get("ema"):
            self.ema = ModelEma(model, **dict(cfg["ema"]))

    def targets(
        self, img: torch.Tensor, labels: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mixer is not None:
            img, labels = self.mixer(img, labels, epoch)
        if self.distiller is not None:
            soft = labels if labels.is_floating_point() else one_hot(labels, self.classes)
            labels = self.distiller(img, soft)
        return img, labels

    def after_step(self, model: nn.Module) -> None:
        if self.ema is not None:
            self.ema.update(model)

    def eval_model(self, model: nn.Module) -> nn.Module:
        return self.ema.module if self.ema is not None and self.ema.evaluate else model

    def checkpoint(self, model: nn.Module) -> tuple[nn.Module, dict]:
        if self.ema is None:
            return model, {}
        if self.ema.evaluate:
            return self.ema.module, {"train_state_dict": model.state_dict()}
        return model, {"ema_state_dict": self.ema.state_dict()}

    def resume(self, checkpoint: Mapping, model: nn.Module) -> None:
        if self.ema is None:
            return
        self.ema.updates = int((checkpoint.get("meta") or {}).get("iter", 0))
        if "train_state_dict" in checkpoint:  # state_dict holds the averaged weights
            self.ema.load_state_dict(checkpoint["state_dict"])
            model.load_state_dict(checkpoint["train_state_dict"])
        elif "ema_state_dict" in checkpoint:
            self.ema.load_state_dict(checkpoint["ema_state_dict"])
        else:  # a checkpoint of a run without EMA: start the average here
            self.ema.load_state_dict(model.state_dict())
