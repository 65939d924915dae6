"""Export sequential conv / linear / LIF networks as a NIR graph (the neuromorphic
intermediate representation read by SpikingJelly, snnTorch, Norse, Sinabs and Lava).

NIR neurons are ODEs; BIDL's LIF is a discrete map. They agree exactly when a NIR
consumer integrates with forward Euler at the graph's time step ``dt`` (``v <- v + dt /
tau (v_leak - v + r I)``, fire when ``v > v_threshold``, then ``v <- v_reset``), which is
what the mapping assumes (see ``lif_node``). A batch norm on the input current (the
``norm='current'`` layout) folds into the convolution or linear layer before it. What NIR
cannot express is refused in one error that names each layer and the layout to train.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import fileio
from ..layers import Conv2dLif, FcLif, SpikingLayer
from ..neurons.base import StatefulCell
from ..neurons.lif import Lif
from ..neurons.surrogate import SurrogateSpike
from ..registry import BidlError
from .optional import require
from .step_graph import split_classifier

_SKIPPED = (nn.Identity, nn.Dropout)
_BATCH_NORM = nn.modules.batchnorm._BatchNorm
_COVERS = (
    "NIR export covers Conv2d and Linear (each with a batch norm on its output folded in), "
    "Flatten, AvgPool2d, MaxPool2d after spikes, and spiking Lif cells (Conv2dLif, FcLif, "
    "Lif1d, Lif2d) with leak factors below 1"
)


class NirExportError(BidlError):
    """A layer of the network has no exact NIR equivalent."""


def _layers(module: nn.Module, prefix: str):
    """(qualified name, module) of each elementary operation, in execution order."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _layers(child, f"{prefix}.{name}")
    elif isinstance(module, (Conv2dLif, FcLif)):
        linear = ("conv", module.conv) if isinstance(module, Conv2dLif) else ("fc", module.fc)
        yield f"{prefix}.{linear[0]}", linear[1]
        pool = getattr(module, "pool", None)
        pool_after = getattr(module, "pool_position", "after") == "after"
        if pool is not None and not pool_after:
            yield f"{prefix}.pool", pool
        if getattr(module, "norm", None) is not None:  # the norm='current' layout
            yield f"{prefix}.norm", module.norm
        yield f"{prefix}.neuron", module.neuron
        if pool is not None and pool_after:
            yield f"{prefix}.pool", pool
    elif not isinstance(module, _SKIPPED):
        yield prefix, module


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _refuse(name: str, module: nn.Module, why: str) -> NirExportError:
    return NirExportError(f"{name} ({type(module).__name__}): {why}")


