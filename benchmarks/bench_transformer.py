"""Spikformer train step on CIFAR10-DVS shapes: bidl's ``spikformer_4_384`` beside
SpikingJelly 2.0's ``Spikformer`` of the same size, in one process (issue 16).

B=32, T=16, 2x128x128 input, 10 classes; embedding 384, 4 blocks, 12 heads, 8x8 tokens
(bidl: four max-pooling stem stages; SpikingJelly: patch size 16). AdamW, cross entropy.
bidl is set up as ``bidl train`` sets it up on CUDA (multi-step form, channels_last, cuDNN
autotuning, the forward and backward replayed from CUDA graphs); its eager step is shown
too. SpikingJelly runs its default multi-step network.

    PYTHONPATH=src:/tmp/site python benchmarks/bench_transformer.py [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import Emitter, timeit  # noqa: E402

B, T, C, H, W, CLASSES = 32, 16, 2, 128, 128, 10


def step_time(forward, params, iters: int, autocast: bool) -> float:
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = forward()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timeit(step, iters=iters, warm=5)


def bidl_step(graphed: bool, autocast: bool, iters: int) -> float:
    from bidl.engine.execution import prepare_model
    from bidl.engine.graphed_step import GraphedLosses
    from bidl.registry import BACKBONES, build

    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = build(
                dict(
                    type="spikformer_4_384",
                    timestep=T,
                    input_channels=C,
                    h=H,
                    w=W,
                    nclass=CLASSES,
                    pooling_stat="1111",
                ),
                BACKBONES,
            )

        def forward(self, x, y):
            return {"loss": nn.functional.cross_entropy(self.backbone(x), y)}

    torch.manual_seed(0)
    model = WithLoss().cuda().train()
    prepare_model(model, {}, torch.device("cuda"))
    x = (torch.rand(B, T, C, H, W, device="cuda") < 0.1).float()
    y = torch.randint(0, CLASSES, (B,), device="cuda")
    call = GraphedLosses(model, required=True) if graphed else model
    return step_time(lambda: call(x, y)["loss"], model.parameters(), iters, autocast)


def spikingjelly_step(autocast: bool, iters: int) -> float:
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model.spikformer import Spikformer

    torch.manual_seed(0)
    net = Spikformer(
        T=T,
        in_channels=C,
        img_size_h=H,
        img_size_w=W,
        patch_size=16,
        num_classes=CLASSES,
        embed_dims=384,
        num_heads=12,
        depths=4,
    ).cuda()
    x = (torch.rand(T, B, C, H, W, device="cuda") < 0.1).float()
    y = torch.randint(0, CLASSES, (B,), device="cuda")

    def forward():
        functional.reset_net(net)
        return nn.functional.cross_entropy(net(x).mean(0), y)

    return step_time(forward, net.parameters(), iters, autocast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    emit = Emitter(args.json)
    torch.backends.cudnn.benchmark = True
    for autocast in (False, True):
        precision = "bf16" if autocast else "fp32"
        runs = [
            ("bidl spikformer_4_384, cuda graph (bidl train's default)", bidl_step, (True,)),
            ("bidl spikformer_4_384, eager", bidl_step, (False,)),
            ("spikingjelly 2.0 Spikformer", spikingjelly_step, ()),
        ]
        for name, run, first in runs:
            try:
                seconds = run(*first, autocast, args.iters)
                emit(bench="spikformer_step", impl=name, precision=precision,
                     ms=round(seconds * 1e3, 2), samples_per_s=round(B / seconds, 1),
                     peak_mib=torch.cuda.max_memory_allocated() >> 20)  # fmt: skip
            except Exception as err:  # the side-by-side figure is optional
                emit(bench="spikformer_step", impl=name, precision=precision, error=repr(err)[:400])
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
