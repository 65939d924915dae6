"""``bidl list``."""

from __future__ import annotations

HELP = "list registered models, datasets, configs, ... (all kinds, counted, without WHAT)"
EXAMPLE = "bidl list configs"
WHAT = ["models", "datasets", "configs", "pipelines", "heads", "losses", "neurons", "classifiers"]
#: names shown per kind by a bare `bidl list`
PREVIEW = 4


def add_arguments(parser) -> None:
    parser.add_argument("what", nargs="?", choices=WHAT, help="what to list (default: a summary)")


def run(args) -> None:
    if args.what is None:
        print("\n".join(summary_lines()))
    elif args.what == "configs":
        for name, path in sorted(_configs().items()):
            print(f"{name}  {path}")
    elif args.what == "models":
        from ..models.backbones.zoo import describe_backbones

        print("\n".join(describe_backbones()))
    else:
        from ..registry import REGISTRIES

        registry = REGISTRIES[args.what]
        for name in registry.names():
            source = getattr(registry.get(name), "SOURCE", "") if args.what == "datasets" else ""
            print(f"{name}  {source}" if source else name)


def _configs() -> dict:
    from ..config import list_configs

    return list_configs()


def summary_lines() -> list[str]:
    """One line per kind: how many, the first few names, the command that lists them all."""
    from ..registry import REGISTRIES

    lines = []
    for what in WHAT:
        names = sorted(_configs()) if what == "configs" else REGISTRIES[what].names()
        shown = ", ".join(names[:PREVIEW]) + (", ..." if len(names) > PREVIEW else "")
        lines.append(f"{what:<12} {len(names):>4}  {shown}")
    lines.append("`bidl list WHAT` lists one kind in full (models: with parameters and input)")
    return lines
