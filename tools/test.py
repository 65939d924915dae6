"""BIDL's test entry point:
``python tools/test.py --config NAME --checkpoint latest.pth --use_lyngor 0 --use_legacy 0``.

A bare checkpoint file name is looked up in the config's work dir.
"""

import argparse
import sys

from bidl.cli import main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint (BIDL's tools/test.py).")
    parser.add_argument("--config", required=True, help="config name or path")
    parser.add_argument("--checkpoint", required=True, help="checkpoint path or file name")
    parser.add_argument(
        "--use_lyngor",
        type=int,
        default=0,
        choices=[0, 1],
        help="1: run the compiled step graph (not available in this version)",
    )
    parser.add_argument(
        "--use_legacy",
        type=int,
        default=0,
        choices=[0, 1],
        help="1: reuse an existing compiled artifact",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--out", default=None, help="write metrics to this JSON file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.use_lyngor:
        sys.exit(
            "tools/test.py: --use_lyngor 1 (evaluate the compiled step graph) is not "
            "available in this version of bidl; use --use_lyngor 0 to test the checkpoint"
        )
    argv = ["test", args.config, args.checkpoint]
    for flag in ("device", "work_dir", "out"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    sys.exit(main(argv))
