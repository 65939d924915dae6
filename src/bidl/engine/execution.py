"""How a training run executes its model, chosen once before the first step.

- ``runner.multi_step`` ('auto' by default): on CUDA, a backbone configured with the time
  loop outside (EIM, BIDL's ``...Itout`` names) trains with the loop inside its layers
  (IIM: convolutions and linear layers over all ``T * B`` frames at once, the fused neuron
  kernels) when the two forms compute the same function, i.e. it has no time loop of its
  own. On the CPU 'auto' keeps the config's form: there one step's activations stay in
  the caches, and the DigitsDVS model trained 10-25 % slower in multi-step form. Random draws at each step (dropout, membrane noise) keep their distribution but
  come in another order (layer by layer instead of step by step), which the log says.
  The config keeps its name and the checkpoint is the same (the loop holds no weights).
- ``runner.channels_last`` ('auto': on): 4-D weights and activations in NHWC, what cuDNN's
  fast convolutions and batch norms take without transposes, and what oneDNN's CPU
  convolutions prefer (the DigitsDVS step 13 % faster on one core).
- cuDNN autotuning on CUDA, unless the run is deterministic.
- ``runner.fused_kernels`` (True): the cells' fused multi-step paths (Triton kernels on
  CUDA, one-node recurrences in torch); False runs each cell's reference loop over
  ``step``, the definition of correctness, to check them or to debug.
- ``runner.compile`` ('auto': on CUDA for runs long enough to repay the compilation;
  True/False, or a dict of ``torch.compile`` keywords): Inductor's compiled code is kept in
  a cache folder that outlives the run, so a second run does not compile again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from ..models.backbones.base import SpikingBackbone
from ..neurons.base import StatefulCell
from ..neurons.kernels import set_fused_kernels, triton_available

logger = logging.getLogger("bidl")

#: training steps under which 'auto' leaves a model eager: a cold compilation of a
#: multi-step spiking network took 80-140 s on a 16-core H100 host and saves about 4 ms
#: a step over the eager fused kernels (benchmarks/RESULTS.md, issue 13)
AUTO_COMPILE_MIN_STEPS = 25000
#: where Inductor keeps compiled code unless TORCHINDUCTOR_CACHE_DIR says otherwise
CACHE_DIR = Path.home() / ".cache" / "bidl" / "inductor"


def multi_step_difference(backbone: SpikingBackbone) -> str | None:
    """Why ``backbone``'s multi-step (IIM) form would compute another function than its
    single-step (EIM) form, or None when both are the same."""
    cls = type(backbone)
    if (
        cls.forward_step is not SpikingBackbone.forward_step
        or cls.forward_sequence is not SpikingBackbone.forward_sequence
    ):
        return f"{cls.__name__} runs its own time loop"
    return None


def random_draws(backbone: nn.Module) -> str | None:
    """The first module of ``backbone`` that draws random numbers at every training step
    (dropout, membrane noise), or None."""
    for name, module in backbone.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return f"{name} (dropout)"
        noise = getattr(module, "noise", 0)
        if isinstance(module, StatefulCell) and isinstance(noise, int | float) and noise > 0:
            return f"{name} (membrane noise)"
    return None


def use_multi_step(
    model: nn.Module, setting="auto", device: torch.device | None = None
) -> list[str]:
    """Switch the EIM backbones of ``model`` to their multi-step form: all of them
    (``True``), those whose two forms are the same function (``'auto'``, on CUDA or when
    no ``device`` is given) or none (``False``). Returns one note per backbone."""
    notes = []
    if setting is False:
        return notes
    if setting == "auto" and device is not None and device.type != "cuda":
        return ["single-step form kept on the CPU (runner.multi_step=True switches)"]
    for name, module in model.named_modules():
        if not isinstance(module, SpikingBackbone) or module.use_inner_loop:
            continue
        label = name or type(module).__name__
        difference = None if setting is True else multi_step_difference(module)
        if difference is not None:
            notes.append(f"{label} keeps its single-step form: {difference}")
            continue
        module.use_inner_loop = True
        note = f"{label} ({type(module).__name__}) trains in multi-step form"
        drawn = random_draws(module)
        if drawn:
            note += f"; the random draws of {drawn} come layer by layer, not step by step"
        notes.append(note)
    return notes


def _resolve(setting, on: bool):
    return on if setting == "auto" else bool(setting)


def wants_compile(setting, device: torch.device, total_steps: int):
    """The ``torch.compile`` keywords to use, or None: ``setting`` is ``runner.compile``."""
    if setting == "auto":
        if device.type != "cuda" or not triton_available() or total_steps < AUTO_COMPILE_MIN_STEPS:
            return None
        return {}
    if not setting:
        return None
    return dict(setting) if isinstance(setting, dict) else {}


def prepare_model(model: nn.Module, runner_cfg: dict | None, device: torch.device) -> list[str]:
    """Set up ``model`` (on ``device``, before data parallelism wraps it) as ``runner_cfg``
    asks: multi-step form, memory layout, cuDNN autotuning. Returns notes for the log."""
    runner_cfg = runner_cfg or {}
    notes = use_multi_step(model, runner_cfg.get("multi_step", "auto"), device)
    fused = runner_cfg.get("fused_kernels", True)
    set_fused_kernels(fused)
    if not fused:
        notes.append("fused neuron kernels off: every cell runs its reference loop")
    cuda = device.type == "cuda"
    if _resolve(runner_cfg.get("channels_last", "auto"), True):
        model.to(memory_format=torch.channels_last)
        notes.append("channels_last weights")
    if cuda and not torch.backends.cudnn.deterministic:
        torch.backends.cudnn.benchmark = True
        notes.append("cuDNN autotuning")
    return notes


def compile_model(
    model: nn.Module, runner_cfg: dict | None, device: torch.device, total_steps: int
) -> list[str]:
    """Compile ``model`` in place (``model.compile``: the weights keep their names) when
    ``runner.compile`` asks for it; returns notes for the log."""
    setting = (runner_cfg or {}).get("compile", "auto")
    options = wants_compile(setting, device, total_steps)
    if options is None:
        if setting == "auto":
            return [
                f"eager (runner.compile='auto' compiles CUDA runs of {AUTO_COMPILE_MIN_STEPS}+ steps)"
            ]
        return []
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE_DIR))
    model.compile(**options)
    return [f"torch.compile, cache {os.environ['TORCHINDUCTOR_CACHE_DIR']}"]
