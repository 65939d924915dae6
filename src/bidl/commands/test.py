"""``bidl test``."""

from __future__ import annotations

from .common import add_config_args

HELP = (
    "evaluate a checkpoint on the test split: top-1, top-5 (detectors: COCO mAP, mAP50), "
    "samples/s, ms per sample"
)
EXAMPLE = "bidl test clif3fc3dm_itout-b16x1-digitsdvs latest.pth"


def add_arguments(parser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "checkpoint", help="checkpoint path, or a file name in the config's work dir"
    )
    parser.add_argument("--out", default=None, help="write the metrics to this JSON file")


def run(args) -> None:
    from ..engine import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        args.config,
        args.checkpoint,
        cfg_options=args.cfg_options,
        device=args.device,
        work_dir=args.work_dir,
        out=args.out,
    )
    print(format_test_metrics(metrics))


def accuracy_lines(metrics: dict) -> list[str]:
    """``top-1: 98.50 %`` for each ``accuracy_top-k`` entry (``bidl infer`` prints them too)."""
    return [
        f"{k.replace('accuracy_', '')}: {v:.2f} %"
        for k, v in metrics.items()
        if k.startswith("accuracy_")
    ]


def detection_lines(metrics: dict) -> list[str]:
    """``mAP: 0.512`` ... for a detector's COCO metrics (-1: no object of that size)."""
    keys = ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large")
    return [f"{k}: {metrics[k]:.4f}" for k in keys if k in metrics]


def format_test_metrics(metrics: dict) -> str:
    lines = [f"checkpoint: {metrics['checkpoint']}", f"samples: {metrics['samples']}"]
    lines += accuracy_lines(metrics)
    lines += detection_lines(metrics)
    lines += [
        f"samples/s: {metrics['samples_per_s']:.1f}",
        f"ms per sample: {metrics['ms_per_sample']:.3f}",
    ]
    return "\n".join(lines)
