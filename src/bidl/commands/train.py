"""``bidl train``."""

from __future__ import annotations

from .common import add_config_args

HELP = "train a config; logs and checkpoints go to the work dir"
EXAMPLE = "bidl train clif3fc3dm_itout-b16x1-digitsdvs --cfg-options runner.max_epochs=2"


def add_arguments(parser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the config's, else 0)"
    )
    parser.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from latest.pth in the work dir (start afresh when there is none)",
    )
    parser.add_argument(
        "--resume-from",
        default=None,
        help="checkpoint to resume training from: a path, or a file name in the work dir",
    )
    parser.add_argument(
        "--load-from",
        default=None,
        help="checkpoint whose weights start training: a path, or a file name in the work dir",
    )
    parser.add_argument(
        "--launcher",
        choices=("none", "pytorch"),
        default="none",
        help="pytorch: one process of a torchrun job (data-parallel; see tools/dist_train.sh)",
    )


def run(args) -> None:
    from ..engine import train_model

    options = dict(args.cfg_options or {})
    if args.resume_from:
        options["resume_from"] = args.resume_from
    if args.load_from:
        options["load_from"] = args.load_from
    metrics = train_model(
        args.config,
        work_dir=args.work_dir,
        cfg_options=options,
        device=args.device,
        seed=args.seed,
        deterministic=args.deterministic or None,
        launcher=args.launcher,
        resume=args.resume,
    )
    if metrics:
        print("final validation: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
