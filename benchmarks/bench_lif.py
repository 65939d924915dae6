"""LIF forward + backward over a whole sequence: bidl's reference loop, bidl's fused Triton
kernel and SpikingJelly 2.0 side by side, in one process, on the same inputs.

Workload of the anchor benchmark (``shared/anchors/bench_anchor.py``, ``micro``):
x of shape [T=16, 32, 128, 32, 32] (67 M elements), float32, a random upstream gradient.
Prints one JSON line per measurement, then a table; needs a CUDA device.

    python benchmarks/bench_lif.py [--no-compile] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from bench_common import Emitter
from bench_common import timeit as mean_seconds

from bidl.neurons import Lif, StatefulCell

#: the anchor's method; more iterations for the short LIF calls
timeit = partial(mean_seconds, iters=50, warm=5)


def copy_bandwidth(numel: int) -> float:
    """Device-to-device copy rate in bytes/s, counting bytes read plus bytes written."""
    src = torch.randn(numel, device="cuda")
    dst = torch.empty_like(src)
    seconds = timeit(lambda: dst.copy_(src), iters=30)
    return 2 * numel * 4 / seconds


def reference_loop(cell: Lif, x_seq: torch.Tensor) -> torch.Tensor:
    """The reference: ``Lif.step`` looped over time (what runs without the kernel)."""
    cell.reset()
    return StatefulCell.multi_step(cell, x_seq)


def fused(cell: Lif, x_seq: torch.Tensor) -> torch.Tensor:
    cell.reset()
    return cell.multi_step(x_seq)


def sweep(x, grad, record, fresh_bytes, forward_bytes) -> None:
    """Time the fused kernels at several block sizes and warp counts."""
    from bidl.neurons.kernels import lif_triton

    default = lif_triton.BLOCK, lif_triton.NUM_WARPS
    cell = Lif().cuda()

    def train():
        x.grad = None
        fused(cell, x).backward(grad)

    @torch.no_grad()
    def forward():
        fused(cell, x)

    for block, warps in [(1024, 4), (512, 4), (512, 2), (256, 2), (256, 1), (2048, 8)]:
        lif_triton.BLOCK, lif_triton.NUM_WARPS = block, warps
        tag = f"_block{block}_warps{warps}"
        record("sweep_train_no_grad_accumulation" + tag, timeit(train), bytes_moved=fresh_bytes)
        record("sweep_forward_only" + tag, timeit(forward), bytes_moved=forward_bytes)
    lif_triton.BLOCK, lif_triton.NUM_WARPS = default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--shape", type=int, nargs="+", default=[32, 128, 32, 32])
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile of the loop")
    parser.add_argument("--json", default=None, help="also append the JSON lines to this file")
    parser.add_argument("--sweep", action="store_true", help="time kernel block sizes first")
    args = parser.parse_args()

    emit = Emitter(args.json)
    rows = emit.rows

    torch.manual_seed(0)
    x = (torch.randn(args.steps, *args.shape, device="cuda") * 0.6).requires_grad_()
    grad = torch.randn_like(x)
    numel = x.numel()
    min_bytes = 6 * numel * 4  # read x, write s, write h, read h, read g, write gx
    bandwidth = copy_bandwidth(numel)
    emit(device=torch.cuda.get_device_name(), torch=torch.__version__, elems=numel,
         copy_GBps=bandwidth / 1e9)  # fmt: skip

    def record(impl, seconds, bytes_moved=min_bytes, **extra):
        emit(bench="lif_micro", impl=impl, ms=seconds * 1e3,
             GBps_equiv=bytes_moved / seconds / 1e9,
             bw_fraction=bytes_moved / seconds / bandwidth, **extra)  # fmt: skip

    # correctness on this very input, against the reference loop
    for name in ("rectangle", "sigmoid", "atan"):
        cell = Lif(spike_func=name).cuda()
        ref_x, fus_x = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
        ref_out, fus_out = reference_loop(cell, ref_x), fused(cell, fus_x)
        ref_out.backward(grad)
        fus_out.backward(grad)
        rel = ((fus_x.grad - ref_x.grad).norm() / ref_x.grad.norm()).item()
        emit(check=name, spikes_identical=bool(torch.equal(ref_out, fus_out)), grad_rel_err=rel)
        del ref_x, fus_x, ref_out, fus_out

    if args.sweep:
        sweep(x, grad, record, fresh_bytes=min_bytes, forward_bytes=2 * numel * 4)

    for name in ("rectangle", "sigmoid", "atan"):
        cell = Lif(spike_func=name).cuda()

        def train_fused(cell=cell):
            fused(cell, x).backward(grad)

        record("bidl_fused_triton_" + name, timeit(train_fused))

    # The anchor's harness lets x.grad accumulate (one more read-read-write pass over x per
    # call). Inside a network the input gradient is never accumulated: time that too.
    fresh_bytes = min_bytes
    for name in ("rectangle", "atan"):
        cell = Lif(spike_func=name).cuda()

        def train_fused_fresh(cell=cell):
            x.grad = None
            fused(cell, x).backward(grad)

        record("bidl_fused_triton_" + name + "_no_grad_accumulation",
               timeit(train_fused_fresh), bytes_moved=fresh_bytes)  # fmt: skip

    cell = Lif().cuda()

    @torch.no_grad()
    def infer_fused():
        fused(cell, x)

    record("bidl_fused_triton_forward_only", timeit(infer_fused), bytes_moved=2 * numel * 4)

    def train_reference():
        reference_loop(cell, x).backward(grad)

    record("bidl_reference_loop_eager", timeit(train_reference, iters=20))

    if not args.no_compile:
        compiled = torch.compile(reference_loop)

        def train_compiled():
            compiled(cell, x).backward(grad)

        try:
            record("bidl_reference_loop_torch_compile", timeit(train_compiled, iters=20))
        except Exception as err:  # a compile failure must not hide the other figures
            emit(bench="lif_micro", impl="bidl_reference_loop_torch_compile", error=repr(err)[:300])

    try:
        from spikingjelly.activation_based import neuron, surrogate

        for name in ("Sigmoid", "ATan"):
            node = neuron.LIFNode(
                tau=2.0, step_mode="m", surrogate_function=getattr(surrogate, name)()
            ).cuda()

            def train_sj(node=node):
                node.reset()
                node(x).backward(grad)

            record("spikingjelly2_LIFNode_m_" + name, timeit(train_sj),
                   backend=str(getattr(node, "backend", "?")))  # fmt: skip

            def train_sj_fresh(node=node):
                x.grad = None
                node.reset()
                node(x).backward(grad)

            record("spikingjelly2_LIFNode_m_" + name + "_no_grad_accumulation",
                   timeit(train_sj_fresh))  # fmt: skip
    except ImportError as err:
        emit(bench="lif_micro", impl="spikingjelly2", error=f"not installed: {err}")

    print(f"\n{'impl':45s} {'ms':>8s} {'GB/s':>8s} {'of copy BW':>10s}")
    for row in rows:
        if "ms" in row:
            print(
                f"{row['impl']:45s} {row['ms']:8.3f} {row['GBps_equiv']:8.0f} "
                f"{row['bw_fraction']:10.0%}"
            )


if __name__ == "__main__":
    main()
