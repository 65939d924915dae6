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
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        # warm-up off the capture (cuDNN picks its algorithms, lazy inits run)
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):
                fn(self.x, *self.states)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            y_t, *new_states = fn(self.x, *self.states)
            buffers = {_storage(s) for s in self.states}
            # a new state that is a view of an old one would change while they are copied
            new_states = [n.clone() if _storage(n) in buffers else n for n in new_states]
            torch._foreach_copy_(self.states, new_states)
        self.y = y_t
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


def try_capture(fn: Callable, example, initial, device: torch.device):
    """A ``CudaGraphStep``, or (None, why) where the step cannot be captured (an operation
    that synchronises with the host, say): the engine then runs it eagerly."""
    try:
        return CudaGraphStep(fn, example, initial, device), None
    except RuntimeError as err:
        torch.cuda.synchronize(device)
        return None, f"{type(err).__name__}: {str(err).splitlines()[0]}"


__all__ = ["CudaGraphStep", "StateList", "try_capture"]
