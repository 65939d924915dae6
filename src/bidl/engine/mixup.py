"""Mixup and CutMix on whole batches, on the device (the recipe of DeiT and of the spiking
transformers' training code, timm's ``Mixup`` in ``mode='batch'``).

A batch ``img`` ``[B, T, C, H, W]`` is mixed with itself reversed along the batch: mixup
blends the two, ``lam * x + (1 - lam) * x.flip(0)``; CutMix pastes a box of the reversed
batch into every sample, the same box at every timestep, and ``lam`` becomes the area
kept. The targets mix the same way into soft labels ``[B, K]``. ``lam`` is drawn from
``Beta(alpha, alpha)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import BidlError


class BatchMixer:
    """``mixer(img, labels, epoch) -> (img, soft_targets)``.

    - ``mixup_alpha`` / ``cutmix_alpha``: Beta parameters; 0 turns that kind off.
    - ``prob``: the chance that a batch is mixed at all (else one-hot targets).
    - ``switch_prob``: with both kinds on, the chance of CutMix instead of mixup.
    - ``off_epoch``: from this epoch on (counted from 0), no more mixing (DeiT's
      ``mixup_off_epoch``); None: never off.
    - ``num_classes``: the width of the targets.

    Draws come from its own generator (``seed``), so a run is repeatable and the model's
    random state is untouched.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        off_epoch: int | None = None,
        seed: int = 0,
    ) -> None:
        if mixup_alpha < 0 or cutmix_alpha < 0 or not (mixup_alpha > 0 or cutmix_alpha > 0):
            raise BidlError(
                f"mixup: mixup_alpha and cutmix_alpha must be >= 0 and one of them > 0, got "
                f"{mixup_alpha!r} and {cutmix_alpha!r}"
            )
        if not (0 <= prob <= 1 and 0 <= switch_prob <= 1):
            raise BidlError(
                f"mixup: prob and switch_prob must be in [0, 1], got {prob!r}, {switch_prob!r}"
            )
        self.num_classes = int(num_classes)
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob = float(prob), float(switch_prob)
        self.off_epoch = off_epoch
        self.rng = np.random.default_rng(seed)

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels.long(), self.num_classes).float()

    def __call__(
        self, img: torch.Tensor, labels: torch.Tensor, epoch: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        targets = self.one_hot(labels)
        if (self.off_epoch is not None and epoch >= self.off_epoch) or (
            self.rng.random() >= self.prob
        ):
            return img, targets
        cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha == 0 or self.rng.random() < self.switch_prob
        )
        lam = float(self.rng.beta(*(2 * [self.cutmix_alpha if cutmix else self.mixup_alpha])))
        if not img.is_floating_point():
            img = img.float()
        if cutmix:
            img, lam = self.cut(img, lam)
        else:
            img = img * lam + img.flip(0) * (1.0 - lam)
        return img, targets * lam + targets.flip(0) * (1.0 - lam)

    def cut(self, img: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
        """Paste a box of the reversed batch covering about ``1 - lam`` of the frame; the
        box is clipped at the border, and ``lam`` becomes the area actually kept."""
        height, width = img.shape[-2:]
        ratio = math.sqrt(1.0 - lam)
        box_h, box_w = int(height * ratio), int(width * ratio)
        cy, cx = int(self.rng.integers(height)), int(self.rng.integers(width))
        y0, y1 = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
        x0, x1 = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
        mixed = img.clone()
        mixed[..., y0:y1, x0:x1] = img.flip(0)[..., y0:y1, x0:x1]
        return mixed, 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
