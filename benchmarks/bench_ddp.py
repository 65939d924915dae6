"""Data-parallel training throughput on 1, 2 and 4 GPUs (one process per GPU, NCCL): the
training step of ``bidl train --launcher pytorch`` (the config's model set up as the runner
does -- multi-step form, channels_last, fused optimizer --, its gradient clipping, CUDA
graphs of the forward and backward with the gradients averaged after each backward, or
eager DDP with ``--eager``) on
synthetic CIFAR10-DVS batches kept on the GPU. One GPU trains without DDP, as
``bidl train`` does.

    python benchmarks/bench_ddp.py --worlds 1 2 4 --json ddp.jsonl [--eager]

Weak scaling: every GPU takes the config's batch per GPU, so samples/s should grow with
the number of GPUs; the figure that matters is samples/s at N GPUs over samples/s at one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from bench_common import Emitter

CONFIG = "resnetlif18-itout-b8x1-cifar10dvs"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world, port, args, out):
    from bidl.config import load_config
    from bidl.engine.apis import build_model
    from bidl.engine.distributed import average_gradients, broadcast_module_state, wrap_ddp
    from bidl.engine.execution import prepare_model
    from bidl.engine.graphed_step import GraphedLosses
    from bidl.optim.optimizer import build_optimizer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    device = torch.device("cuda", rank)
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    prepare_model(model, cfg.get("runner"), device)
    plain, sync = model, None
    if args.sync_bn or (args.eager and world > 1):
        ddp, plain = wrap_ddp(model, device, sync_bn=args.sync_bn)
    elif args.eager:
        ddp = model
    else:  # as the runner: graphs, and with several GPUs the gradients averaged after backward
        ddp = GraphedLosses(model, required=True)
        if world > 1:
            broadcast_module_state(model)
            sync = lambda: average_gradients(model.parameters(), world)  # noqa: E731
    optimizer = build_optimizer(plain, cfg.optimizer)
    clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
    batch = args.batch or cfg.data.samples_per_gpu
    backbone = plain.backbone
    shape = (batch, backbone.timestep, *backbone.input_shape)
    generator = torch.Generator(device=device).manual_seed(rank)
    img = (torch.rand(shape, device=device, generator=generator) < 0.1).float()
    nclass = int(cfg.model.backbone.get("nclass", 10))
    label = torch.randint(0, nclass, (batch,), device=device, generator=generator)

    def step():
        loss = ddp(img, label)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if sync is not None:
            sync()
        if clip:
            torch.nn.utils.clip_grad_norm_(plain.parameters(), **clip)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    dist.barrier()
    seconds = time.perf_counter() - start
    averaging_ms = None
    if sync is not None:  # the gradient averaging alone, between device waits
        torch.cuda.synchronize()
        begin = time.perf_counter()
        for _ in range(args.steps):
            sync()
        torch.cuda.synchronize()
        averaging_ms = round(1000 * (time.perf_counter() - begin) / args.steps, 3)
    if rank == 0:
        record = {
            "config": args.config,
            "gpus": world,
            "batch_per_gpu": batch,
            "sync_bn": args.sync_bn,
            "cuda_graph": not (args.eager or args.sync_bn),
            "ms_per_step": round(1000 * seconds / args.steps, 2),
            "averaging_ms": averaging_ms,
            "samples_per_s": round(world * batch * args.steps / seconds, 1),
        }
        with open(out, "w") as handle:
            json.dump(record, handle)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=None, help="per GPU (default: config)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--sync-bn", action="store_true")
    parser.add_argument("--eager", action="store_true", help="no CUDA graphs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    base, emit = None, Emitter(args.json)
    for world in args.worlds:
        if world > torch.cuda.device_count():
            print(json.dumps({"gpus": world, "skipped": "not enough GPUs"}), flush=True)
            continue
        out = f"/tmp/bidl-ddp-{os.getpid()}-{world}.json"
        mp.spawn(_worker, args=(world, _port(), args, out), nprocs=world, join=True)
        with open(out) as handle:
            record = json.load(handle)
        base = base or record["samples_per_s"]
        record["speedup"] = round(record["samples_per_s"] / base, 2)
        emit(**record)


if __name__ == "__main__":
    main()
