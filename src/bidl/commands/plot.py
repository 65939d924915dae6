"""``bidl plot``."""

from __future__ import annotations

HELP = "training curves (loss, top-1/top-5, lr) of one or more work dirs, to PNG and SVG"
EXAMPLE = "bidl plot work_dirs/run-a work_dirs/run-b --x epoch --out plots/"


def add_arguments(parser) -> None:
    parser.add_argument("work_dirs", nargs="+", metavar="WORK_DIR", help="folders with log.json")
    parser.add_argument(
        "--x", default="iter", choices=["iter", "epoch"], help="horizontal axis (default: iter)"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: WORK_DIR/plots for one run, ./plots for several)",
    )
    parser.add_argument("--dpi", type=int, default=100, help="PNG resolution")


def run(args) -> None:
    from pathlib import Path

    from ..analysis import plot_work_dirs

    out = args.out or (Path(args.work_dirs[0]) / "plots" if len(args.work_dirs) == 1 else "plots")
    data = plot_work_dirs(args.work_dirs, out, x=args.x, dpi=args.dpi)
    for run_data in data["runs"]:
        val = run_data["val"]
        best = max(val.get("accuracy_top-1") or [float("nan")])
        print(
            f"{run_data['name']}: {len(run_data['train']['x'])} train records, "
            f"{len(val['x'])} validations, best top-1 {best:.2f}"
        )
    print(f"wrote {Path(out) / 'curves.png'}, curves.svg, curves.json")
