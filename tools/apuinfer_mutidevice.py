"""BIDL's multi-device inference entry point (its spelling kept):
``python tools/apuinfer_mutidevice.py --config NAME --checkpoint FILE``.

Runs the network over the config's device grid (``devices`` / ``lynxi_devices``), as
``bidl infer-multi NAME`` does, and prints per-device utilisation, frames/s and latency.
"""

import argparse
import sys

from bidl.cli import main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Run a network over a grid of devices.")
    parser.add_argument("--config", required=True, help="config name or path")
    parser.add_argument("--checkpoint", default=None, help="weights to compile from")
    parser.add_argument("--artifact", default=None, help="an already compiled artifact")
    parser.add_argument("--devices", default=None, help="grid, e.g. '[[0, 1], [2, 3]]'")
    parser.add_argument("--backend", default=None, choices=["onnxruntime", "aoti", "torch"])
    parser.add_argument("--b", type=int, default=1, help="batch size of the compiled graphs")
    parser.add_argument("--synthetic", type=int, default=0, help="N random samples (speed)")
    parser.add_argument("--device", default=None, help="cpu or cuda")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--out", default=None, help="write the figures to this JSON file")
    return parser.parse_args(argv)


def to_cli(args) -> list[str]:
    argv = ["infer-multi", args.config, "--batch", str(args.b), "--synthetic", str(args.synthetic)]
    for flag in ("checkpoint", "artifact", "devices", "backend", "device", "work_dir", "out"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    return argv


if __name__ == "__main__":
    sys.exit(main(to_cli(parse_args())))
