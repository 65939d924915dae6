"""``Lif`` and ``LifPlus`` compute BIDL's own numbers: every neuron case that BIDL's code
produced (tests/data/bidl_reference/neurons; its README says how), its soma parameters
(random draws included), initial states, outputs and states after each step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bidl.neurons import Lif, LifPlus
from bidl.neurons.lif_plus import SOMA_DEFAULTS

DATA = Path(__file__).parent / "data" / "bidl_reference" / "neurons"
CASES = json.loads((DATA / "cases.json").read_text())["cases"]
ATOL = 1e-5


def build_cell(case: dict):
    """The bidl cell of a case, constructed under the case's seed as BIDL's was."""
    args = case["constructor"]
    soma = args["soma_params"]
    options = dict(
        mode=args["mode"],
        memb_mode=tuple(args["memb_mode"]),
        noise=args["noise"],
        learn=soma["learn"],
    )
    if soma["shape"]:
        options.update(soma_params="channel_share", input_channels=soma["shape"][1])
    torch.manual_seed(case["seed"])
    if case["bidl_class"] == "layers.lif.Lif":
        values = {key: soma[key] for key in ("alpha", "beta", "theta", "v_0")}
        return Lif(**values, **options)
    # BIDL's LIF+ defaults are bidl's; unset ones are drawn at construction
    assert {key: soma[key] for key in SOMA_DEFAULTS} == SOMA_DEFAULTS
    return LifPlus(neuron_config=case["neuron_config"], **options)


def check_soma_parameters(cell, case: dict, arrays) -> None:
    """The parameters BIDL made (its draws included) are bidl's, or are written into it
    where BIDL's case wrote per-channel values after construction."""
    names = [name[len("param_") :] for name in arrays.files if name.startswith("param_")]
    assert sorted(cell.soma_names) == sorted(names)
    written = case["soma_values"].startswith("per-channel values written")
    for name in names:
        param = getattr(cell, name)
        want = torch.from_numpy(arrays[f"param_{name}"]).reshape(param.shape)
        if written:
            with torch.no_grad():
                param.copy_(want)
        else:
            assert torch.equal(param, want), name


def assert_output(got: torch.Tensor, want: np.ndarray, spikes: bool, what: str) -> None:
    want = torch.from_numpy(want)
    if spikes:
        assert torch.equal(got, want), f"{what}: {int((got != want).sum())} spikes differ"
    else:
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL, msg=what)


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("case", CASES, ids=[c["file"][: -len(".npz")] for c in CASES])
def test_cell_computes_bidls_outputs_and_states(case, step_mode):
    arrays = np.load(DATA / case["file"])
    cell = build_cell(case).eval()
    check_soma_parameters(cell, case, arrays)
    x = torch.from_numpy(arrays["x"])
    assert sorted(cell.state_names) == sorted(case["states"])
    initial = cell.init_state(x[0])
    for name in case.get("initial_states", []):
        assert torch.equal(initial[name[len("init_") :]], torch.from_numpy(arrays[name])), name

    spikes = case["constructor"]["mode"] == "spike"
    with torch.no_grad():
        if step_mode == "s":
            outs, states = [], []
            for x_t in x:
                outs.append(cell(x_t))
                states.append(cell.state)
            out = torch.stack(outs)
        else:
            cell.step_mode = "m"
            out, states = cell(x), None
    assert_output(out, arrays["out"], spikes, "out")
    for name in case["states"]:
        if states is None:  # the whole sequence leaves the last step's states
            assert_output(cell.state[name], arrays[name][-1], False, name)
        else:
            got = torch.stack([state[name] for state in states])
            assert_output(got, arrays[name], False, name)


def test_the_cases_are_all_here_and_not_trivial():
    assert len(CASES) == 45
    spiking = [c for c in CASES if c["constructor"]["mode"] == "spike"]
    assert all(c["spike_count"] > 0 for c in spiking)
