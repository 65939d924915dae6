"""The ``bidl`` command. Each subcommand lives in ``bidl.commands.<name>``."""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from .registry import BidlError

#: subcommand name -> module in bidl.commands (add a line to add a command)
COMMANDS = {
    "train": "train",
    "test": "test",
    "list": "list",
    "data": "data",
    "analyze": "analyze",
    "plot": "plot",
    "viz": "viz",
    "compile": "compile",
    "infer": "infer",
    "infer-multi": "infer_multi",
    "export": "export",
    "stream": "stream",
    "convert-checkpoint": "convert_checkpoint",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bidl",
        description="Brain-inspired deep spiking networks: train, evaluate, deploy.",
        epilog="example:\n  bidl train clif3fc3dm_itout-b16x1-digitsdvs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f".commands.{module_name}", __package__)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=f"example:\n  {module.EXAMPLE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=module.run)
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except BidlError as err:
        print(
            f"bidl {args.command}: error: " + textwrap.indent(str(err), "  ").lstrip(),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
