"""An exponential moving average of a model's weights (timm's ``ModelEmaV2``, DeiT's
``model_ema``): after every optimizer step ``ema = decay * ema + (1 - decay) * weights``
for every floating-point entry of the state dict (batch-norm statistics included);
integer entries (batch counters) are copied."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..registry import BidlError


class ModelEma:
    """``ModelEma(model, decay)``; ``update(model)`` after each step; ``module`` is the
    averaged copy (in eval mode, no gradients), the model to validate when ``evaluate``."""

    def __init__(self, model: nn.Module, decay: float = 0.9998, evaluate: bool = True) -> None:
        if not 0 < decay < 1:
            raise BidlError(f"ema.decay must be in (0, 1), e.g. 0.9998; got {decay!r}")
        self.decay = float(decay)
        self.evaluate = bool(evaluate)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        state = model.state_dict()
        for key, average in self.module.state_dict().items():
            value = state[key].detach()
            if average.is_floating_point():
                average.lerp_(value.to(average.dtype), 1.0 - self.decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
