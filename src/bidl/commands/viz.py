"""``bidl viz``."""

from __future__ import annotations

from .common import CfgOptionsAction

HELP = (
    "animate an event stream or its frames (ON and OFF in two colours) as a GIF or MP4, "
    "beside the network's running prediction"
)
EXAMPLE = (
    "bidl viz clif3fc3dm_itout-b16x1-digitsdvs --checkpoint latest.pth --sample 3 "
    "--frames 24 --out digit.gif\n  bidl viz --events recording.npz --frames 30 --out rec.gif"
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "config", nargs="?", default=None, help="config name or path (or use --events)"
    )
    parser.add_argument(
        "--events", default=None, metavar="FILE.npz", help="an event file with x, y, t, p arrays"
    )
    parser.add_argument(
        "--checkpoint", default=None, help="show this checkpoint's running prediction"
    )
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--sample", type=int, default=0, help="sample index in the split")
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help="re-integrate the raw event stream into this many frames (default: the "
        "network's T frames; 20 for --events)",
    )
    parser.add_argument(
        "--sensor-size", type=int, nargs=2, default=None, metavar=("H", "W"), help="for --events"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="frames per second (4; 10 for --events)"
    )
    parser.add_argument("--dpi", type=int, default=100, help="pixels per inch of each frame")
    parser.add_argument(
        "--out", default=None, help="a .gif or .mp4 path (default: WORK_DIR/viz/SPLIT-SAMPLE.gif)"
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=CfgOptionsAction,
        metavar="KEY=VALUE",
        help="override keys",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N")
    parser.add_argument("--work-dir", default=None, help="default: work_dirs/<config name>")


def run(args) -> None:
    from ..analysis.viz import viz_event_file, viz_sample
    from ..registry import BidlError

    if (args.config is None) == (args.events is None):
        raise BidlError("give a CONFIG (animate a dataset sample) or --events FILE.npz, not both")
    if args.events is not None:
        data, out = viz_event_file(
            args.events,
            n_frames=args.frames or 20,
            out=args.out,
            sensor_size=args.sensor_size,
            fps=args.fps or 10.0,
            dpi=args.dpi,
        )
    else:
        data, out = viz_sample(
            args.config,
            checkpoint=args.checkpoint,
            split=args.split,
            sample_index=args.sample,
            n_frames=args.frames,
            out=args.out,
            fps=args.fps or 4.0,
            dpi=args.dpi,
            cfg_options=args.cfg_options,
            device=args.device,
            work_dir=args.work_dir,
        )
    summary = f"wrote {out} ({data['frames']} frames, {data['size'][0]}x{data['size'][1]})"
    if "true_boxes" in data:
        from ..analysis.viz_boxes import box_summary

        summary += f"; {box_summary(data['true_boxes'], data.get('predicted_boxes'))}"
    if "predicted" in data:
        classes = data["classes"] or [str(i) for i in range(len(data["probabilities"][0]))]
        summary += f"; prediction after the last step: {classes[data['predicted'][-1]]}"
        summary += f" (true {classes[data['label']]})"
    print(summary)
    print(f"wrote {out.with_suffix('.json')}")
