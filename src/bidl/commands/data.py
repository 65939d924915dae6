"""``bidl data``."""

from __future__ import annotations

from .common import CfgOptionsAction

HELP = "prepare a dataset's cache, or convert BIDL's pickled data"
EXAMPLE = "bidl data prepare DvsGesture --root data/dvs_gesture --set timesteps=60 size=40"


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["prepare", "convert"])
    parser.add_argument(
        "dataset",
        help="digits_dvs, digits_dvs_det, a registered dataset name (e.g. DvsGesture), or for "
        "convert a BIDL .pkl file",
    )
    parser.add_argument("--root", default=None, help="dataset folder (the cache goes here)")
    parser.add_argument("--raw", default=None, help="folder of the raw files (default: --root)")
    parser.add_argument(
        "--set",
        nargs="+",
        action=CfgOptionsAction,
        default={},
        metavar="KEY=VALUE",
        help="dataset keywords that shape the cache, e.g. timesteps=16 size=40",
    )
    parser.add_argument("--out", default=None, help="convert: the .npz to write")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="convert: unpickling runs code; only for files you trust",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=34, help="sensor width and height in pixels")
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate even if the cache is valid"
    )


def run(args) -> None:
    if args.action == "convert":
        from ..datasets.legacy import convert_bidl_pickle

        out = convert_bidl_pickle(args.dataset, args.out, allow_pickle=args.allow_pickle)
        print(f"wrote {out}")
        return
    if args.dataset == "digits_dvs":
        from ..datasets.digits_dvs import prepare_digits_dvs
        from ..registry import BidlError

        options = dict(args.set or {})
        unknown = sorted(set(options) - {"num_samples"})
        if unknown:
            raise BidlError(
                f"bidl data prepare digits_dvs: --set takes num_samples (the first N digits, "
                f"for quick runs), not {', '.join(unknown)}; --seed and --size are options"
            )
        path = prepare_digits_dvs(
            args.root or "data/digits_dvs",
            seed=args.seed,
            size=args.size,
            overwrite=args.overwrite,
            num_samples=options.get("num_samples"),
            verbose=True,
        )
        print(f"DigitsDVS cache ready in {path}")
        return
    if args.dataset == "digits_dvs_det":
        from ..datasets.digits_dvs_det import prepare_command

        print(prepare_command(args.root, args.seed, args.overwrite, dict(args.set or {})))
        return
    from ..datasets.prepare import prepare_dataset

    for line in prepare_dataset(args.dataset, args.root, args.raw, dict(args.set or {})):
        print(line)
