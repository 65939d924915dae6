"""``bidl list``."""

from __future__ import annotations

HELP = "list registered models, datasets, configs, ..."
EXAMPLE = "bidl list configs"
WHAT = ["models", "datasets", "configs", "pipelines", "heads", "losses", "neurons", "classifiers"]


def add_arguments(parser) -> None:
    parser.add_argument("what", choices=WHAT)


def run(args) -> None:
    if args.what == "configs":
        from ..config import list_configs

        for name, path in sorted(list_configs().items()):
            print(f"{name}  {path}")
        return
    from .. import models  # noqa: F401  (fill the registries)
    from ..datasets import builder  # noqa: F401
    from ..registry import REGISTRIES

    for name in REGISTRIES[args.what].names():
        print(name)
