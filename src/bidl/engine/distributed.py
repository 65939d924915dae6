"""Data-parallel training on torch.distributed: set-up from the variables torchrun exports,
rank queries, wrapping a model in ``DistributedDataParallel`` (with optional SyncBN), and
the gradient averaging a step replayed from CUDA graphs uses instead of DDP."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..registry import BidlError

LAUNCHERS = ("none", "pytorch")
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init_dist(launcher: str, backend: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun set up (``launcher='pytorch'``); returns (rank, world).

    ``backend`` is ``dist_params.backend`` of the config: 'nccl' (GPUs) or 'gloo' (CPU);
    by default nccl where CUDA is available, else gloo.
    """
    if launcher not in LAUNCHERS:
        raise BidlError(f"--launcher {launcher!r} is not one of {', '.join(LAUNCHERS)}")
    if launcher == "none":
        return get_dist_info()
    missing = [name for name in TORCHRUN_VARS if name not in os.environ]
    if missing:
        raise BidlError(
            f"--launcher pytorch needs {', '.join(missing)} in the environment; start with "
            f"`torchrun --nproc_per_node=N tools/train.py --config CONFIG --launcher pytorch` "
            f"or `tools/dist_train.sh CONFIG N`"
        )
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise BidlError("dist_params.backend='nccl' needs CUDA; use backend='gloo' on CPU")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return get_dist_info()


def get_dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return get_dist_info()[0] == 0


def barrier() -> None:
    if get_dist_info()[1] > 1:
        dist.barrier()


def local_device(backend: str) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` under nccl, else the CPU."""
    if backend == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def wrap_ddp(model: torch.nn.Module, device: torch.device, sync_bn: bool = False):
    """``model`` (converted to SyncBatchNorm when ``sync_bn``) in DistributedDataParallel.

    Returns (module to train through, the plain module whose weights are saved)."""
    if sync_bn:
        if device.type != "cuda":
            raise BidlError(
                "sync_bn=True: torch's SyncBatchNorm runs on GPUs only; on CPU processes "
                "(gloo) set sync_bn=False (each rank then normalises over its own batch)"
            )
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).to(device)
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids), model


def broadcast_module_state(module: torch.nn.Module, src: int = 0) -> None:
    """Every rank takes rank ``src``'s parameters and buffers (what constructing DDP does)."""
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src)


def average_gradients(params, world_size: int) -> None:
    """Average the gradients of ``params`` over the ranks: one all-reduce per dtype over
    the gradients laid end to end. A parameter without a gradient on this rank counts as 0
    (every rank must send the same layout). Used after a backward replayed from a CUDA
    graph, in place of DDP (which failed around the graphed step on 2 H100s)."""
    groups: dict[torch.dtype, list] = {}
    for p in params:
        if p.requires_grad:
            groups.setdefault(p.dtype, []).append(p)
    for group in groups.values():
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in group]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(world_size)
        pieces = flat.split([g.numel() for g in grads])
        chunks = [c.view(p.shape) for p, c in zip(group, pieces, strict=True)]
        present = [(p.grad, c) for p, c in zip(group, chunks, strict=True) if p.grad is not None]
        if present:  # one multi-tensor copy, not a launch per parameter
            torch._foreach_copy_([g for g, _ in present], [c for _, c in present])
        for p, chunk in zip(group, chunks, strict=True):
            if p.grad is None:
                p.grad = chunk.clone()
