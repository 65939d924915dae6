"""The spiking layers compute BIDL's own numbers: every layer case that BIDL's code
produced (tests/data/bidl_reference/layers; its README says how), built with BIDL's
keywords, loaded from BIDL's ``state_dict``, in eval and train mode (batch norm batch and
running statistics included), step by step (EIM) and over the whole sequence (IIM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bidl.layers import (
    Conv2dLif,
    Conv2dLifPlus,
    FcLif,
    FcLifPlus,
    bidl_layer_key_map,
    convert_bidl_layer_state,
    load_bidl_layer_state,
    rename_keys,
)
from bidl.neurons import reset_states, set_step_mode

DATA = Path(__file__).parent / "data" / "bidl_reference" / "layers"
CASES = json.loads((DATA / "cases.json").read_text())["cases"]
CLASSES = {
    "layers.lif.Conv2dLif": Conv2dLif,
    "layers.lif.FcLif": FcLif,
    "layers.lifplus.Conv2dLifPlus": Conv2dLifPlus,
    "layers.lifplus.FcLifPlus": FcLifPlus,
}
ATOL = 1e-5


def build_layer(case: dict) -> nn.Module:
    """The bidl layer of a case from BIDL's own constructor keywords, under its seed."""
    args = dict(case["constructor"])
    positional = [args.pop("input_channel"), args.pop("hidden_channel")]
    if "kernel_size" in args:
        positional.append(args.pop("kernel_size"))
    torch.manual_seed(case["seed"])
    return CLASSES[case["bidl_class"]](*positional, **args)


def bidl_module(layer: nn.Module, name: str) -> nn.Module:
    """The bidl module at BIDL's module path ``name`` (e.g. 'lif.norm')."""
    (path,) = rename_keys({f"{name}.": None}, bidl_layer_key_map(layer))
    return layer.get_submodule(path[:-1])


def watch_batch_norms(layer: nn.Module, case: dict) -> dict[str, dict[str, list]]:
    """Per BIDL batch norm: the batch mean and biased variance it normalized with, and its
    running statistics after each call, recorded by a forward hook."""
    seen = {}
    for name in case["batchnorm"]:
        record = seen[name] = {
            "batch_mean": [],
            "batch_var": [],
            "running_mean": [],
            "running_var": [],
        }

        def hook(norm, args, _out, record=record):
            x = args[0]
            dims = [0] + list(range(2, x.dim()))
            record["batch_mean"].append(x.mean(dims))
            record["batch_var"].append(x.var(dims, unbiased=False))
            record["running_mean"].append(norm.running_mean.clone())
            record["running_var"].append(norm.running_var.clone())

        bidl_module(layer, name).register_forward_hook(hook)
    return seen


def run(layer: nn.Module, x: torch.Tensor, step_mode: str, states: list[str]) -> dict:
    """Outputs, states after each step (EIM; the last one in IIM) and initial states."""
    cell = layer.neuron
    first_input = []
    handle = cell.register_forward_pre_hook(lambda _c, args: first_input.append(args[0]))
    reset_states(layer)
    set_step_mode(layer, step_mode)
    with torch.no_grad():
        if step_mode == "s":
            outs, steps = [], []
            for x_t in x:
                outs.append(layer(x_t))
                steps.append(cell.state)
            got = {"out": torch.stack(outs)}
            got.update({s: torch.stack([step[s] for step in steps]) for s in states})
        else:
            got = {"out": layer(x)}
            got.update({s: cell.state[s] for s in states})  # the last step's
    handle.remove()
    initial = cell.init_state(first_input[0][0] if step_mode == "m" else first_input[0])
    got.update({f"init_{s}": initial[s] for s in states})
    return got


def compare(got: torch.Tensor, want: np.ndarray, exact: bool, what: str) -> None:
    want = torch.from_numpy(want)
    if exact:
        assert torch.equal(got, want), f"{what}: {int((got != want).sum())} values differ"
    else:
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL, msg=what)


@pytest.mark.parametrize("step_mode", ["s", "m"], ids=["EIM", "IIM"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layer_computes_bidls_outputs_states_and_batch_statistics(case, step_mode):
    arrays = np.load(DATA / case["arrays"])
    bidl_state = torch.load(DATA / case["state_dict"], weights_only=True)
    assert list(bidl_state) == case["state_dict_keys"]
    layer = build_layer(case)
    # the same seed gives BIDL's weights and its random LIF+ soma draws
    fresh = layer.state_dict()
    for key, value in convert_bidl_layer_state(layer, bidl_state).items():
        if ".norm." not in f".{key}":
            assert torch.equal(fresh[key], value), key
    load_bidl_layer_state(layer, bidl_state)
    x = torch.from_numpy(arrays["x"])
    states = case["states"]
    spikes = case["constructor"]["mode"] == "spike"
    last = slice(None) if step_mode == "s" else -1

    got = run(layer.eval(), x, step_mode, states)
    compare(got["out"], arrays["eval_out"], spikes, "eval out")
    for name in states:
        compare(got[name], arrays[f"eval_{name}"][last], False, f"eval {name}")
        compare(got[f"init_{name}"], arrays[f"eval_init_{name}"], True, f"eval init {name}")

    load_bidl_layer_state(layer, bidl_state)
    norms = watch_batch_norms(layer, case)
    got = run(layer.train(), x, step_mode, states)
    compare(got["out"], arrays["train_out"], spikes, "train out")
    for name in states:
        compare(got[name], arrays[f"train_{name}"][last], False, f"train {name}")
        compare(got[f"init_{name}"], arrays[f"train_init_{name}"], True, f"train init {name}")
    for module, record in norms.items():
        for stat, values in record.items():
            key = f"train_bn[{module}].{stat}"
            compare(torch.stack(values), arrays[key], False, key)


def test_the_key_map_names_bidls_parts():
    assert bidl_layer_key_map(Conv2dLif(2, 4, 3), "clif1.", "body.0.") == {
        "clif1.p0.": "body.0.conv.",
        "clif1.norm.": "body.0.norm.",
        "clif1.lif.": "body.0.neuron.",
        "clif1.lifplus.": "body.0.neuron.",
    }
    assert bidl_layer_key_map(FcLifPlus(2, 4))["p0."] == "fc."


def test_the_cases_are_all_here_and_not_trivial():
    assert len(CASES) == 28
    assert all(case["nonzero_out_eval"] > 0 for case in CASES)
