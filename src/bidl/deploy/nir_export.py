"""Export sequential conv / linear / LIF networks as a NIR graph (the neuromorphic
intermediate representation read by SpikingJelly, snnTorch, Norse, Sinabs and Lava).

NIR neurons are ODEs; BIDL's LIF is a discrete map. They agree exactly when a NIR
consumer integrates with forward Euler at dt = 1 (``v <- v + (v_leak - v) / tau + r I /
tau``, fire when ``v > v_threshold``, then ``v <- v_reset``), which is what the mapping
assumes (see ``lif_node``). What NIR cannot express is refused with the layer's name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import fileio
from ..layers import Conv2dLif, FcLif
from ..neurons.base import StatefulCell
from ..neurons.lif import Lif
from ..neurons.surrogate import SurrogateSpike
from ..registry import BidlError
from .optional import require
from .step_graph import split_classifier

_SKIPPED = (nn.Identity, nn.Dropout)
_COVERS = (
    "NIR export covers Conv2d, Linear, Flatten, AvgPool2d, MaxPool2d after spikes, and "
    "spiking Lif cells (Conv2dLif, FcLif, Lif1d, Lif2d)"
)


class NirExportError(BidlError):
    """A layer of the network has no exact NIR equivalent."""


def _layers(module: nn.Module, prefix: str):
    """(qualified name, module) of each elementary operation, in execution order."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _layers(child, f"{prefix}.{name}")
    elif isinstance(module, Conv2dLif):
        yield f"{prefix}.conv", module.conv
        yield f"{prefix}.neuron", module.neuron
        if module.pool is not None:
            yield f"{prefix}.pool", module.pool
    elif isinstance(module, FcLif):
        yield f"{prefix}.fc", module.fc
        yield f"{prefix}.neuron", module.neuron
    elif not isinstance(module, _SKIPPED):
        yield prefix, module


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _refuse(name: str, module: nn.Module, why: str) -> NirExportError:
    return NirExportError(f"{name} ({type(module).__name__}): {why}. {_COVERS}.")


