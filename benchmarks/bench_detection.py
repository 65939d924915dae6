"""GEN1-shaped ST-YOLO train step beside an equivalent ANN YOLO step, in one process (issue 18).

Spiking: ``st_yolov5s-b8x6-gen1`` as ``bidl train`` sets it up on the device (multi-step
form, channels_last, cuDNN autotuning): B=8, T=11 stacked histograms of 20 channels at
256x320, boxes at the last step. ANN: the same detector with each Conv-LIF layer replaced
by YOLOv5's Conv-BN-SiLU and one frame per sample (T=1): a frame-based YOLOv5s + PAFPN +
YOLOX head on the same input size. Both: AdamW, gradient clipping at 1.0 (the config's),
synthetic inputs already on the device, eight boxes a sample.

    PYTHONPATH=src python benchmarks/bench_detection.py [--device cuda] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import Emitter  # noqa: E402

CONFIG = "st_yolov5s-b8x6-gen1"


def without_neurons(model: nn.Module) -> nn.Module:
    """``model`` with every Conv-LIF layer replaced by Conv-BN-SiLU of the same shape."""
    from bidl.layers.conv_lif import Conv2dLif
    from bidl.models.yolo_blocks import ConvBnAct

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv2dLif):
                conv = child.conv
                block = ConvBnAct(
                    conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0],
                    conv.padding[0],
                )  # fmt: skip
                setattr(parent, name, block)
    return model


def build(spiking: bool, device: torch.device):
    from bidl.config import load_config
    from bidl.engine.apis import build_model
    from bidl.engine.execution import prepare_model

    cfg = load_config(CONFIG)
    if not spiking:
        cfg.model.backbone.timestep = 1
    torch.manual_seed(0)
    model = build_model(cfg)
    if not spiking:
        model = without_neurons(model)
    model = model.to(device).train()
    prepare_model(model, cfg.get("runner"), device)
    return model, cfg


def inputs(cfg, timesteps: int, device: torch.device, boxes: int = 8):
    g = torch.Generator().manual_seed(0)
    batch = int(cfg.data.samples_per_gpu)
    backbone = cfg.model.backbone
    img = torch.rand(batch, timesteps, backbone.input_channels, backbone.h, backbone.w, generator=g)
    img = (img < 0.05).float() * 3
    corner = torch.rand(batch, boxes, 2, generator=g) * torch.tensor(
        [backbone.w - 60, backbone.h - 60]
    )
    size = 20 + torch.rand(batch, boxes, 2, generator=g) * 40
    gt_bboxes = torch.zeros(batch, 64, 4)
    gt_bboxes[:, :boxes] = torch.cat([corner, corner + size], -1)
    gt_labels = torch.full((batch, 64), -1, dtype=torch.int64)
    gt_labels[:, :boxes] = torch.randint(0, cfg.model.head.num_classes, (batch, boxes), generator=g)
    return img.to(device), gt_bboxes.to(device), gt_labels.to(device)


def step_seconds(model, img, gt_bboxes, gt_labels, iters: int, device: torch.device) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0)

    def step():
        losses = model(img, gt_bboxes=gt_bboxes, gt_labels=gt_labels)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    for _ in range(3):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    emit = Emitter(args.json)
    device = torch.device(args.device)
    for spiking in (True, False):
        name = "spiking ST-YOLO-s, T=11" if spiking else "ANN YOLOv5s (Conv-BN-SiLU), T=1"
        model, cfg = build(spiking, device)
        timesteps = cfg.model.backbone.timestep
        batch = inputs(cfg, timesteps, device)
        seconds = step_seconds(model, *batch, args.iters, device)
        params = sum(p.numel() for p in model.parameters())
        emit(bench="detection_step", impl=name, device=str(device), batch=batch[0].shape[0],
             timesteps=timesteps, ms=round(seconds * 1e3, 2),
             samples_per_s=round(batch[0].shape[0] / seconds, 1), parameters=params,
             peak_mib=(torch.cuda.max_memory_allocated() >> 20) if device.type == "cuda" else None)  # fmt: skip
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
