"""``bidl export``."""

from __future__ import annotations

from .common import add_config_args

HELP = "export a trained network to an interchange format (NIR)"
EXAMPLE = "bidl export my_snn_config --checkpoint latest.pth --format nir --out my_snn.nir"


def add_arguments(parser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "--checkpoint", required=True, help="checkpoint path, or a file name in the work dir"
    )
    parser.add_argument("--format", default="nir", choices=["nir"])
    parser.add_argument("--out", default=None, help="default: model_files/nir/<config name>.nir")
    parser.add_argument(
        "--dt",
        type=float,
        default=1.0,
        help="the time step the importer integrates with (snnTorch's import_from_nir: 1e-4); "
        "the graph is exact under forward Euler at this step (default 1)",
    )


def run(args) -> None:
    from pathlib import Path

    from ..config import config_name, load_config
    from ..deploy.nir_export import export_nir
    from ..engine.apis import build_model, find_checkpoint
    from ..engine.checkpoint import load_weights

    cfg = load_config(args.config, args.cfg_options)
    model = build_model(cfg)
    load_weights(model, find_checkpoint(args.checkpoint, cfg, args.work_dir))
    out = Path(args.out) if args.out else Path("model_files") / "nir" / f"{config_name(cfg)}.nir"
    print(f"wrote {export_nir(model, out, dt=args.dt)}")
