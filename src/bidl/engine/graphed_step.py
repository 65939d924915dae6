"""The training step's forward and backward replayed from CUDA graphs (``runner.cuda_graph``).

A spiking network's eager step is host-bound: every layer launches its kernels once per
timestep or per fused-kernel pass, and Python pays 10-100 us a launch, while the GPU's
share is a few milliseconds (benchmarks/RESULTS.md, issue 13). A CUDA graph records the
kernels of one forward and backward once and replays them with one launch. The optimizer
step, gradient clipping, EMA and the data's device-side steps stay eager: they are a few
multi-tensor kernels, and the learning rate changes between steps.

What the graphs need, and what 'auto' checks before it tries: a CUDA device, no SyncBN
(its collectives run inside the forward), no float16 loss scaling (its step reads the
scale on the host), no per-step finiteness check (``skip_nonfinite`` reads the loss on the
host), no ``torch.compile`` (it manages its own graphs), no module hooks, not a detector
(its targets change size every batch). Data-parallel runs average the gradients after the
replayed backward themselves (``distributed.average_gradients``), without DDP. Inputs of a
new shape or dtype (mixup targets turned off, a smaller batch) get a graph of their own,
at most ``MAX_GRAPHS``; then that input runs eagerly. A capture that fails (a host
synchronisation inside the model, an operation CUDA graphs refuse) falls back to the
eager step with one warning under 'auto', and is an error under ``True``.

The capture runs the step three times on a side stream to warm up (cuDNN autotuning,
Triton compilation) and once recorded; the module's buffers (batch-norm statistics) are
restored afterwards, so a graphed run counts each batch once, as an eager one does. Random
draws (dropout, membrane noise) stay random: CUDA graphs advance the generator's offset on
every replay.
"""

from __future__ import annotations

import logging

import torch
import torch.utils._pytree as pytree
from torch import nn

from ..registry import BidlError

logger = logging.getLogger("bidl")

#: graphs kept per run (one per input signature): training normally needs one, mixup
#: switched off mid-run a second
MAX_GRAPHS = 2


class CudaGraphError(BidlError):
    """``runner.cuda_graph=True`` and the step cannot be captured."""


def cuda_graph_obstacle(
    model: nn.Module,
    device: torch.device,
    sync_bn: bool = False,
    loss_scaling: bool = False,
    skip_nonfinite: bool = False,
    compiled: bool = False,
    detector: bool = False,
) -> str | None:
    """Why the training step of ``model`` cannot be replayed from CUDA graphs, or None."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (training on {device})"
    if sync_bn:
        return "sync_bn (SyncBatchNorm's collectives run inside the forward)"
    if detector:
        return "a detector (its box targets change size every batch)"
    if loss_scaling:
        return "float16 loss scaling (the scaler reads the gradients' finiteness on the host)"
    if skip_nonfinite:
        return "optimizer_config.skip_nonfinite (it reads each loss on the host)"
    if compiled:
        return "runner.compile (the compiled model manages its own graphs)"
    for name, module in model.named_modules():
        if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
            return f"{name or type(model).__name__} has module hooks"
    return None


class _LossTuple(nn.Module):
    """``module(*inputs)``'s loss dict as a flat tuple of tensors (what a graph can return);
    ``rebuild`` turns such a tuple back into the dict (nested values, e.g. top-k accuracies,
    included)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.spec: pytree.TreeSpec | None = None

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves, spec = pytree.tree_flatten(self.module(*inputs))
        if self.spec is None:
            self.spec = spec
        if spec != self.spec or not all(isinstance(v, torch.Tensor) for v in leaves):
            raise RuntimeError(f"the loss dict must hold the same tensors each step ({spec})")
        return tuple(leaves)

    def rebuild(self, leaves) -> dict:
        return pytree.tree_unflatten(list(leaves), self.spec)


class GraphedLosses(nn.Module):
    """The training module: ``losses = graphed(img, target)``; ``backward`` of the returned
    loss replays the recorded backward. Falls back to ``module`` where it must. A module
    itself (its parameters are ``module``'s)."""

    def __init__(self, module: nn.Module, required: bool = False):
        super().__init__()
        self.module = module
        self.required = required
        self.graphs: dict[tuple, _LossTuple] = {}  # a dict: not submodules of this one
        self.broken: str | None = None  # why capturing stopped (eager from then on)

    def forward(self, *inputs: torch.Tensor) -> dict:
        if self.broken is not None:
            return self.module(*inputs)
        signature = tuple((tuple(t.shape), t.dtype) for t in inputs)
        graphed = self.graphs.get(signature)
        if graphed is None:
            if len(self.graphs) >= MAX_GRAPHS:
                return self.module(*inputs)  # a rare shape: not worth another graph
            graphed = self.capture(inputs)
            if graphed is None:
                return self.module(*inputs)
            self.graphs[signature] = graphed
        outputs = graphed(*inputs)
        # the outputs alias the graph's static buffers: the next replay overwrites them
        return graphed.rebuild(out.clone() for out in outputs)

    def capture(self, inputs: tuple[torch.Tensor, ...]) -> _LossTuple | None:
        wrapper = _LossTuple(self.module)
        saved = {name: buf.clone() for name, buf in self.module.named_buffers()}
        try:
            with _autocast_without_cache():
                torch.cuda.make_graphed_callables(
                    wrapper, tuple(t.detach() for t in inputs), allow_unused_input=True
                )
        except Exception as err:  # noqa: BLE001 (any refusal means: train eagerly)
            self.broken = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            torch.cuda.synchronize()
            if self.required:
                raise CudaGraphError(
                    f"runner.cuda_graph=True: the training step cannot be captured as a CUDA "
                    f"graph ({self.broken}); set runner.cuda_graph='auto' or False"
                ) from err
            logger.warning("CUDA graph capture failed (%s); training eagerly", self.broken)
            return None
        finally:
            with torch.no_grad():  # the warm-up steps must not count in the statistics
                for name, buf in self.module.named_buffers():
                    if name in saved:
                        buf.copy_(saved[name])
        logger.info("training step captured as CUDA graphs (forward and backward)")
        return wrapper


class _autocast_without_cache:  # noqa: N801 (used like a context manager function)
    """The autocast in effect, with its weight cache off: graphs cannot capture the cache."""

    def __enter__(self):
        self.inner = None
        if torch.is_autocast_enabled("cuda"):
            dtype = torch.get_autocast_dtype("cuda")
            self.inner = torch.autocast("cuda", dtype=dtype, cache_enabled=False)
            self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        if self.inner is not None:
            return self.inner.__exit__(*exc)
        return False
