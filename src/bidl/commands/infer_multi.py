"""``bidl infer-multi``."""

from __future__ import annotations

import os
import tempfile

from .common import add_config_args

HELP = (
    "run a compiled network over a grid of devices (rows: time slices, columns: model "
    "segments): per-device utilisation, frames/s, latency"
)
EXAMPLE = (
    "bidl infer-multi resnetlif50-itout-b8x1-cifar10dvs_mp --checkpoint latest.pth "
    "--devices '[[0, 1], [2, 3]]'"
)


def add_arguments(parser) -> None:
    add_config_args(parser)  # --device cpu (processes, gloo) or cuda (GPUs, NCCL)
    parser.add_argument(
        "--devices",
        default=None,
        help="the grid, e.g. '[[0, 1], [2, 3]]' (default: the config's devices or lynxi_devices)",
    )
    parser.add_argument(
        "--artifact",
        default=None,
        help="compiled artifact (a pipeline of segments for a grid of several columns); "
        "default: compile from --checkpoint, reusing an up-to-date one",
    )
    parser.add_argument("--checkpoint", default=None, help="weights to compile from")
    parser.add_argument("--backend", default=None, choices=["onnxruntime", "aoti", "torch"])
    parser.add_argument("--batch", type=int, default=1, help="batch size of the graph")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="run N random spike samples instead of the data (speed only)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="batches run before the clock starts")
    parser.add_argument("--out", default=None, help="write the figures to this JSON file")


def _grid(args, cfg):
    from ..deploy.grid import DeviceGrid
    from ..registry import BidlError

    for where, value in (
        ("--devices", args.devices),
        ("devices", cfg.get("devices")),
        ("lynxi_devices", cfg.get("lynxi_devices")),
    ):
        if value is not None:
            return DeviceGrid.parse(value, where)
    raise BidlError(
        f"no device grid: pass --devices '[[0, 1]]' or set devices=[[...], ...] in "
        f"{args.config} (rows: time slices, columns: model segments)"
    )


def _artifact(args, grid, device: str, backend: str):
    """The artifact to run: --artifact, or compiled (reused when up to date)."""
    from ..deploy import compile_config
    from ..registry import BidlError

    if args.artifact:
        return args.artifact
    if not args.checkpoint:
        raise BidlError("give --artifact (a compiled folder) or --checkpoint to compile from")
    if "WORLD_SIZE" in os.environ:
        raise BidlError(
            "under torchrun, compile first (bidl compile [--segments]) and pass --artifact: "
            "the processes must not each compile"
        )
    result = compile_config(
        args.config,
        args.checkpoint,
        use_legacy=True,
        cfg_options=args.cfg_options,
        work_dir=args.work_dir,
        segments=grid.segments > 1,
        backend=backend,
        batch_size=args.batch,
        device="cuda" if device == "cuda" else "cpu",
    )
    print(f"{'reusing' if result.reused else 'compiled'} {result.path}")
    return result.path


def _source(args, artifact):
    import numpy as np

    from ..deploy.artifact import read_manifest
    from ..deploy.grid import ArrayInput, DatasetInput
    from ..deploy.segments import segment_artifacts

    if not args.synthetic:
        return DatasetInput(str(args.config), args.cfg_options, args.split), None
    manifest = read_manifest(segment_artifacts(artifact)[0])
    shape = (args.synthetic, manifest["timesteps"], *manifest["input"]["shape"][1:])
    handle, path = tempfile.mkstemp(prefix="bidl-synthetic-", suffix=".npy")
    os.close(handle)
    spikes = np.random.default_rng(0).random(shape, dtype=np.float32) < 0.3
    np.save(path, spikes.astype(np.float32))
    return ArrayInput(path), path


def run(args) -> None:
    from .. import fileio
    from ..config import load_config
    from ..deploy.launch import run_grid, run_grid_in_group

    cfg = load_config(args.config, args.cfg_options)
    grid = _grid(args, cfg)
    device = "cuda" if (args.device or "cpu").startswith("cuda") else "cpu"
    # on GPUs the eager PyTorch step graph by default: it needs no compiler and loads fast
    backend = args.backend or ("torch" if device == "cuda" else "onnxruntime")
    artifact = _artifact(args, grid, device, backend)
    source, temporary = _source(args, artifact)
    try:
        if "WORLD_SIZE" in os.environ:
            result = run_grid_in_group(
                artifact, grid, source, device=device, warmup_batches=args.warmup
            )
        else:
            labels = source.labels()
            result = run_grid(
                artifact,
                grid,
                source=source,
                labels=labels,
                device=device,
                warmup_batches=args.warmup,
            )
    finally:
        if temporary:
            os.remove(temporary)
    if result is None:  # a rank other than 0 of a torchrun job
        return
    print(result.summary())
    if args.out:
        figures = {
            "grid": [list(row) for row in grid.rows],
            "samples": result.samples,
            "samples_per_s": result.samples_per_s,
            "frames_per_s": result.frames_per_s,
            "latency_ms": result.latency_ms,
            # named as `bidl infer` and `bidl test` name them
            **{f"accuracy_{k}": v for k, v in result.accuracy.items()},
            "devices": [
                {
                    "rank": r.rank,
                    "device": r.device,
                    "slice": r.row,
                    "segment": r.column,
                    "steps": r.steps,
                    "busy_s": r.busy_s,
                    "utilisation": r.utilisation,
                }
                for r in result.reports
            ],
        }
        fileio.write_json(args.out, figures)
