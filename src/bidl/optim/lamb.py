"""LAMB (You et al., *Large Batch Optimization for Deep Learning: Training BERT in 76
minutes*, ICLR 2020), as BIDL's Meta-SpikeFormer application trains with it (timm's
variant, ``trust_clip=True``), which ``torch.optim`` lacks.

Per step, for the gradients ``g`` of all parameters together:

1. ``g /= max(||g||_2 / max_grad_norm, 1)`` (one global clipping; ``max_grad_norm=None``
   skips it),
2. per parameter ``p``: Adam's moments ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``
   and direction ``u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``, plus decoupled
   weight decay ``u += wd p``,
3. the layer-wise trust ratio ``r = ||p|| / ||u||`` (1 where either norm is 0; at most 1
   with ``trust_clip``), applied where the group decays its weights (``wd != 0``) or
   ``always_adapt`` is set: a group without weight decay (biases, norms) steps as Adam,
4. ``p -= lr r u``.
"""

from __future__ import annotations

import torch


class Lamb(torch.optim.Optimizer):
    """LAMB; the defaults are BIDL's (timm's ``Lamb`` with ``trust_clip=True``)."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        max_grad_norm: float | None = 1.0,
        trust_clip: bool = True,
        always_adapt: bool = False,
    ) -> None:
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0:
            raise ValueError(
                f"Lamb: lr, eps and weight_decay must be >= 0 ({lr}, {eps}, {weight_decay})"
            )
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Lamb: betas must lie in [0, 1), got {betas}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            trust_clip=trust_clip,
            always_adapt=always_adapt,
        )
        super().__init__(params, defaults)

    def _global_scale(self) -> torch.Tensor | None:
        """The divisor of every gradient (step 1), a device tensor: no host synchronisation."""
        limit = self.defaults["max_grad_norm"]
        grads = [
            p.grad for group in self.param_groups for p in group["params"] if p.grad is not None
        ]
        if limit is None or not grads:
            return None
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        return torch.clamp(norm / limit, min=1.0)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        scale = self._global_scale()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lamb does not take sparse gradients")
                grad = p.grad if scale is None else p.grad / scale
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(group["eps"])
                update = (exp_avg / (1 - beta1**step)).div_(denom)
                if decay != 0:
                    update.add_(p, alpha=decay)
                if decay != 0 or group["always_adapt"]:
                    w_norm = torch.linalg.vector_norm(p)
                    u_norm = torch.linalg.vector_norm(update)
                    ratio = torch.where(
                        (w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm)
                    )
                    if group["trust_clip"]:
                        ratio = torch.clamp(ratio, max=1.0)
                    update.mul_(ratio)
                p.add_(update, alpha=-group["lr"])
        return loss
