"""A whole sample in one call: the step graph's network run in its multi-step form.

A step graph runs one timestep per call, so a batch-1 sample of T steps is T passes of
the network, each made of many small kernels (ResNet-LIF-50: ~50 convolutions at batch
1 per step). Where the network's multi-step (IIM) form computes the same function
(``engine.execution.multi_step_difference``), the same weights can instead run every
layer once over all ``T * B`` frames (time folded into the batch) and every cell once
over the sequence (the fused kernels): T times fewer, T times larger kernels.

``SequenceGraph`` shares the step graph's modules (weights, precision casts) and gives,
for a sample ``[B, T, ...]`` from the initial states, what the step graph gives after
its step ``T - 1``. It is how the ``torch`` engine runs ``Runtime.run`` on CUDA; streaming
(``Runtime.step``) keeps the step graph, which hands the states on.
"""

from __future__ import annotations

import torch
from torch import nn

from ..engine.execution import multi_step_difference
from ..neurons.base import reset_states
from .step_graph import INPUT_DTYPES, StepGraph


def sequence_form_difference(graph: StepGraph) -> str | None:
    """Why ``graph``'s network has no whole-sample form equal to its steps, or None."""
    if not (graph.is_first and graph.is_last):
        return "it is one segment of a split model (segments hand activations on per step)"
    return multi_step_difference(graph.backbone)


class SequenceGraph(nn.Module):
    """``forward(xs)``: ``xs`` ``[B, T, *input]`` in the step graph's input dtype -> its
    output after the last step (aggregate through the neck), from the initial states.

    Check ``sequence_form_difference(graph)`` first: a network with its own time loop has
    no such form.
    """

    def __init__(self, graph: StepGraph) -> None:
        super().__init__()
        self.graph = graph

    def example_input(self, timesteps: int) -> torch.Tensor:
        shape = (self.graph.batch_size, timesteps, *self.graph.backbone.input_shape)
        return torch.zeros(shape, dtype=INPUT_DTYPES[self.graph.input_dtype])

    def _prepare(self, xs: torch.Tensor) -> torch.Tensor:
        graph = self.graph
        if graph.input_dtype == "uint8":
            xs = xs.to(graph.compute_dtype) * graph.input_scale
        elif graph.mixed and xs.is_floating_point():
            xs = xs.to(graph.compute_dtype)
        return graph.backbone.prepare_input(xs)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        graph, backbone = self.graph, self.graph.backbone
        kept = backbone.use_inner_loop
        backbone.use_inner_loop = True
        reset_states(backbone)
        try:
            y_seq = backbone.forward_sequence(self._prepare(xs).transpose(0, 1))
        finally:
            backbone.use_inner_loop = kept
            reset_states(backbone)  # the step graph binds its states per call
        if graph.mixed:  # the aggregate and neck run in float32, as in the step graph
            y_seq = y_seq.float()
        output = backbone.aggregate(y_seq)
        return graph.neck(output) if graph.neck is not None else output


__all__ = ["SequenceGraph", "sequence_form_difference"]
