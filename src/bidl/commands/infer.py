"""``bidl infer``."""

from __future__ import annotations

import sys
import time

from .common import add_config_args

HELP = "run a compiled artifact over the config's test split: accuracy, frames/s, latency"
EXAMPLE = (
    "bidl infer clif3fc3dm_itout-b16x1-digitsdvs "
    "--artifact model_files/dvs/clif3fc3dm_itout_digitsdvs_b16"
)

DETECTOR_TYPES = ("Detector", "YoloV5Detector")


def add_arguments(parser) -> None:
    add_config_args(parser)  # --device: default the artifact's (cpu for ONNX)
    parser.add_argument("--artifact", required=True, help="compiled artifact folder")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--out", default=None, help="write the metrics to this JSON file")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="only for a detector artifact compiled without its head graph (by an earlier "
        "bidl): the checkpoint whose neck and head run in PyTorch after the compiled spiking "
        "part (a path, or a file name in the config's work dir)",
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
    from ..deploy.head_graph import describe_head
    from ..engine.apis import build_datasets
    from ..engine.dataloader import build_dataloader
    from ..engine.metrics import metric_options

    cfg = load_config(args.config, args.cfg_options)
    with Runtime(args.artifact, device=args.device) as runtime:
        print(runtime.describe())
        if "head" in runtime.manifest:
            print(describe_head(runtime.manifest))
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
        if "head" in runtime.manifest or cfg.model.get("type") in DETECTOR_TYPES:
            metrics = detection_metrics_after_graph(cfg, args, dataset, loader, result, runtime)
        else:
            options = metric_options(cfg)
            metrics = dataset.evaluate(result.scores.astype("float32"), metric_options=options)
    # a detector's neck, head and NMS count too: samples/s of the whole detection
    seconds = result.seconds + metrics.get("head_seconds", 0.0)
    metrics.update(
        samples=result.samples,
        samples_per_s=result.samples / seconds,
        frames_per_s=result.samples * runtime.timesteps / seconds,
        latency_ms_p50=result.latency_ms["p50"],
        latency_ms_p99=result.latency_ms["p99"],
        artifact=str(args.artifact),
    )
    if args.out:
        fileio.write_json(args.out, metrics)
    return metrics


def detection_metrics_after_graph(cfg, args, dataset, loader, result, runtime) -> dict:
    """A detector's artifact gives the spiking part's features after the last step; its
    head graph (or, for an artifact compiled without one, the checkpoint's neck and head)
    and NMS turn them into boxes, scored by COCO."""
    import torch

    from ..deploy.head_graph import open_head
    from ..engine.detection import class_names, detection_metrics, unpadded

    head = open_head(runtime.folder, runtime.manifest, runtime.device)
    started = time.perf_counter()
    if head is not None:
        if args.checkpoint:
            print(
                f"note: {args.artifact} holds its neck and head as a graph; --checkpoint is "
                f"not used",
                file=sys.stderr,
            )
        predictions, model = head.detect(result.scores), head.as_model()
    else:
        model = _checkpoint_detector(cfg, args)
        features = torch.from_numpy(result.scores.astype("float32"))
        predictions = []
        with torch.no_grad():
            for chunk in features.split(64):
                predictions += model.detect_from_features(chunk)
    head_seconds = time.perf_counter() - started
    truths = []
    for batch in loader:
        truths += unpadded(batch["gt_bboxes"], batch["gt_labels"])
    metrics = detection_metrics(predictions, truths, class_names(dataset, model))
    metrics["head_seconds"] = head_seconds  # neck, head and NMS after the steps
    return metrics


def _checkpoint_detector(cfg, args):
    """The checkpoint's model, for the neck and head of an artifact that has no head graph."""
    from ..engine.apis import build_model, find_checkpoint
    from ..engine.checkpoint import load_weights
    from ..registry import BidlError

    if not args.checkpoint:
        raise BidlError(
            f"{args.artifact} holds only the spiking part of the detector {args.config} (it "
            f"was compiled before bidl compiled a detector's neck and head): recompile it "
            f"with `bidl compile {args.config} --checkpoint CKPT` to add the head graph, or "
            f"give --checkpoint (the one it was compiled from) to run the neck and head in "
            f"PyTorch"
        )
    model = build_model(cfg)
    load_weights(model, find_checkpoint(args.checkpoint, cfg, args.work_dir))
    return model.eval()


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
