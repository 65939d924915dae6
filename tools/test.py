"""BIDL's test entry point:
``python tools/test.py --config NAME --checkpoint latest.pth --use_lyngor 0 --use_legacy 0``.

A bare checkpoint file name is looked up in the config's work dir. ``--use_lyngor 1``
compiles the step graph (``bidl compile``; ``--use_legacy 1`` reuses an up-to-date
artifact, ``--b N`` sets its batch size, ``--c 1`` stops after compiling) and evaluates it
through the runtime (``bidl infer``) instead of the PyTorch model.
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
        help="1: compile the step graph (or reuse it) and evaluate it through the runtime",
    )
    parser.add_argument(
        "--use_legacy",
        type=int,
        default=0,
        choices=[0, 1],
        help="1: reuse an existing compiled artifact",
    )
    parser.add_argument("--c", type=int, default=0, choices=[0, 1], help="1: compile only")
    parser.add_argument("--b", type=int, default=1, help="batch size of the compiled graph")
    parser.add_argument("--device", default=None)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--out", default=None, help="write metrics to this JSON file")
    return parser.parse_args(argv)


def evaluate_compiled(args) -> int:
    """--use_lyngor 1: compile (or reuse) the artifact, then evaluate it with the runtime."""
    from bidl.config import load_config
    from bidl.deploy import default_artifact_dir
    from bidl.registry import BidlError

    try:
        artifact = default_artifact_dir(load_config(args.config), args.b, "onnxruntime", "float32")
    except BidlError as err:
        print(f"tools/test.py: error: {err}", file=sys.stderr)
        return 1
    common = ["--work-dir", args.work_dir] if args.work_dir else []
    compile_argv = ["compile", args.config, "--checkpoint", args.checkpoint, "--batch", str(args.b)]
    compile_argv += ["--use_legacy", str(args.use_legacy), "--out", str(artifact), *common]
    code = main(compile_argv)
    if code or args.c:
        return code
    infer_argv = ["infer", args.config, "--artifact", str(artifact), *common]
    for flag in ("device", "out"):
        if getattr(args, flag) is not None:
            infer_argv += [f"--{flag}", getattr(args, flag)]
    return main(infer_argv)


if __name__ == "__main__":
    args = parse_args()
    if args.use_lyngor:
        sys.exit(evaluate_compiled(args))
    argv = ["test", args.config, args.checkpoint]
    for flag in ("device", "work_dir", "out"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    sys.exit(main(argv))
