"""``bidl convert-checkpoint``."""

from __future__ import annotations

HELP = "write a bidl checkpoint from a BIDL checkpoint (BIDL's weight names) for a config"
EXAMPLE = (
    "bidl convert-checkpoint work_dirs/bidl/latest.pth "
    "--config clif3fc3dm_itout-b16x1-dvsmnist --out clif3fc3dm.pth"
)


def add_arguments(parser) -> None:
    from .common import CfgOptionsAction

    parser.add_argument(
        "checkpoint",
        help="BIDL's checkpoint: its training file (latest.pth, best.pth), a bare backbone "
        "state dict, an mmcv checkpoint with 'backbone.' names, or ST-YOLO's PyTorch "
        "Lightning file (last_epoch=...ckpt) for a detection config",
    )
    parser.add_argument(
        "--config", required=True, help="the config (name or path) the weights belong to"
    )
    parser.add_argument("--out", required=True, help="the bidl checkpoint to write")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=CfgOptionsAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. model.backbone.nclass=11",
    )


def run(args) -> None:
    from ..config import config_name, load_config
    from ..engine.apis import build_model
    from ..engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from ..models.convert import adapt_state_dict

    cfg = load_config(args.config, args.cfg_options)
    model = build_model(cfg)
    checkpoint = load_checkpoint(args.checkpoint)
    source = f"checkpoint {str(args.checkpoint)!r}"
    state = adapt_state_dict(model, checkpoint["state_dict"], source, True, CheckpointError)
    model.load_state_dict(state)
    meta = dict(checkpoint.get("meta") or {})
    meta.update(converted_from=str(args.checkpoint), config=config_name(cfg))
    out = save_checkpoint(args.out, model, meta=meta)
    print(f"wrote {out}: {len(state)} tensors for {config_name(cfg)}")