def lif_node(name: str, cell: Lif, shape: tuple[int, ...]):
    """The NIR LIF equal to BIDL's ``Lif`` (with its eval-mode batch norm folded in).

    With the norm ``n(v) = g v + c`` (``g = 1, c = 0`` without one), BIDL's normalised
    membrane ``u_t = g (x_t + v_{t-1}) + c`` follows ``u_t = g alpha reset(u_{t-1}) + g x_t
    + c``, a LIF with leak factor ``a = g alpha``: ``tau = 1 / (1 - a)``, ``r = g tau``,
    ``v_leak = c tau``, ``v_threshold = theta``, ``v_reset = v_0``. Both start from 0,
    which needs ``beta = 0``.
    """
    nir = require("nir", "NIR export")
    if type(cell).step is not Lif.step:
        raise _refuse(name, cell, "its step differs from Lif's; no NIR mapping is known")
    if cell.mode != "spike":
        raise _refuse(name, cell, "analog-mode outputs (mode='analog') have no NIR node")
    if not isinstance(cell.spike_fn, SurrogateSpike):
        raise _refuse(name, cell, "a custom spike function may not be a Heaviside step")
    channels = shape[0]

    def per_channel(value: torch.Tensor) -> np.ndarray:
        return np.broadcast_to(_numpy(value).reshape(-1), (channels,)).copy()

    alpha, beta = per_channel(cell.alpha), per_channel(cell.beta)
    theta, v_0 = per_channel(cell.theta), per_channel(cell.v_0)
    if np.any(beta != 0):
        raise _refuse(name, cell, "beta != 0 shifts the first step; NIR neurons start at 0")
    gain, shift = np.ones(channels), np.zeros(channels)
    norm = cell.norm
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        if norm.training or norm.running_mean is None:
            raise _refuse(name, cell, "its batch norm must be in eval mode with running stats")
        std = np.sqrt(_numpy(norm.running_var) + norm.eps)
        weight = _numpy(norm.weight) if norm.affine else np.ones(channels)
        bias = _numpy(norm.bias) if norm.affine else np.zeros(channels)
        gain = weight / std
        shift = bias - gain * _numpy(norm.running_mean)
    elif norm is not None:
        raise _refuse(name, cell, f"its membrane norm {type(norm).__name__} has no NIR form")
    leak = gain * alpha
    if np.any(leak >= 1):
        raise _refuse(
            name,
            cell,
            f"its leak factor (alpha times the batch norm's gain) reaches {leak.max():.3g} >= 1, "
            f"which no time constant gives",
        )
    tau = 1.0 / (1.0 - leak)

    def full(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values.reshape(-1, *[1] * (len(shape) - 1)), shape).copy()

    return nir.LIF(
        tau=full(tau),
        r=full(gain * tau),
        v_leak=full(shift * tau),
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


def _nodes(name: str, module: nn.Module, shape: tuple[int, ...], after_spikes: bool) -> list:
    """The NIR node(s) of one operation whose input has ``shape`` (no batch dim)."""
    nir = require("nir", "NIR export")
    if isinstance(module, StatefulCell):
        if not isinstance(module, Lif):
            raise _refuse(name, module, "only Lif cells map onto NIR's LIF")
        return [(name, lif_node(name, module, shape))]
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
            raise _refuse(name, module, "max pooling maps only on spikes (0 or 1)")
        kernel, stride = _pool_params(name, module)
        out_hw = (np.array(shape[1:]) - kernel) // stride + 1
        # on spikes, max over a window = (sum over the window > 0.5)
        return [
            (name, nir.SumPool2d(kernel_size=kernel, stride=stride, padding=np.zeros(2))),
            (f"{name}.any", nir.Threshold(threshold=np.full((shape[0], *out_hw), 0.5))),
        ]
    raise _refuse(name, module, "NIR has no node for it")


def to_nir(model: nn.Module):
    """The NIR graph of one timestep of ``model`` (a backbone or a classifier around one).

    The graph maps the input ``[C, H, W]`` (or ``[features]``) of one step to the head's
    output; aggregating over time (``metadata['aggregation']``) is left to the consumer.
    """
    nir = require("nir", "NIR export")
    backbone, neck = split_classifier(model)
    if neck is not None:
        raise _refuse("neck", neck, "the neck runs on the aggregate, outside the step graph")
    layers = [*_layers(backbone.body, "body"), *_layers(backbone.head, "head")]
    shape = tuple(backbone.input_shape)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, previous, after_spikes = [], "input", False
    x = torch.zeros(1, *shape, dtype=next(backbone.parameters()).dtype)
    with torch.no_grad():
        for name, module in layers:
            for node_name, node in _nodes(name, module, tuple(x.shape[1:]), after_spikes):
                nodes[node_name] = node
                edges.append((previous, node_name))
                previous = node_name
            if isinstance(module, StatefulCell):
                x, _ = module.step(x, module.init_state(x))
            else:
                x = module(x)
            # binary outputs: a spiking Lif's, and a max pool's over them
            spiking_lif = isinstance(module, Lif) and module.mode == "spike"
            after_spikes = spiking_lif or (isinstance(module, nn.MaxPool2d) and after_spikes)
    nodes["output"] = nir.Output(output_type={"output": np.array(tuple(x.shape[1:]))})
    edges.append((previous, "output"))
    metadata = {
        "source": "bidl",
        "aggregation": str(getattr(backbone.aggregate, "mode", "custom")),
        "timesteps": int(backbone.timestep),
        "dt": 1.0,
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``to_nir(model)`` to ``path`` (an HDF5 ``.nir`` file), atomically."""
    nir = require("nir", "NIR export")
    graph = to_nir(model.eval())
    path = Path(path)
    with fileio.staged_file(path, hint="Free disk space or pick another --out.") as tmp:
        nir.write(str(tmp), graph)
    return path
