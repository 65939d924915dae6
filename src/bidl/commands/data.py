"""``bidl data``."""

from __future__ import annotations

HELP = "prepare a dataset's cache"
EXAMPLE = "bidl data prepare digits_dvs --root data/digits_dvs"


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["prepare"])
    parser.add_argument("dataset", choices=["digits_dvs"])
    parser.add_argument("--root", default="data/digits_dvs", help="cache folder to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=34, help="sensor width and height in pixels")
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate even if the cache is valid"
    )


def run(args) -> None:
    from ..datasets.digits_dvs import prepare_digits_dvs

    path = prepare_digits_dvs(
        args.root, seed=args.seed, size=args.size, overwrite=args.overwrite, verbose=True
    )
    print(f"DigitsDVS cache ready in {path}")
