"""What ``bidl analyze`` does: run a trained model on N samples, count spikes and synaptic
operations per layer, estimate energy, record one sample's raster and membrane traces,
and write everything (tables, JSON, figures) to a folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from tqdm import tqdm

from ..engine.dataloader import build_dataloader
from ..registry import BidlError
from .activity import ActivityMonitor
from .figures import (
    default_neurons,
    membrane_data,
    parse_neuron,
    plot_activity,
    plot_membrane,
    plot_raster,
    raster_data,
)
from .io import save_figure, write_json
from .loading import load_split, load_trained, output_folder
from .report import EnergyModel, build_report, format_report
from .trace import record_sample


@torch.no_grad()
def analyze_model(
    model: torch.nn.Module,
    batches: Iterable[dict],
    samples: int | None = None,
    energy: EnergyModel | None = None,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run ``model`` on the ``img`` of each batch until ``samples`` samples (all if None)
    and return the report (``build_report``)."""
    model.eval()
    with ActivityMonitor(model) as monitor:
        bar = tqdm(total=samples, desc="analyze", unit="sample", disable=progress is False or None)
        for batch in batches:
            img = batch["img"]
            if samples is not None:
                img = img[: samples - monitor.samples]
            if len(img) == 0:
                break
            monitor.begin_batch(len(img))
            model(img.to(device), return_loss=False)
            monitor.end_batch()
            bar.update(len(img))
            if samples is not None and monitor.samples >= samples:
                break
        bar.close()
    return build_report(monitor, energy)


def write_sample_figures(
    model: torch.nn.Module,
    img: torch.Tensor,
    out: Path,
    neurons: list[str] | None = None,
    raster_max: int = 100,
    dpi: int = 100,
) -> tuple[dict, dict]:
    """Raster and membrane traces of one sample ``img`` ``[T, ...]``: figures and JSON."""
    traces = record_sample(model, img)
    if not traces:
        raise BidlError("analysis: the model has no stateful cells, so there is nothing to trace")
    raster = raster_data(traces, raster_max)
    chosen = [parse_neuron(s, traces) for s in neurons] if neurons else default_neurons(traces)
    membrane = membrane_data(chosen)
    save_figure(plot_raster(raster), out / "raster", dpi=dpi)
    write_json(out / "raster.json", raster)
    save_figure(plot_membrane(membrane), out / "membrane", dpi=dpi)
    write_json(out / "membrane.json", membrane)
    return raster, membrane


def analyze_checkpoint(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    samples: int = 64,
    split: str = "test",
    out: str | os.PathLike | None = None,
    sample_index: int = 0,
    neurons: list[str] | None = None,
    pj_per_ac: float = 0.9,
    pj_per_mac: float = 4.6,
    raster_max: int = 100,
    dpi: int = 100,
    cfg_options: dict | None = None,
    device: str | None = None,
    work_dir: str | None = None,
) -> tuple[dict, Path]:
    """Analyze a trained checkpoint on ``samples`` samples of ``split``; write
    ``analysis.json``, ``activity.png/svg``, ``raster.png/svg/json``,
    ``membrane.png/svg/json`` to ``out`` (default ``<work dir>/analysis``)."""

    if samples < 1:
        raise BidlError(f"--samples must be >= 1, got {samples}")
    energy = EnergyModel(pj_per_ac=pj_per_ac, pj_per_mac=pj_per_mac)
    cfg, dataset = load_split(config, split, sample_index, cfg_options)
    model, ckpt, dev = load_trained(cfg, checkpoint, device, work_dir)
    loader = build_dataloader(dataset, int(cfg.data.samples_per_gpu), 0)
    report = analyze_model(model, loader, min(samples, len(dataset)), energy, dev)
    report.update(config=str(config), checkpoint=str(ckpt), split=split)
    out = output_folder(cfg, out, work_dir, "analysis")
    sample = dataset[sample_index]
    raster, membrane = write_sample_figures(
        model, sample["img"].to(dev), out, neurons, raster_max, dpi
    )
    report["sample"] = {"index": sample_index, "label": int(sample["gt_label"])}
    write_json(out / "analysis.json", report)
    save_figure(plot_activity(report), out / "activity", dpi=dpi)
    return report, out


__all__ = ["analyze_checkpoint", "analyze_model", "format_report", "write_sample_figures"]
