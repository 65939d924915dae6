"""``bidl analyze``."""

from __future__ import annotations

from .common import add_config_args

HELP = (
    "per-layer firing rates, synaptic operations vs MACs and an energy estimate of a "
    "trained checkpoint, with a spike raster and membrane traces of one sample"
)
EXAMPLE = (
    "bidl analyze clif3fc3dm_itout-b16x1-digitsdvs --checkpoint latest.pth --samples 64 "
    "--neurons 0:100 2:5"
)


def add_arguments(parser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint path, or a file name in the config's work dir (e.g. latest.pth)",
    )
    parser.add_argument("--samples", type=int, default=64, help="how many samples to run")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument(
        "--sample", type=int, default=0, help="index of the sample whose raster is drawn"
    )
    parser.add_argument(
        "--neurons",
        nargs="+",
        default=None,
        metavar="LAYER:INDEX",
        help="neurons whose membrane potential is traced: a neuron layer's position in the "
        "table (or its name) and the neuron's flat index (default: each layer's busiest)",
    )
    parser.add_argument(
        "--pj-per-ac", type=float, default=0.9, help="energy of one accumulate in pJ (45 nm)"
    )
    parser.add_argument(
        "--pj-per-mac",
        type=float,
        default=4.6,
        help="energy of one multiply-accumulate in pJ (45 nm)",
    )
    parser.add_argument(
        "--raster-neurons", type=int, default=100, help="most neurons per layer in the raster"
    )
    parser.add_argument("--dpi", type=int, default=100, help="PNG resolution")
    parser.add_argument("--out", default=None, help="output folder (default: WORK_DIR/analysis)")


def run(args) -> None:
    from ..analysis import analyze_checkpoint, format_report

    report, out = analyze_checkpoint(
        args.config,
        args.checkpoint,
        samples=args.samples,
        split=args.split,
        out=args.out,
        sample_index=args.sample,
        neurons=args.neurons,
        pj_per_ac=args.pj_per_ac,
        pj_per_mac=args.pj_per_mac,
        raster_max=args.raster_neurons,
        dpi=args.dpi,
        cfg_options=args.cfg_options,
        device=args.device,
        work_dir=args.work_dir,
    )
    print(format_report(report))
    print(
        f"wrote {out}/analysis.json, activity.png/svg, raster.png/svg/json, membrane.png/svg/json"
    )
