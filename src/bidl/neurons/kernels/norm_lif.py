"""All ``T`` steps of a LIF cell in one autograd node, batch norm on the membrane included
(BIDL's layout: ``v' = norm(x_t + v_{t-1})`` inside the recurrence), in plain torch.

The reference loop over ``Lif.step`` records about ten autograd nodes per step, keeps
their inputs and stacks the outputs at the end. Here the forward runs the recurrence
without recording (batch norm through ``torch.native_batch_norm``, the kernel
``nn.BatchNorm`` runs, updating the running statistics at every step as it does) and keeps
only the integrated membrane ``h_t``, the normalised ``n_t`` and each step's batch
statistics; the backward walks time in reverse with the formulas of the reference's nodes
(``native_batch_norm_backward`` for the norm). Same function, a third of the kernels and
memory traffic: it serves the CPU, and CUDA wherever the fused Triton kernel does not
apply (a norm inside the recurrence).
"""

from __future__ import annotations

import torch
from torch import nn

#: what ``step`` outputs: analog ``memb_mode`` index 0-3, or spikes
SPIKE_OUTPUT = 4


def _norm_settings(norm: nn.Module | None):
    """``(weight, bias, running_mean, running_var, training, momentum, eps)`` of a plain
    batch norm as its forward would use them at this call (counts the batch)."""
    if norm is None:
        return None
    use_batch = norm.training or norm.running_mean is None
    factor = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # cumulative average, as nn.BatchNorm
            factor = 1.0 / float(norm.num_batches_tracked)
    keep = not norm.training or norm.track_running_stats
    return (
        norm.weight,
        norm.bias,
        norm.running_mean if keep else None,
        norm.running_var if keep else None,
        use_batch,
        factor,
        norm.eps,
    )


class NormLifFunction(torch.autograd.Function):
    """``(x [T, ...], v_init | None, norm weight | None, norm bias | None) -> out [T, ...]``
    and the last membrane. ``cell`` gives the norm module and spike function, ``soma`` its
    ``(alpha, beta, theta, v_0)`` shaped for one step, ``output`` what ``step`` returns."""

    @staticmethod
    def forward(ctx, x, v_init, weight, bias, cell, soma, output):
        alpha, beta, theta, v_0 = soma
        steps = x.shape[0]
        saving = any(ctx.needs_input_grad[:4])
        out = torch.empty_like(x)
        h_all = torch.empty_like(x) if saving else None
        n_all = torch.empty_like(x) if saving and cell.norm is not None else None
        stats = []
        v = v_init
        for t in range(steps):
            h = x[t] if v is None else torch.add(x[t], v, out=h_all[t] if saving else None)
            if saving and v is None:
                h_all[t].copy_(h)
            n = h
            if cell.norm is not None:
                w, b, mean, var, use_batch, factor, eps = _norm_settings(cell.norm)
                n, save_mean, save_invstd = torch.native_batch_norm(
                    h, w, b, mean, var, use_batch, factor, eps
                )
                stats.append((save_mean, save_invstd, use_batch, mean, var, eps))
                if saving:
                    n_all[t].copy_(n)
            u = n - theta
            fired = u > 0
            spike = fired.to(x.dtype)
            reset = torch.where(fired, v_0, n)  # = spike * v_0 + (1 - spike) * n, exactly
            v = alpha * reset + beta
            if output == SPIKE_OUTPUT:
                out[t] = spike
            else:
                out[t] = (n, u, reset, v)[output]
        ctx.cell, ctx.soma, ctx.output, ctx.stats = cell, soma, output, stats
        ctx.has_init = v_init is not None
        if saving:
            ctx.save_for_backward(h_all, n_all if n_all is not None else h_all, weight)
        return out, v

    @staticmethod
    def backward(ctx, grad_out, grad_v_last):
        h_all, n_all, weight = ctx.saved_tensors
        cell, output = ctx.cell, ctx.output
        alpha, _beta, theta, v_0 = ctx.soma
        surrogate = cell.spike_fn.grad
        needs_x, needs_init, needs_w, needs_b = ctx.needs_input_grad[:4]
        grad_x = torch.empty_like(h_all)
        grad_w = grad_b = None
        grad_v = grad_v_last  # d loss / d v_t, carried back from step t + 1 (or a later call)
        for t in range(h_all.shape[0] - 1, -1, -1):
            g_out = grad_out[t]
            n = n_all[t]
            u = n - theta
            fired = u > 0
            if output == 3:
                grad_v = g_out if grad_v is None else grad_v + g_out
            grad_reset = (
                torch.zeros_like(n) if grad_v is None else alpha * grad_v
            )  # v = alpha * reset + beta
            if output == 2:
                grad_reset = grad_reset + g_out
            grad_spike = grad_reset * (v_0 - n)  # reset = spike * v_0 + (1 - spike) * n
            if output == SPIKE_OUTPUT:
                grad_spike = grad_spike + g_out
            grad_u = grad_spike * surrogate(u).to(grad_spike.dtype)
            if output == 1:
                grad_u = grad_u + g_out
            grad_n = torch.where(fired, 0.0, grad_reset) + grad_u
            if output == 0:
                grad_n = grad_n + g_out
            if cell.norm is not None:
                save_mean, save_invstd, use_batch, mean, var, eps = ctx.stats[t]
                grad_h, g_w, g_b = torch.ops.aten.native_batch_norm_backward(
                    grad_n.contiguous(memory_format=_format(h_all[t])),
                    h_all[t],
                    weight,
                    mean,
                    var,
                    save_mean,
                    save_invstd,
                    use_batch,
                    eps,
                    [True, needs_w, needs_b],
                )
                if needs_w:
                    grad_w = g_w if grad_w is None else grad_w + g_w
                if needs_b:
                    grad_b = g_b if grad_b is None else grad_b + g_b
            else:
                grad_h = grad_n
            grad_x[t] = grad_h
            grad_v = grad_h  # h_t = x_t + v_{t-1}
        grad_init = grad_v if needs_init and ctx.has_init else None
        return (grad_x if needs_x else None), grad_init, grad_w, grad_b, None, None, None


def _format(t: torch.Tensor) -> torch.memory_format:
    if (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    ):
        return torch.channels_last
    return torch.contiguous_format


def norm_lif_multi_step(cell, x_seq: torch.Tensor, output: int) -> torch.Tensor:
    """All steps of ``cell`` (a ``Lif`` whose ``norm`` is None or a plain batch norm) on
    ``x_seq`` ``[T, B, ...]``; continues from and leaves ``cell.state`` as ``step`` does.
    ``output`` is ``SPIKE_OUTPUT`` or the analog ``memb_mode`` index."""
    step_x = x_seq[0]
    soma = tuple(cell._soma(key, step_x) for key in ("alpha", "beta", "theta", "v_0"))
    v_init = None if cell.state is None else cell.state["v"]
    norm = cell.norm
    weight = None if norm is None else norm.weight
    bias = None if norm is None else norm.bias
    out, v_last = NormLifFunction.apply(x_seq, v_init, weight, bias, cell, soma, output)
    cell.state = {"v": v_last}
    if output != SPIKE_OUTPUT and cell._activation is not None:
        out = cell._activation(out)
    return out
