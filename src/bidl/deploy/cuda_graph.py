"""One step of a step graph replayed from a CUDA graph: the kernels of a whole timestep
launched by one call, so a small batch is not bound by the host launching them one by one.

The captured step reads the input and the states from static buffers and, inside the
graph, writes the new states back into those buffers; each ``step`` copies the timestep's
input into place and replays. The states a step returns are therefore the buffers
themselves, in a ``StateList`` that the engine remembers as their owner. When another
sequence's states come in (a new sample from its initial states, or a stream interleaved
with batches), the owner still alive gets copies of its values first, so no caller ever
sees its states change under it. The output tensor is overwritten by the next step: read
it (``fetch``) or copy it before stepping again.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch


class StateList(list):
    """The states of one sequence, as an engine returns them (a list that takes weak
    references, so the engine can tell whether its owner is still held)."""


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def warm_up(run: Callable, device: torch.device, times: int) -> None:
    """``run()`` a few times on a side stream, off any capture: cuDNN picks its
    algorithms and lazy initialisations happen before the graph records anything."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(times):
            run()
    torch.cuda.current_stream(device).wait_stream(side)


def capture(body: Callable) -> tuple[torch.cuda.CUDAGraph, object]:
    """(graph, what ``body()`` returned while it was recorded); replaying the graph
    rewrites that result in place."""
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        result = body()
    return graph, result


class CudaGraphStep:
    """``fn(x_t, *states) -> (y_t, *new_states)`` captured on ``device`` for inputs shaped
    like ``example`` and ``initial`` (their dtypes and shapes are fixed by the capture)."""

    def __init__(
        self,
        fn: Callable,
        example: torch.Tensor,
        initial: Sequence[torch.Tensor],
        device: torch.device,
        warmup: int = 3,
    ):
        self.device = device
        self.x = example.to(device).clone()
        self.states = [s.to(device).clone() for s in initial]

        def body():
            y_t, *new_states = fn(self.x, *self.states)
            buffers = {_storage(s) for s in self.states}
            # a new state that is a view of an old one would change while they are copied
            new_states = [n.clone() if _storage(n) in buffers else n for n in new_states]
            torch._foreach_copy_(self.states, new_states)
            return y_t

        warm_up(lambda: fn(self.x, *self.states), device, warmup)
        self.graph, self.y = capture(body)
        self._owner: weakref.ref | None = None

    def step(self, x_t: torch.Tensor, states: Sequence[torch.Tensor]) -> tuple:
        owner = self._owner() if self._owner is not None else None
        if states is not owner:
            if owner is not None:  # it is still held: it keeps its values, as copies
                owner[:] = [s.clone() for s in self.states]
            torch._foreach_copy_(self.states, [s.to(self.device) for s in states])
            owner = StateList(self.states)
            self._owner = weakref.ref(owner)
        self.x.copy_(x_t, non_blocking=True)
        self.graph.replay()
        return self.y, owner


class CudaGraphSample:
    """``fn(xs) -> y`` (a whole sample ``[B, T, ...]``, no states handed in or out) captured
    on ``device`` for inputs shaped like ``example``. ``run`` takes the sample's steps as
    ``[B, ...]`` tensors; the returned tensor is overwritten by the next run."""

    def __init__(self, fn: Callable, example: torch.Tensor, device: torch.device, warmup: int = 3):
        self.x = example.to(device).clone()
        warm_up(lambda: fn(self.x), device, warmup)
        self.graph, self.y = capture(lambda: fn(self.x))

    def run(self, steps: Sequence[torch.Tensor]) -> torch.Tensor:
        torch.stack(list(steps), dim=1, out=self.x)
        self.graph.replay()
        return self.y


def try_capture(make: Callable, device: torch.device) -> tuple:
    """``(make(), None)``, or ``(None, why)`` where the capture fails (an operation that
    synchronises with the host, say): the engine then runs that work eagerly."""
    try:
        return make(), None
    except RuntimeError as err:
        torch.cuda.synchronize(device)
        return None, f"{type(err).__name__}: {str(err).splitlines()[0]}"


__all__ = ["CudaGraphSample", "CudaGraphStep", "StateList", "capture", "try_capture", "warm_up"]
