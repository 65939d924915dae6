"""The state-explicit step graph: a trained network as one pure function per timestep.

``StepGraph`` wraps any model built on the state protocol (``stateful_cells``,
``SpikingBackbone.forward_step``, the backbone's temporal aggregator) into
``(x_t, *states) -> (y_t, *new_states)`` without touching model code: for each call it
binds the given states to the cells, runs one ``forward_step`` (each cell's call is its
pure ``step(x, state)`` on that state), reads the new states back, and folds the step
into the aggregator with its pure ``step(y_t, state)``. States are found by forward
pre-hooks on the cells during one probe step. This is what compile exports (BIDL's
state-variable indicated graph).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..neurons.base import reset_states, stateful_cells
from ..neurons.step_mode import set_step_mode
from ..registry import BidlError
from .precision import COMPUTE_DTYPES, apply_mixed_precision, check_precision, is_mixed

#: dtypes of a graph's input and states; int64 is the input of token models (text)
INPUT_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "uint8": torch.uint8,
    "int64": torch.int64,
}
#: what ``--input-dtype`` may ask for (a token model's input stays int64 ids)
COMPILE_DTYPES = ("float32", "float16", "uint8")


@dataclass(frozen=True)
class StateSpec:
    """One state tensor of the step graph: ``owner`` is the cell's qualified name."""

    name: str
    owner: str
    key: str
    shape: tuple[int, ...]
    dtype: str
    init: float

    def initial(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.full(self.shape, self.init, dtype=INPUT_DTYPES[self.dtype], device=device)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "init": self.init,
        }


def _distinct(outputs: tuple, inputs: tuple) -> tuple:
    """Copy any output that is an input or an earlier output ('pick' returns its new state
    as the output): an exported graph names each output once, so they must be distinct."""
    seen = {id(t) for t in inputs}
    distinct = []
    for tensor in outputs:
        distinct.append(tensor.clone() if id(tensor) in seen else tensor)
        seen.add(id(tensor))
    return tuple(distinct)


