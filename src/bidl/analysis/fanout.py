"""Fan-out and dense multiply-accumulate counts of synaptic layers (convolutions, linear).

The fan-out of one input element is the number of synapses it drives: how many
(output channel, output position) pairs its value is multiplied into. It is computed
exactly, for any stride, padding, dilation, groups and padding mode, by running the
layer's convolution with every weight set to one and no bias and taking the gradient of the output's sum with
respect to the input: each input element's gradient counts the outputs it reaches.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: module types whose inputs are synaptic events (their weights are the synapses)
SYNAPTIC_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def is_synaptic(module: nn.Module) -> bool:
    return isinstance(module, SYNAPTIC_TYPES)


def fan_out(module: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Per-element fan-out of ``module`` for one sample's input of ``input_shape``
    (no batch dimension); a float64 tensor of that shape, on the CPU."""
    if isinstance(module, nn.Linear):
        return torch.full(input_shape, float(module.out_features), dtype=torch.float64)
    probe = torch.zeros((1, *input_shape), dtype=torch.float64, requires_grad=True)
    ones = torch.ones(module.weight.shape, dtype=torch.float64)
    with torch.enable_grad():  # the layer's own arithmetic, without its hooks
        out = module._conv_forward(probe, ones, None)
        (grad,) = torch.autograd.grad(out.sum(), probe)
    return grad[0].detach()


def dense_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates the layer does on one dense input of ``input_shape`` (no batch):
    every output element times the inputs it sums (the usual count, padding included)."""
    if isinstance(module, nn.Linear):
        rows = math.prod(input_shape[:-1])
        return rows * module.in_features * module.out_features
    with torch.no_grad():
        probe = torch.zeros((1, *input_shape), dtype=torch.float32)
        weight = torch.zeros(module.weight.shape, dtype=torch.float32)
        out_numel = module._conv_forward(probe, weight, None).numel()
    per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
    return out_numel * per_output
