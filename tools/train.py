"""BIDL's training entry point: ``python tools/train.py --config NAME`` (same as ``bidl train``)."""

import argparse
import sys

from bidl.cli import main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a config (BIDL's tools/train.py).")
    parser.add_argument("--config", required=True, help="config name or path")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--resume-from", default=None)
    parser.add_argument("--load-from", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--launcher", choices=("none", "pytorch"), default=None)
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cfg-options", nargs="+", default=None, metavar="KEY=VALUE")
    return parser.parse_args(argv)


def to_bidl_argv(args) -> list[str]:
    argv = ["train", args.config]
    for flag in ("work_dir", "resume_from", "load_from", "device", "seed", "launcher"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.deterministic:
        argv.append("--deterministic")
    if args.cfg_options:
        argv += ["--cfg-options", *args.cfg_options]
    return argv


if __name__ == "__main__":
    sys.exit(main(to_bidl_argv(parse_args())))
