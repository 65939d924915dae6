"""``bidl compile``."""

from __future__ import annotations

from .common import add_config_args

HELP = "compile a trained network into a state-explicit step graph (ONNX or AOTInductor)"
EXAMPLE = (
    "bidl compile clif3fc3dm_itout-b16x1-digitsdvs --checkpoint latest.pth --batch 16 "
    "--use_legacy 1\n  "
    "bidl compile clif3fc3dm_itout-b16x1-digitsdvs --checkpoint latest.pth --precision int8"
)


def add_arguments(parser) -> None:
    add_config_args(parser)
    add_compile_args(parser)
    parser.add_argument(
        "--out", default=None, help="artifact folder (default: model_files/<category>/...)"
    )
    parser.add_argument(
        "--segments",
        action="store_true",
        help="compile the config's model_0, model_1, ... (each a split of the backbone) into "
        "one pipeline artifact for `bidl infer-multi`",
    )
    parser.add_argument(
        "--balance",
        default=None,
        metavar="DEVICE",
        help="with --segments: choose the split points anew so that every segment takes "
        "about the same time per step on DEVICE (cpu, cuda, cuda:1), timed there; the "
        "number of segments stays the config's",
    )


def add_compile_args(parser) -> None:
    """The options of compiling, shared with ``tools/test.py``-style entry points."""
    parser.add_argument(
        "--checkpoint", required=True, help="checkpoint path, or a file name in the work dir"
    )
    parser.add_argument(
        "--backend", default="onnxruntime", choices=["onnxruntime", "aoti", "torch"]
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size of the graph")
    parser.add_argument("--input-dtype", default="float32", choices=["float32", "float16", "uint8"])
    parser.add_argument(
        "--precision",
        default="fp32",
        metavar="{fp32,fp16,bf16,int8}",
        help="fp16 / bf16: synaptic layers in half precision, neurons and states in float32 "
        "(aoti, torch; fp16 also onnxruntime); int8: ONNX Runtime's static quantization, "
        "calibrated on training samples (onnxruntime). Compiling a precision other than fp32 "
        "prints its test accuracy beside fp32's and the largest output difference",
    )
    parser.add_argument(
        "--calib-samples",
        type=int,
        default=64,
        help="int8: training samples that calibrate the quantization ranges",
    )
    parser.add_argument(
        "--eval-samples",
        type=int,
        default=None,
        help="test samples the reduced-precision artifact is compared with fp32 on "
        "(default: the whole test split; 0: no comparison)",
    )
    parser.add_argument(
        "--input-scale",
        type=float,
        default=1.0,
        help="uint8 input only: the graph multiplies the frames by this (e.g. 0.00392 = 1/255)",
    )
    parser.add_argument(
        "--use_legacy",
        "--use-legacy",
        dest="use_legacy",
        type=int,
        default=0,
        choices=[0, 1],
        help="1: reuse the artifact if its config and weights hashes still match",
    )


def compile_from_args(args):
    """Compile (or reuse) as the arguments say; prints what happened, returns the result."""
    import torch

    from ..deploy import compile_config
    from ..registry import BidlError

    balance = getattr(args, "balance", None)
    if balance and not getattr(args, "segments", False):
        raise BidlError("--balance chooses the split points of segments: add --segments")
    device = args.device
    if device is None:
        aoti_on_gpu = args.backend == "aoti" and torch.cuda.is_available()
        device = "cuda" if aoti_on_gpu else "cpu"
    result = compile_config(
        args.config,
        args.checkpoint,
        backend=args.backend,
        batch_size=args.batch,
        input_dtype=args.input_dtype,
        input_scale=args.input_scale,
        precision=getattr(args, "precision", "fp32"),
        calib_samples=getattr(args, "calib_samples", 64),
        eval_samples=getattr(args, "eval_samples", None),
        out=args.out,
        use_legacy=bool(args.use_legacy),
        device=device,
        cfg_options=args.cfg_options,
        work_dir=args.work_dir,
        segments=getattr(args, "segments", False),
        balance=balance,
    )
    if result.balanced:
        print(result.balanced)
    if result.reused:
        print(f"reusing {result.path} (config and weights unchanged)")
    else:
        if result.reason:
            print(f"cannot reuse {result.path}: {result.reason}; recompiling")
        print(f"compiled {result.path}")
    return result


def run(args) -> None:
    from ..deploy import read_manifest
    from ..deploy.artifact import describe_manifest
    from ..deploy.head_graph import describe_head
    from ..deploy.segments import read_pipeline

    result = compile_from_args(args)
    if not args.segments:
        manifest = read_manifest(result.path)
        print(describe_manifest(manifest))
        if "head" in manifest:  # a detector's neck and head
            print(describe_head(manifest))
        if result.report is not None:
            print(result.report.summary())
        return
    _, folders = read_pipeline(result.path)
    for folder in folders:
        print(f"\n== {folder.name}\n{describe_manifest(read_manifest(folder))}")
