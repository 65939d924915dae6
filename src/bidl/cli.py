"""The ``bidl`` command: train, test, list, data."""

from __future__ import annotations

import argparse
import sys
import textwrap

from mmengine.config import DictAction

from .registry import BidlError

EXAMPLES = {
    "train": "bidl train clif3fc3dm_itout-b16x1-digitsdvs --cfg-options runner.max_epochs=2",
    "test": "bidl test clif3fc3dm_itout-b16x1-digitsdvs latest.pth",
    "list": "bidl list configs",
    "data": "bidl data prepare digits_dvs --root data/digits_dvs",
}


def _subparser(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        name, help=help_text, description=help_text,
        epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="config name (e.g. clif3fc3dm_itout-b16x1-digitsdvs) or path")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config keys, e.g. runner.max_epochs=2 data.samples_per_gpu=8")  # fmt: skip
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--work-dir", default=None, help="default: work_dirs/<config name>")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bidl",
        description="Brain-inspired deep spiking networks: train, evaluate, deploy.",
        epilog="example:\n  " + EXAMPLES["train"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = _subparser(subparsers, "train", "train a config; logs and checkpoints go to the work dir")
    add_config_args(train)
    train.add_argument("--seed", type=int, default=None, help="random seed (default: the config's, else 0)")
    train.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    train.add_argument("--resume-from", default=None, help="checkpoint to resume training from")
    train.add_argument("--load-from", default=None, help="checkpoint whose weights start training")

    test = _subparser(subparsers, "test", "evaluate a checkpoint on the test split")
    add_config_args(test)
    test.add_argument("checkpoint", help="checkpoint path, or a file name in the config's work dir")
    test.add_argument("--out", default=None, help="write the metrics to this JSON file")

    lister = _subparser(subparsers, "list", "list registered models, datasets, configs, ...")
    lister.add_argument("what", choices=["models", "datasets", "configs", "pipelines", "heads",
                                         "losses", "neurons", "classifiers"])  # fmt: skip

    data = _subparser(subparsers, "data", "prepare a dataset's cache")
    data.add_argument("action", choices=["prepare"])
    data.add_argument("dataset", choices=["digits_dvs"])
    data.add_argument("--root", default="data/digits_dvs", help="cache folder to write")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--size", type=int, default=34, help="sensor width and height in pixels")
    data.add_argument("--overwrite", action="store_true", help="regenerate even if the cache is valid")
    return parser


def cmd_train(args) -> None:
    from .engine import train_model

    options = dict(args.cfg_options or {})
    if args.resume_from:
        options["resume_from"] = args.resume_from
    if args.load_from:
        options["load_from"] = args.load_from
    metrics = train_model(args.config, work_dir=args.work_dir, cfg_options=options,
                          device=args.device, seed=args.seed,
                          deterministic=args.deterministic or None)  # fmt: skip
    if metrics:
        print("final validation: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))


def cmd_test(args) -> None:
    from .engine import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.config, args.checkpoint, cfg_options=args.cfg_options,
                                  device=args.device, work_dir=args.work_dir, out=args.out)  # fmt: skip
    print(format_test_metrics(metrics))


def format_test_metrics(metrics: dict) -> str:
    lines = [f"checkpoint: {metrics['checkpoint']}", f"samples: {metrics['samples']}"]
    lines += [f"{k.replace('accuracy_', '')}: {v:.2f} %" for k, v in metrics.items() if k.startswith("accuracy_")]
    lines += [f"samples/s: {metrics['samples_per_s']:.1f}", f"ms per sample: {metrics['ms_per_sample']:.3f}"]
    return "\n".join(lines)


def cmd_list(args) -> None:
    if args.what == "configs":
        from .config import list_configs

        for name, path in sorted(list_configs().items()):
            print(f"{name}  {path}")
        return
    from . import datasets, models  # noqa: F401  (fill the registries)
    from .datasets import builder  # noqa: F401
    from .registry import REGISTRIES

    for name in REGISTRIES[args.what].names():
        print(name)


def cmd_data(args) -> None:
    from .datasets.digits_dvs import prepare_digits_dvs

    path = prepare_digits_dvs(args.root, seed=args.seed, size=args.size, overwrite=args.overwrite,
                              verbose=True)  # fmt: skip
    print(f"DigitsDVS cache ready in {path}")


COMMANDS = {"train": cmd_train, "test": cmd_test, "list": cmd_list, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except BidlError as err:
        print(f"bidl {args.command}: error: " + textwrap.indent(str(err), "  ").lstrip(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