def _copy_without_state(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose cells hold no state; ``model`` keeps its own (a state
    left by a training step is part of an autograd graph, which cannot be copied)."""
    cells = [cell for _, cell in stateful_cells(model)]
    kept = [cell.state for cell in cells]
    try:
        for cell in cells:
            cell.state = None
        return copy.deepcopy(model)
    finally:
        for cell, state in zip(cells, kept, strict=True):
            cell.state = state


def split_classifier(model: nn.Module) -> tuple[nn.Module, nn.Module | None]:
    """(backbone, neck) of an ``ImageClassifier``, or (model, None) for a bare backbone;
    (backbone, None) for a ``Detector``: its graph ends with the spiking part's features."""
    backbone = getattr(model, "backbone", model)
    for needed in ("forward_step", "aggregate", "input_shape", "timestep"):
        if not hasattr(backbone, needed):
            raise BidlError(
                f"cannot build a step graph from {type(backbone).__name__}: it has no "
                f"{needed!r}. Compile needs a SpikingBackbone (per-step body, head and "
                f"temporal aggregator) or an ImageClassifier around one."
            )
    neck = getattr(model, "neck", None)
    if getattr(model, "task", None) == "detection":
        neck = None  # a detector's neck and head run once, after the steps, on the graph's output
    if not getattr(backbone, "is_last_segment", True):
        neck = None  # the neck reads the aggregate, which only the last segment makes
    return backbone, neck


def _uniform_value(tensor: torch.Tensor, where: str) -> float:
    """The one value an initial state holds; a graph input starts from a constant fill."""
    flat = tensor.detach().flatten()
    if flat.numel() and not bool((flat == flat[0]).all()):
        raise BidlError(
            f"{where}: its initial state is not one constant value; the step graph's runtime "
            f"fills each state with a single initial value. Make init_state return a fill."
        )
    return float(flat[0]) if flat.numel() else 0.0


class StepGraph(nn.Module):
    """``forward(x_t, *states) -> (y_t, *new_states)`` for one timestep of a batch.

    ``y_t`` is the running aggregate (mean, sum or last output) of steps ``0..t`` passed
    through the classifier's neck, so after step ``T - 1`` it equals the model's output on
    the whole sequence. ``states`` follows ``self.states`` (cells in module order, then the
    aggregator). A ``uint8`` input is cast and multiplied by ``input_scale`` in the graph;
    ``float16`` runs the whole graph in half precision; token models take int64 ids.
    ``precision`` 'fp16' / 'bf16' runs the synaptic layers in half precision around
    float32 cells and states (``precision.py``); 'int8' is quantized after export.

    A model segment (a backbone with ``split``) gives a graph of its own layers: a later
    segment takes the previous one's activation of the step (in the compute dtype), and
    every segment but the last returns its activation ``y_t`` with no aggregator state.
    """

    def __init__(
        self,
        model: nn.Module,
        batch_size: int = 1,
        input_dtype: str = "float32",
        input_scale: float = 1.0,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        check_precision(precision, None, input_dtype)
        if input_dtype not in COMPILE_DTYPES:
            raise BidlError(
                f"unknown input dtype {input_dtype!r}; use one of {', '.join(COMPILE_DTYPES)}"
            )
        if batch_size < 1:
            raise BidlError(f"batch size must be >= 1, got {batch_size}")
        model = _copy_without_state(model).eval().requires_grad_(False)
        self.compute_dtype = (
            torch.float16 if input_dtype == "float16" else COMPUTE_DTYPES[precision]
        )
        self.mixed = is_mixed(precision, input_dtype)
        self.precision = "fp16" if input_dtype == "float16" else precision
        self.model = model
        self.backbone, self.neck = split_classifier(model)
        if self.mixed:
            cells = [cell for _, cell in stateful_cells(self.backbone)]
            aggregate = getattr(self.backbone, "aggregate", None)
            apply_mixed_precision(model, cells, [aggregate, self.neck], self.compute_dtype)
        else:
            model.to(self.compute_dtype)
        self.is_first = bool(getattr(self.backbone, "is_first_segment", True))
        self.is_last = bool(getattr(self.backbone, "is_last_segment", True))
        if not self.is_first:  # activations of the previous segment, not data
            input_dtype = "float16" if input_dtype == "float16" else "float32"
            input_scale = 1.0
        if getattr(self.backbone, "input_kind", "float") == "tokens":
            if input_dtype == "uint8":
                raise BidlError(
                    f"{type(self.backbone).__name__} takes integer token ids, not frames; "
                    f"compile it with --input-dtype float32 or float16 (its precision)"
                )
            input_dtype = "int64"
        self.input_dtype = input_dtype
        self.input_scale = float(input_scale)
        self.batch_size = int(batch_size)
        self.input_shape = (self.batch_size, *self.backbone.input_shape)
        set_step_mode(self.backbone, "s")  # the graph is one timestep
        self.cells = dict(stateful_cells(self.backbone))
        self._check_prepare_input()
        self.states, self.output_shape = self._probe_states()

    # --- discovering the states -----------------------------------------------------

    def example_input(self) -> torch.Tensor:
        return torch.zeros(self.input_shape, dtype=INPUT_DTYPES[self.input_dtype])

    def _check_prepare_input(self) -> None:
        """A backbone's ``prepare_input`` runs on whole sequences; the graph applies it to
        one step at a time, which must keep that step a step."""
        if not self.is_first or not hasattr(self.backbone, "prepare_input"):
            return
        try:
            with torch.no_grad():
                prepared = self.backbone.prepare_input(self.example_input()[:, None])
        except BidlError as err:
            prepared, why = None, str(err)
        else:
            why = f"it turned one step into {prepared.shape[1]}"
        if prepared is None or prepared.shape[1] != 1:
            raise BidlError(
                f"{type(self.backbone).__name__}.prepare_input works on whole sequences "
                f"({why}); the step graph takes one input frame per step. Compile a "
                f"configuration whose preprocessing keeps every step (e.g. down_t=[1, ...])."
            )

    def _probe_states(self) -> tuple[list[StateSpec], tuple[int, ...]]:
        """Run one step from reset with a forward pre-hook on every cell that records its
        input and counts its calls; each cell's ``init_state`` of that input gives the
        shapes and initial values of its states."""
        inputs: dict[str, torch.Tensor] = {}
        calls: dict[str, int] = {}

        def record(name: str):
            def hook(_cell: nn.Module, args: tuple) -> None:
                inputs.setdefault(name, args[0])
                calls[name] = calls.get(name, 0) + 1

            return hook

        handles = [
            cell.register_forward_pre_hook(record(name)) for name, cell in self.cells.items()
        ]
        reset_states(self.backbone)
        try:
            with torch.no_grad():
                y_t = self._body(self.example_input())
        finally:
            for handle in handles:
                handle.remove()
            reset_states(self.backbone)
        for name, count in calls.items():
            if count > 1:
                cell = self.cells[name]
                raise BidlError(
                    f"cell {name!r} ({type(cell).__name__}) runs {count} times per timestep; "
                    f"a step graph needs one state per cell. Use a separate cell for each call."
                )
        self.cells = {name: cell for name, cell in self.cells.items() if name in inputs}
        specs = []  # module order, as forward reads them back
        for name, cell in self.cells.items():
            initial = cell.init_state(inputs[name])
            specs += [
                self._spec(f"{name}.{key}", name, key, initial[key]) for key in cell.state_names
            ]
        if not self.is_last:
            return specs, tuple(y_t.shape)
        aggregate = self.backbone.aggregate
        initial = aggregate.init_state(y_t)
        specs += [
            self._spec(f"aggregate.{key}", "aggregate", key, initial[key])
            for key in aggregate.state_names
        ]
        with torch.no_grad():
            output = self.neck(y_t) if self.neck is not None else y_t
        return specs, tuple(output.shape)

    def _spec(self, name: str, owner: str, key: str, tensor: torch.Tensor) -> StateSpec:
        dtype = {v: k for k, v in INPUT_DTYPES.items()}.get(tensor.dtype)
        if dtype is None:
            raise BidlError(f"state {name!r} has dtype {tensor.dtype}; step graphs hold floats")
        return StateSpec(name, owner, key, tuple(tensor.shape), dtype, _uniform_value(tensor, name))

    # --- one step -------------------------------------------------------------------

    def _body(self, x_t: torch.Tensor) -> torch.Tensor:
        """The backbone's step on ``x_t``; a mixed-precision graph hands its output on in
        float32 (to the aggregator, or to the next segment)."""
        y_t = self.backbone.forward_step(self._prepare(x_t))
        return y_t.float() if self.mixed else y_t

    def _prepare(self, x_t: torch.Tensor) -> torch.Tensor:
        if self.input_dtype == "uint8":
            x_t = x_t.to(self.compute_dtype) * self.input_scale
        elif self.mixed and x_t.is_floating_point():
            x_t = x_t.to(self.compute_dtype)
        if not self.is_first or not hasattr(self.backbone, "prepare_input"):
            return x_t
        return self.backbone.prepare_input(x_t[:, None])[:, 0]

    def initial_states(self, device: torch.device | str = "cpu") -> list[torch.Tensor]:
        return [spec.initial(device) for spec in self.states]

    def forward(self, x_t: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        by_name = dict(zip((s.name for s in self.states), states, strict=True))
        # each cell's single step is its pure step(x, state) on the state bound here
        for name, cell in self.cells.items():
            cell.state = {key: by_name[f"{name}.{key}"] for key in cell.state_names}
        try:
            y_t = self._body(x_t)
            new_states = [
                cell.state[key] for cell in self.cells.values() for key in cell.state_names
            ]
        finally:
            reset_states(self.backbone)
        if not self.is_last:
            return _distinct((y_t, *new_states), (x_t, *states))
        aggregate = self.backbone.aggregate
        state = {key: by_name[f"aggregate.{key}"] for key in aggregate.state_names}
        output, state = aggregate.step(y_t, state)
        new_states += [state[key] for key in aggregate.state_names]
        if self.neck is not None:
            output = self.neck(output)
        return _distinct((output, *new_states), (x_t, *states))

    def run_sequence(self, xs: torch.Tensor) -> torch.Tensor:
        """All steps of ``xs`` ``[B, T, ...]`` from the initial state; the last output."""
        states = self.initial_states(xs.device)
        output = None
        with torch.no_grad():
            for x_t in xs.transpose(0, 1):
                output, *states = self(x_t, *states)
        return output