def _norm_affine(name: str, norm: nn.Module, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(g, c)`` of an eval-mode batch norm ``n(x) = g x + c``, per channel."""
    if norm.training or norm.running_mean is None:
        raise _refuse(name, norm, "a batch norm must be in eval mode with running statistics")
    std = np.sqrt(_numpy(norm.running_var) + norm.eps)
    weight = _numpy(norm.weight) if norm.affine else np.ones(channels)
    bias = _numpy(norm.bias) if norm.affine else np.zeros(channels)
    gain = weight / std
    return gain, bias - gain * _numpy(norm.running_mean)


def _fold_norm(layer: nn.Module, norm: nn.Module) -> nn.Module:
    """A copy of ``layer`` (Conv2d or Linear) computing ``norm(layer(x))``: exact, since an
    eval-mode batch norm is a per-channel affine map."""
    channels = layer.weight.shape[0]
    gain, shift = _norm_affine("", norm, channels)
    folded = copy.deepcopy(layer)
    weight = _numpy(layer.weight) * gain.reshape(-1, *[1] * (layer.weight.dim() - 1))
    bias = _numpy(layer.bias) if layer.bias is not None else np.zeros(channels)
    folded.weight = nn.Parameter(torch.from_numpy(weight).to(layer.weight.dtype))
    folded.bias = nn.Parameter(torch.from_numpy(gain * bias + shift).to(layer.weight.dtype))
    return folded


def _fold_norms(operations: list) -> list:
    """Fold each eval-mode batch norm that directly follows a Conv2d or Linear into it."""
    folded: list = []
    for name, module in operations:
        previous = folded[-1][1] if folded else None
        if (
            isinstance(module, _BATCH_NORM)
            and isinstance(previous, (nn.Conv2d, nn.Linear))
            and not module.training
            and module.running_mean is not None
            and module.num_features == previous.weight.shape[0]
        ):
            folded[-1] = (folded[-1][0], _fold_norm(previous, module))
        else:
            folded.append((name, module))
    return folded


def lif_node(name: str, cell: Lif, shape: tuple[int, ...], dt: float = 1.0):
    """The NIR LIF equal to BIDL's ``Lif`` (with its eval-mode membrane batch norm folded in)
    under forward Euler at time step ``dt``.

    With the norm ``n(v) = g v + c`` (``g = 1, c = 0`` without one), BIDL's normalised
    membrane ``u_t = g (x_t + v_{t-1}) + c`` follows ``u_t = g alpha reset(u_{t-1}) + g x_t
    + c``, a LIF with leak factor ``a = g alpha``: ``tau = dt / (1 - a)``, ``r = g / (1 -
    a)``, ``v_leak = c / (1 - a)``, ``v_threshold = theta``, ``v_reset = v_0``. Both
    start from 0, which needs ``beta = 0``; ``0 <= a`` is not required, ``a < 1`` is.
    """
    nir = require("nir", "NIR export")
    if type(cell).step is not Lif.step:
        raise _refuse(name, cell, "its step differs from Lif's; train with neuron='lif'")
    if cell.mode != "spike":
        raise _refuse(
            name, cell, "analog-mode outputs have no NIR node; train spiking cells (mode='spike')"
        )
    if not isinstance(cell.spike_fn, SurrogateSpike):
        raise _refuse(
            name,
            cell,
            "a custom spike function may not be a Heaviside step; train with a registered "
            "surrogate (spike_func=None, 'rectangle', 'sigmoid', 'atan', 'triangle')",
        )
    channels = shape[0]

    def per_channel(value: torch.Tensor) -> np.ndarray:
        return np.broadcast_to(_numpy(value).reshape(-1), (channels,)).copy()

    alpha, beta = per_channel(cell.alpha), per_channel(cell.beta)
    theta, v_0 = per_channel(cell.theta), per_channel(cell.v_0)
    if np.any(beta != 0):
        raise _refuse(
            name,
            cell,
            "beta != 0 shifts the first step (NIR neurons start at 0); train with beta=0",
        )
    gain, shift = np.ones(channels), np.zeros(channels)
    norm = cell.norm
    if isinstance(norm, _BATCH_NORM):
        gain, shift = _norm_affine(name, norm, channels)
    elif norm is not None:
        raise _refuse(
            name,
            cell,
            f"its membrane norm {type(norm).__name__} has no NIR form; train with batch norm "
            f"on the input current (norm='current')",
        )
    leak = gain * alpha
    if np.any(leak >= 1):
        raise _refuse(
            name,
            cell,
            f"its leak factor (alpha times the membrane batch norm's gain) reaches "
            f"{leak.max():.3g} >= 1 in {int(np.sum(leak >= 1))} of {channels} channels, which "
            f"no NIR time constant gives; train with batch norm on the input current "
            f"(norm='current'), which folds into the weights exactly",
        )
    scale = 1.0 / (1.0 - leak)

    def full(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values.reshape(-1, *[1] * (len(shape) - 1)), shape).copy()

    return nir.LIF(
        tau=full(dt * scale),
        r=full(gain * scale),
        v_leak=full(shift * scale),
        v_threshold=full(theta),
        v_reset=full(v_0),
    )


def _pool_params(name: str, pool: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    kernel = np.array(nn.modules.utils._pair(pool.kernel_size))
    stride = np.array(nn.modules.utils._pair(pool.stride or pool.kernel_size))
    padding = np.array(nn.modules.utils._pair(pool.padding))
    dilation = np.array(nn.modules.utils._pair(getattr(pool, "dilation", 1)))
    if pool.ceil_mode or padding.any() or np.any(dilation != 1):
        raise _refuse(name, pool, "only pooling without padding, dilation or ceil_mode maps")
    return kernel, stride


def _nodes(
    name: str, module: nn.Module, shape: tuple[int, ...], after_spikes: bool, dt: float
) -> list:
    """The NIR node(s) of one operation whose input has ``shape`` (no batch dim)."""
    nir = require("nir", "NIR export")
    if isinstance(module, StatefulCell):
        if not isinstance(module, Lif):
            raise _refuse(
                name, module, "only Lif cells map onto NIR's LIF; train with neuron='lif'"
            )
        return [(name, lif_node(name, module, shape, dt))]
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise _refuse(name, module, f"padding_mode {module.padding_mode!r} has no NIR form")
        bias = module.bias if module.bias is not None else torch.zeros(module.out_channels)
        node = nir.Conv2d(
            input_shape=tuple(shape[1:]),
            weight=_numpy(module.weight),
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=_numpy(bias),
        )
        return [(name, node)]
    if isinstance(module, nn.Linear):
        if module.bias is None:
            return [(name, nir.Linear(weight=_numpy(module.weight)))]
        return [(name, nir.Affine(weight=_numpy(module.weight), bias=_numpy(module.bias)))]
    if isinstance(module, nn.Flatten):
        # NIR shapes leave out the batch dim
        start = module.start_dim - 1 if module.start_dim > 0 else module.start_dim
        end = module.end_dim - 1 if module.end_dim > 0 else module.end_dim
        node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
        return [(name, node)]
    if isinstance(module, nn.AvgPool2d):
        kernel, stride = _pool_params(name, module)
        return [(name, nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=np.zeros(2)))]
    if isinstance(module, nn.MaxPool2d):
        if not after_spikes:
            raise _refuse(
                name,
                module,
                "max pooling maps only on spikes (0 or 1), not on currents; pool the cell's "
                "output (Conv2dLif pool_position='after', not BIDL's mp=True)",
            )
        kernel, stride = _pool_params(name, module)
        out_hw = (np.array(shape[1:]) - kernel) // stride + 1
        # on spikes, max over a window = (sum over the window > 0.5)
        return [
            (name, nir.SumPool2d(kernel_size=kernel, stride=stride, padding=np.zeros(2))),
            (f"{name}.any", nir.Threshold(threshold=np.full((shape[0], *out_hw), 0.5))),
        ]
    if isinstance(module, nn.ReLU):
        relu = getattr(nir, "ReLU", None)  # not a NIR node as of nir 1.0.8
        if relu is None:
            raise _refuse(
                name,
                module,
                f"NIR {nir.__version__} has no ReLU node; train a readout of Linear layers "
                f"alone or of spiking FcLif layers",
            )
        # typed like the tensors around it, where the node takes types
        params = inspect.signature(relu).parameters
        types = {
            "input_type": {"input": np.array(shape)},
            "output_type": {"output": np.array(shape)},
        }
        return [(name, relu(**{k: v for k, v in types.items() if k in params}))]
    if isinstance(module, _BATCH_NORM):
        _norm_affine(name, module, module.num_features)  # refuses a training-mode norm
        raise _refuse(
            name,
            module,
            "a batch norm that does not directly follow a Conv2d or Linear has no NIR form; "
            "normalise where it folds: on the input current (norm='current') or in the data "
            "pipeline",
        )
    if isinstance(module, SpikingLayer):
        raise _refuse(
            name,
            module,
            "a composite block (residual or branching) is not a chain of layers, which is "
            "what NIR export writes; train a sequential backbone (the SeqClif families)",
        )
    raise _refuse(name, module, "NIR has no node for it")


def to_nir(model: nn.Module, dt: float = 1.0):
    """The NIR graph of one timestep of ``model`` (a backbone or a classifier around one),
    exact under forward Euler at time step ``dt`` (an importer's own time step: 1e-4 for
    snnTorch's ``import_from_nir``; see docs/deployment.md).

    The graph maps the input ``[C, H, W]`` (or ``[features]``) of one step to the head's
    output; aggregating over time (``metadata['aggregation']``) is left to the consumer.
    Every layer without an exact NIR form is named in one ``NirExportError``.
    """
    nir = require("nir", "NIR export")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise BidlError(f"NIR export: dt must be a positive number (a time step), got {dt!r}")
    backbone, neck = split_classifier(model)
    refusal = backbone.nir_refusal() if hasattr(backbone, "nir_refusal") else None
    if refusal:  # e.g. a spiking transformer's attention: one clear reason, not every block
        raise NirExportError(f"{type(backbone).__name__} has no NIR form: {refusal}.")
    problems = []
    if neck is not None:
        problems.append(
            f"neck ({type(neck).__name__}): the neck runs on the aggregate, outside the step "
            f"graph; train without a neck"
        )
    stem = getattr(backbone, "stem", None)
    parts = [(stem, "stem")] if stem is not None else []
    parts += [(backbone.body, "body"), (backbone.head, "head")]
    operations = _fold_norms([op for part, prefix in parts for op in _layers(part, prefix)])
    shape = tuple(backbone.input_shape)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, previous, after_spikes = [], "input", False
    x = torch.zeros(1, *shape, dtype=next(backbone.parameters()).dtype)
    with torch.no_grad():
        for name, module in operations:
            try:
                for node_name, node in _nodes(name, module, tuple(x.shape[1:]), after_spikes, dt):
                    nodes[node_name] = node
                    edges.append((previous, node_name))
                    previous = node_name
            except NirExportError as err:
                problems.append(str(err))
            try:
                if isinstance(module, StatefulCell):
                    x, _ = module.step(x, module.init_state(x))
                else:
                    x = module(x)
            except Exception as err:  # a part that is not one step of a sequence
                problems.append(f"{name} ({type(module).__name__}): not run as one step ({err})")
                break
            # binary outputs: a spiking Lif's, and a max pool's over them
            spiking_lif = isinstance(module, Lif) and module.mode == "spike"
            after_spikes = spiking_lif or (isinstance(module, nn.MaxPool2d) and after_spikes)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise NirExportError(
            f"{type(backbone).__name__} has {len(problems)} part(s) without an exact NIR "
            f"form:\n{lines}\n{_COVERS}."
        )
    nodes["output"] = nir.Output(output_type={"output": np.array(tuple(x.shape[1:]))})
    edges.append((previous, "output"))
    metadata = {
        "source": "bidl",
        "aggregation": str(getattr(backbone.aggregate, "mode", "custom")),
        "timesteps": int(backbone.timestep),
        "dt": float(dt),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(model: nn.Module, path: str | os.PathLike, dt: float = 1.0) -> Path:
    """Write ``to_nir(model, dt)`` (of the model in eval mode) to ``path`` (an HDF5 ``.nir``
    file), atomically."""
    nir = require("nir", "NIR export")
    graph = to_nir(model.eval(), dt)
    path = Path(path)
    with fileio.staged_file(path, hint="Free disk space or pick another --out.") as tmp:
        nir.write(str(tmp), graph)
    return path
