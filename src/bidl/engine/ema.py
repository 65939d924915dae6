"""An exponential moving average of a model's weights (timm's ``ModelEmaV2``, DeiT's
``model_ema``): after every optimizer step ``ema = decay * ema + (1 - decay) * weights``
for every floating-point entry of the state dict (batch-norm statistics included);
integer entries (batch counters) are copied.

With ``warmup`` (the default) the decay of update ``n`` is ``min(decay, (1 + n) / (10 +
n))`` (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``, timm's warm-up):
early averages follow the weights instead of holding on to the initial ones. A spiking
network needs it: its batch-norm variances fall fast in the first steps, and an average
still weighted towards the initial ones leaves every membrane below threshold."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..registry import BidlError


class ModelEma:
    """``ModelEma(model, decay)``; ``update(model)`` after each step; ``module`` is the
    averaged copy (in eval mode, no gradients), the model to validate when ``evaluate``."""

    def __init__(
        self, model: nn.Module, decay: float = 0.9998, evaluate: bool = True, warmup: bool = True
    ) -> None:
        if not 0 < decay < 1:
            raise BidlError(f"ema.decay must be in (0, 1), e.g. 0.9998; got {decay!r}")
        self.decay = float(decay)
        self.evaluate, self.warmup = bool(evaluate), bool(warmup)
        self.updates = 0  # restored from the checkpoint's iteration on resume
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        self.updates += 1
        state = model.state_dict()
        for key, average in self.module.state_dict().items():
            value = state[key].detach()
            if average.is_floating_point():
                average.lerp_(value.to(average.dtype), weight)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
