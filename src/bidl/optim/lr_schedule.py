"""Learning-rate policies of BIDL's ``lr_config`` (mmcv's names), as pure functions of progress.

The lr depends only on (epoch, iteration), so resuming needs no scheduler state.
"""

from __future__ import annotations

import math

from ..registry import BidlError

POLICIES = ("Fixed", "Step", "MultiStepLR", "CosineAnnealing", "Poly", "Exp")
WARMUPS = ("constant", "linear", "exp")


class LrSchedule:
    """``lr_config=dict(policy=..., by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=0.1,
    **policy_args)``; ``lr(base_lr, epoch, iteration)`` gives the lr of one step."""

    def __init__(self, cfg: dict | None, max_epochs: int, iters_per_epoch: int):
        cfg = dict(cfg or {"policy": "Fixed"})
        policy = cfg.pop("policy", "Fixed")
        # mmcv spells policies in several cases ('step', 'cosine', 'CosineAnnealing')
        aliases = {p.lower(): p for p in POLICIES} | {
            "cosine": "CosineAnnealing",
            "multistep": "MultiStepLR",
        }
        if str(policy).lower() not in aliases:
            raise BidlError(f"lr_config.policy {policy!r} is not one of {', '.join(POLICIES)}")
        self.policy = aliases[str(policy).lower()]
        self.by_epoch = cfg.pop("by_epoch", True)
        self.warmup = cfg.pop("warmup", None)
        self.warmup_iters = int(cfg.pop("warmup_iters", 0))
        self.warmup_ratio = float(cfg.pop("warmup_ratio", 0.1))
        if cfg.pop("warmup_by_epoch", False):
            self.warmup_iters *= iters_per_epoch
        if self.warmup is not None and self.warmup not in WARMUPS:
            raise BidlError(f"lr_config.warmup {self.warmup!r} is not one of {', '.join(WARMUPS)}")
        self.max_epochs = max_epochs
        self.iters_per_epoch = iters_per_epoch
        self.args = cfg
        self._check_args()

    def _check_args(self) -> None:
        allowed = {
            "Fixed": set(),
            "Step": {"step", "gamma", "min_lr"},
            "MultiStepLR": {"milestones", "gamma"},
            "CosineAnnealing": {"min_lr", "min_lr_ratio", "T_max"},
            "Poly": {"power", "min_lr"},
            "Exp": {"gamma"},
        }[self.policy]
        unknown = set(self.args) - allowed
        if unknown:
            raise BidlError(
                f"lr_config.{sorted(unknown)[0]}: unknown key(s) {sorted(unknown)} for policy "
                f"{self.policy!r}; it takes {sorted(allowed) or 'no extra keys'}"
            )
        if self.policy == "Step" and "step" not in self.args:
            raise BidlError("lr_config policy 'Step' needs step=N or step=[epochs]")
        if self.policy == "MultiStepLR" and "milestones" not in self.args:
            raise BidlError("lr_config policy 'MultiStepLR' needs milestones=[epochs]")

    def regular_lr(self, base_lr: float, epoch: int, iteration: int) -> float:
        progress, total = (
            (epoch, self.max_epochs)
            if self.by_epoch
            else (iteration, self.max_epochs * self.iters_per_epoch)
        )
        a = self.args
        if self.policy == "Fixed":
            return base_lr
        if self.policy == "Step":
            step = a["step"]
            n = progress // step if isinstance(step, int) else sum(progress >= s for s in step)
            return max(base_lr * a.get("gamma", 0.1) ** n, a.get("min_lr") or 0.0)
        if self.policy == "MultiStepLR":
            return base_lr * a.get("gamma", 0.1) ** sum(progress >= m for m in a["milestones"])
        if self.policy == "CosineAnnealing":
            target = base_lr * a["min_lr_ratio"] if "min_lr_ratio" in a else a.get("min_lr", 0.0)
            # T_max (torch's CosineAnnealingLR): the half period, in epochs or iterations;
            # past it the lr rises again, as torch's does
            period = a.get("T_max", total)
            return target + 0.5 * (base_lr - target) * (1 + math.cos(math.pi * progress / period))
        if self.policy == "Poly":
            min_lr = a.get("min_lr", 0.0)
            return (base_lr - min_lr) * (1 - progress / total) ** a.get("power", 1.0) + min_lr
        return base_lr * a["gamma"] ** progress  # Exp

    def lr(self, base_lr: float, epoch: int, iteration: int) -> float:
        """The lr at ``epoch`` and global ``iteration`` (both counted from 0)."""
        regular = self.regular_lr(base_lr, epoch, iteration)
        if self.warmup is None or iteration >= self.warmup_iters:
            return regular
        if self.warmup == "constant":
            return regular * self.warmup_ratio
        if self.warmup == "linear":
            return regular * (1 - (1 - iteration / self.warmup_iters) * (1 - self.warmup_ratio))
        return regular * self.warmup_ratio ** (1 - iteration / self.warmup_iters)  # exp
