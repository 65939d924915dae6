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

    if args.what == "models":
        from ..models.backbones.zoo import describe_backbones

        print("\n".join(describe_backbones()))
        return
    from ..datasets import builder  # noqa: F401
    from ..registry import REGISTRIES

    registry = REGISTRIES[args.what]
    for name in registry.names():
        source = getattr(registry.get(name), "SOURCE", "") if args.what == "datasets" else ""
        print(f"{name}  {source}" if source else name)
