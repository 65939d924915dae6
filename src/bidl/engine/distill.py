"""Distillation from a frozen teacher (DeiT; BIDL's Meta-SpikeFormer fine-tuning uses a
CAFormer teacher with ``--distillation_type hard``), through the training targets.

Cross entropy is linear in its target, so the student's loss

    (1 - alpha) * CE(student, y) + alpha * CE(student, t)

is one cross entropy against the mixed target ``(1 - alpha) * y + alpha * t``: ``t`` is
the teacher's top class one-hot (``kind='hard'``) or its softmax (``kind='soft'``, the
KL divergence at temperature 1, up to a constant). The student keeps its one head and
its configured loss (label smoothing applies to the whole target).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config import load_config
from ..models import build_classifier
from ..registry import BidlError
from .checkpoint import load_weights

KINDS = ("hard", "soft")


def build_teacher(cfg: Mapping, device: torch.device | str = "cpu") -> nn.Module:
    """The frozen teacher of ``distill.teacher``: ``dict(config=NAME_OR_PATH,
    checkpoint=PATH)`` (the model section of that config) or ``dict(model=dict(...),
    checkpoint=PATH)``; any classifier bidl builds, a non-spiking one included (register
    it through ``custom_imports``). It takes the student's input ``[B, T, ...]``."""
    if not isinstance(cfg, Mapping) or "checkpoint" not in cfg:
        raise BidlError(
            "distill.teacher needs dict(config=NAME_OR_PATH, checkpoint=PATH) or "
            f"dict(model=dict(...), checkpoint=PATH); got {cfg!r:.80}"
        )
    if ("config" in cfg) == ("model" in cfg):
        raise BidlError("distill.teacher: give one of 'config' (a config name or path) or 'model'")
    model_cfg = cfg["model"] if "model" in cfg else load_config(cfg["config"]).model
    teacher = build_classifier(dict(model_cfg))
    load_weights(teacher, cfg["checkpoint"])
    return teacher.to(device).eval().requires_grad_(False)


class Distiller:
    """``distiller(img, targets) -> targets``: mixes the teacher's opinion on ``img`` into
    the (soft) targets ``[B, K]`` with weight ``alpha``."""

    def __init__(self, teacher: nn.Module, kind: str = "hard", alpha: float = 0.5) -> None:
        if kind not in KINDS:
            raise BidlError(
                f"distill.kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}"
            )
        if not 0 <= alpha <= 1:
            raise BidlError(f"distill.alpha must be in [0, 1], got {alpha!r}")
        self.teacher, self.kind, self.alpha = teacher, kind, float(alpha)

    @torch.no_grad()
    def __call__(self, img: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        probs = self.teacher(img, return_loss=False).float()
        if probs.shape != targets.shape:
            raise BidlError(
                f"distill: the teacher gives {list(probs.shape)} class scores for targets "
                f"{list(targets.shape)}; teacher and student must have the same classes"
            )
        if self.kind == "hard":
            probs = F.one_hot(probs.argmax(dim=1), probs.shape[1]).to(probs.dtype)
        return targets * (1.0 - self.alpha) + probs * self.alpha
