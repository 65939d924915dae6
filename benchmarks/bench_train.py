"""``SeqClif5Fc2Cd`` train step and inference: BIDL-style loop, bidl's paths and
SpikingJelly 2.0 side by side, in one process, on the same inputs.

Workload of the anchor benchmark (``shared/anchors/bench_anchor.py``, ``net_bench``):
B=64, T=10, 2x128x128 spike frames, 10 classes, SGD(lr=0.01, momentum=0.9), float32.
Two layouts of the same five conv layers (32/64/128/256/512, first 5x5 stride 2, 2x2 max-pools,
512 -> 10 readout each step, mean over time):

- BIDL's: batch norm on the membrane inside the recurrence (``Conv2dLif(norm=True)``);
- SpikingJelly's: batch norm on the conv output over all T*B frames, then a plain LIF
  (which bidl runs with its fused kernel).

Prints one JSON line per measurement, then a table; needs a CUDA device.

    python benchmarks/bench_train.py [--only NAME ...] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from bench_common import Emitter
from bench_common import timeit as mean_seconds
from torch import nn

from bidl.models.backbones.seq_clif_cd import SeqClif5Fc2Cd
from bidl.neurons import Lif, fold_time, reset_states

PLAN = [(2, 32, 5, 2, 2), (32, 64, 3, 1, 1), (64, 128, 3, 1, 1)]
PLAN += [(128, 256, 3, 1, 1), (256, 512, 3, 1, 1)]


#: the anchor's timing method
timeit = partial(mean_seconds, iters=10, warm=3)


class ConvBnLif(nn.Module):
    """Multi-step conv -> batch norm over all T*B frames -> LIF (no norm) -> max-pool."""

    def __init__(self, cin, cout, kernel, stride, padding):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.norm = nn.BatchNorm2d(cout)
        self.neuron = Lif()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x_seq):
        current = fold_time(self.norm, fold_time(self.conv, x_seq))
        return fold_time(self.pool, self.neuron.multi_step(current))


class Clif5Fc2ConvBn(nn.Module):
    """SpikingJelly's layout written with bidl's ``Lif``; input ``[B, T, C, H, W]``."""

    def __init__(self, nclass=10):
        super().__init__()
        self.body = nn.Sequential(*[ConvBnLif(*spec) for spec in PLAN])
        self.head = nn.Sequential(nn.Linear(2 * 2 * 512, 512), nn.ReLU(), nn.Linear(512, nclass))

    def forward(self, xs):
        reset_states(self)
        spikes = self.body(xs.transpose(0, 1))
        return self.head(spikes.flatten(2)).mean(0)


def build_spikingjelly(nclass=10):
    """The anchor's SpikingJelly 2.0 network, rebuilt with its public layers."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    modules = []
    for cin, cout, kernel, stride, padding in PLAN:
        modules += [
            layer.Conv2d(cin, cout, kernel, stride, padding),
            layer.BatchNorm2d(cout),
            neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()),
            layer.MaxPool2d(2, 2),
        ]
    body = nn.Sequential(*modules)
    functional.set_step_mode(body, "m")
    head = nn.Sequential(nn.Linear(2 * 2 * 512, 512), nn.ReLU(), nn.Linear(512, nclass))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = body, head

        def forward(self, xs):
            functional.reset_net(self.body)
            spikes = self.body(xs.transpose(0, 1).contiguous())
            return self.head(spikes.flatten(2)).mean(0)

    return Net()


