"""Seeing what a spiking network does: activity counts, synaptic operations and energy,
training curves, spike rasters, membrane traces and event-stream animations."""

from .activity import ActivityMonitor, input_kind
from .analyze import analyze_checkpoint, analyze_model, write_sample_figures
from .curves import plot_work_dirs, read_log
from .fanout import dense_macs, fan_out
from .report import EnergyModel, build_report, format_report
from .trace import CellTrace, record_sample

__all__ = [
    "ActivityMonitor",
    "CellTrace",
    "EnergyModel",
    "analyze_checkpoint",
    "analyze_model",
    "build_report",
    "dense_macs",
    "fan_out",
    "format_report",
    "input_kind",
    "plot_work_dirs",
    "read_log",
    "record_sample",
    "write_sample_figures",
]
