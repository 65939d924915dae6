"""Arguments several subcommands share."""

from __future__ import annotations

import argparse

from mmengine.config import DictAction


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", help="config name (e.g. clif3fc3dm_itout-b16x1-digitsdvs) or path"
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. runner.max_epochs=2 data.samples_per_gpu=8",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)"
    )
    parser.add_argument("--work-dir", default=None, help="default: work_dirs/<config name>")