def variants():
    """name -> (builder, options). Options: channels_last; compile (torch.compile keywords);
    graph (inference replayed from a captured CUDA graph)."""
    bnstate_eim = lambda: SeqClif5Fc2Cd(use_inner_loop=False)  # noqa: E731
    bnstate_iim = lambda: SeqClif5Fc2Cd(use_inner_loop=True)  # noqa: E731
    last = {"channels_last": True}
    return {
        "bidl_bnstate_eim_eager": (bnstate_eim, {}),
        "bidl_bnstate_iim_eager": (bnstate_iim, {}),
        "bidl_bnstate_iim_eager_channels_last": (bnstate_iim, last),
        "bidl_convbn_fused_eager": (Clif5Fc2ConvBn, {}),
        "bidl_convbn_fused_eager_channels_last": (Clif5Fc2ConvBn, last),
        "bidl_convbn_fused_channels_last_cudagraph": (Clif5Fc2ConvBn, {**last, "graph": True}),
        "spikingjelly2_multistep": (build_spikingjelly, {}),
        "spikingjelly2_multistep_channels_last": (build_spikingjelly, last),
        "bidl_bnstate_iim_compiled_channels_last": (bnstate_iim, {**last, "compile": {}}),
        "bidl_bnstate_eim_compiled_channels_last": (bnstate_eim, {**last, "compile": {}}),
        "bidl_bnstate_iim_compiled": (bnstate_iim, {"compile": {}}),
    }


def graph_replay(net: nn.Module, inputs: torch.Tensor):
    """Capture one inference call of ``net`` in a CUDA graph; return a function replaying it."""
    static_input = inputs.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(3):  # warm-up: cuDNN autotuning and Triton compiles stay outside
            net(static_input)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        static_output = net(static_input)

    def replay(_inputs=None):
        static_input.copy_(inputs)
        graph.replay()
        return static_output

    return replay


def profile(fn, name: str, steps: int = 3) -> None:
    """Print the CUDA kernels that take the time of ``fn`` (a few calls, after warm-up)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=18, max_name_column_width=60
    )
    print(f"profile of {name}, {steps} calls:\n{table}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    parser.add_argument("--json", default=None, help="also append the JSON lines to this file")
    parser.add_argument("--profile", nargs="*", default=[], help="variants to profile (kernels)")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch._dynamo.config.recompile_limit = 64  # five layer shapes, train and eval
    emit = Emitter(args.json)
    rows = emit.rows

    emit(device=torch.cuda.get_device_name(), torch=torch.__version__)
    torch.manual_seed(0)
    xs = (torch.rand(args.batch, args.steps, 2, 128, 128, device="cuda") < 0.1).float()
    labels = torch.randint(0, 10, (args.batch,), device="cuda")
    loss_fn = nn.CrossEntropyLoss()

    for name, (build, options) in variants().items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        try:
            torch.manual_seed(0)
            net = build().cuda()
            if options.get("channels_last"):
                net = net.to(memory_format=torch.channels_last)
            runner = net
            if "compile" in options:
                runner = torch.compile(net, **options["compile"])
            optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

            def train_step(runner=runner, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(runner(xs), labels)
                loss.backward()
                optimizer.step()

            seconds = timeit(train_step)
            if name in args.profile:
                profile(train_step, name)
            emit(bench="clif5fc2_train_step", impl=name, B=args.batch, T=args.steps,
                 ms=seconds * 1e3, samples_per_s=args.batch / seconds)  # fmt: skip
            net.eval()
            if options.get("graph"):
                runner = graph_replay(net, xs)

            @torch.no_grad()
            def infer(runner=runner):
                runner(xs)

            seconds = timeit(infer)
            emit(bench="clif5fc2_infer", impl=name, B=args.batch, T=args.steps,
                 ms=seconds * 1e3, samples_per_s=args.batch / seconds,
                 wall_s=time.perf_counter() - started)  # fmt: skip
        except Exception as err:  # one failing variant must not hide the others
            emit(bench="clif5fc2", impl=name, error=repr(err)[:400])
        finally:
            torch._dynamo.reset()  # each compiled variant starts from a clean cache
            torch.cuda.empty_cache()

    print(f"\n{'bench':22s} {'impl':42s} {'ms':>8s}")
    for row in rows:
        if "ms" in row:
            print(f"{row['bench']:22s} {row['impl']:42s} {row['ms']:8.2f}")


if __name__ == "__main__":
    main()
