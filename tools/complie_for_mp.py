"""BIDL's multi-device compile entry point (its spelling kept):
``python tools/complie_for_mp.py --config NAME --checkpoint FILE``.

Compiles the config's ``model_0``, ``model_1``, ... (each a ``split`` of the backbone) into
one pipeline artifact, as ``bidl compile NAME --checkpoint FILE --segments`` does.
"""

import argparse
import sys

from bidl.cli import main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Compile a model cut into segments.")
    parser.add_argument("--config", required=True, help="config name or path (with model_N)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint of the whole model")
    parser.add_argument(
        "--backend", default="onnxruntime", choices=["onnxruntime", "aoti", "torch"]
    )
    parser.add_argument("--b", type=int, default=1, help="batch size of the compiled graphs")
    parser.add_argument("--use_legacy", type=int, default=0, choices=[0, 1])
    parser.add_argument("--out", default=None, help="artifact folder")
    parser.add_argument("--device", default=None)
    parser.add_argument("--work-dir", default=None)
    return parser.parse_args(argv)


def to_cli(args) -> list[str]:
    argv = ["compile", args.config, "--checkpoint", args.checkpoint, "--segments"]
    argv += ["--backend", args.backend, "--batch", str(args.b)]
    argv += ["--use_legacy", str(args.use_legacy)]
    for flag in ("out", "device", "work_dir"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    return argv


if __name__ == "__main__":
    sys.exit(main(to_cli(parse_args())))
