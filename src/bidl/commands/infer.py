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


def format_infer_metrics(metrics: dict) -> str:
    from .test import accuracy_lines

    lines = [f"artifact: {metrics['artifact']}", f"samples: {metrics['samples']}"]
    lines += accuracy_lines(metrics)
    lines += [
        f"samples/s: {metrics['samples_per_s']:.1f}",
        f"frames/s: {metrics['frames_per_s']:.1f}",
        f"latency per batch: p50 {metrics['latency_ms_p50']:.3f} ms, "
        f"p99 {metrics['latency_ms_p99']:.3f} ms",
    ]
    return "\n".join(lines)
