"""Arguments several subcommands share."""

from __future__ import annotations

import argparse

from ..config import parse_cfg_options
from ..registry import BidlError


class CfgOptionsAction(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` into a dict; repeated flags add up; a malformed
    item is argparse's one-line usage error, not a traceback."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        try:
            options.update(parse_cfg_options(list(values or []), option_string or self.dest))
        except BidlError as err:
            parser.error(str(err))
        setattr(namespace, self.dest, options)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", help="config name (e.g. clif3fc3dm_itout-b16x1-digitsdvs) or path"
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=CfgOptionsAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. runner.max_epochs=2 data.samples_per_gpu=8",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)"
    )
    parser.add_argument("--work-dir", default=None, help="default: work_dirs/<config name>")
