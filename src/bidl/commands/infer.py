"""``bidl infer``."""

from __future__ import annotations

import sys

from .common import add_config_args

HELP = "run a compiled artifact over the config's test split: accuracy, frames/s, latency"
EXAMPLE = (
    "bidl infer clif3fc3dm_itout-b16x1-digitsdvs "
    "--artifact model_files/dvs/clif3fc3dm_itout_digitsdvs_b16"
)


def add_arguments(parser) -> None:
    add_config_args(parser)  # --device: default the artifact's (cpu for ONNX)
    parser.add_argument("--artifact", required=True, help="compiled artifact folder")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--out", default=None, help="write the metrics to this JSON file")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a detector's checkpoint: its neck and head run after the compiled spiking part "
        "(a path, or a file name in the config's work dir)",
    )


def run(args) -> None:
    metrics = infer_from_args(args)
    print(format_infer_metrics(metrics))


def infer_from_args(args) -> dict:
    """Evaluate ``args.artifact`` on the config's data; metrics as ``bidl test`` names them."""
    from .. import fileio
    from ..config import load_config
    from ..deploy import Runtime
    from ..deploy.artifact import config_hash
    from ..engine.apis import build_datasets
    from ..engine.dataloader import build_dataloader
    from ..engine.metrics import metric_options

    cfg = load_config(args.config, args.cfg_options)
    with Runtime(args.artifact, device=args.device) as runtime:
        print(runtime.describe())
        compiled_from = runtime.manifest["hashes"].get("config")
        if compiled_from and compiled_from != config_hash(cfg.model.to_dict()):
            print(
                f"warning: {args.artifact} was compiled from another model config than "
                f"{args.config}'s; its predictions belong to that model",
                file=sys.stderr,
            )
        dataset = build_datasets(cfg, (args.split,))[args.split]
        loader = build_dataloader(
            dataset, runtime.batch_size, int(cfg.data.get("workers_per_gpu", 0))
        )
        result = runtime.infer(loader)
    if cfg.model.get("type") in ("Detector", "YoloV5Detector"):
        metrics = detection_metrics_after_graph(cfg, args, dataset, loader, result.scores)
    else:
        options = metric_options(cfg)
        metrics = dataset.evaluate(result.scores.astype("float32"), metric_options=options)
    metrics.update(
        samples=result.samples,
        samples_per_s=result.samples_per_s,
        frames_per_s=result.frames_per_s,
        latency_ms_p50=result.latency_ms["p50"],
        latency_ms_p99=result.latency_ms["p99"],
        artifact=str(args.artifact),
    )
    if args.out:
        fileio.write_json(args.out, metrics)
    return metrics


def detection_metrics_after_graph(cfg, args, dataset, loader, features) -> dict:
    """A detector's artifact gives the spiking part's features after the last step; the
    neck, head and NMS of the checkpoint's model turn them into boxes, scored by COCO."""
    import torch

    from ..engine.apis import build_model, find_checkpoint
    from ..engine.checkpoint import load_weights
    from ..engine.detection import class_names, detection_metrics, unpadded
    from ..registry import BidlError

    if not args.checkpoint:
        raise BidlError(
            f"{args.config} is a detector: its compiled artifact holds the spiking part; give "
            f"--checkpoint (the one it was compiled from) for the neck and head that follow"
        )
    model = build_model(cfg)
    load_weights(model, find_checkpoint(args.checkpoint, cfg, args.work_dir))
    model.eval()
    features = torch.from_numpy(features.astype("float32"))
    predictions, truths = [], []
    with torch.no_grad():
        for chunk in features.split(64):
            predictions += model.detect_from_features(chunk)
    for batch in loader:
        truths += unpadded(batch["gt_bboxes"], batch["gt_labels"])
    return detection_metrics(predictions, truths, class_names(dataset, model))


def format_infer_metrics(metrics: dict) -> str:
    from .test import accuracy_lines, detection_lines

    lines = [f"artifact: {metrics['artifact']}", f"samples: {metrics['samples']}"]
    lines += accuracy_lines(metrics)
    lines += detection_lines(metrics)
    lines += [
        f"samples/s: {metrics['samples_per_s']:.1f}",
        f"frames/s: {metrics['frames_per_s']:.1f}",
        f"latency per batch: p50 {metrics['latency_ms_p50']:.3f} ms, "
        f"p99 {metrics['latency_ms_p99']:.3f} ms",
    ]
    return "\n".join(lines)
