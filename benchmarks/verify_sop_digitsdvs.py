"""Independent SOP count of a trained DigitsDVS model against `bidl analyze`'s table.

usage: python benchmarks/verify_sop_digitsdvs.py CONFIG CHECKPOINT OUT_DIR N_SAMPLES
"""

import json
import sys

import numpy as np
import torch

from bidl.cli import main
from bidl.config import load_config
from bidl.datasets import build_dataset
from bidl.engine import build_model
from bidl.layers import Conv2dLif

config, ckpt, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
assert (
    main(
        [
            "analyze",
            config,
            "--checkpoint",
            ckpt,
            "--samples",
            str(n),
            "--out",
            out,
            "--device",
            "cpu",
        ]
    )
    == 0
)
with open(f"{out}/analysis.json") as handle:
    report = json.load(handle)
cfg = load_config(config)
model = build_model(cfg)
model.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
model.eval()
seen = {}
for name, m in model.named_modules():
    if isinstance(m, Conv2dLif):
        seen[name] = []
        m.register_forward_hook(lambda _m, _a, o, _n=name: seen[_n].append(o.detach().double()))
ds = build_dataset(cfg.data.test)
imgs = torch.stack([ds[i]["img"] for i in range(n)])
with torch.no_grad():
    for s in range(0, n, 16):
        model(imgs[s : s + 16], return_loss=False)


def win(size):
    return np.array([min(i + 1, size - 1) - max(i - 1, 0) + 1 for i in range(size)], float)


position_sums = [imgs.double().sum(dim=(0, 1, 2))] + [
    sum(t.sum(dim=(0, 1)) for t in seen[f"backbone.body.{i}"]) for i in range(2)
]
total = 0.0
for i, per_position in enumerate(position_sums):
    conv = model.backbone.body[i].conv
    h, w = per_position.shape
    reach = conv.out_channels * np.outer(win(h), win(w))
    sops = float((per_position.numpy() * reach).sum()) / n
    total += sops
    print(
        f"conv{i}: independent {sops:.1f}  analyze {report['synaptic_layers'][i]['sops_per_sample']:.1f}"
    )
last = sum(float(t.sum()) for t in seen["backbone.body.2"])
fc = model.backbone.head[1].out_features * last / n
total += fc
print(f"fc1: independent {fc:.1f}  analyze {report['synaptic_layers'][3]['sops_per_sample']:.1f}")
print(f"total: independent {total:.1f}  analyze {report['total']['sops_per_sample']:.1f}")
