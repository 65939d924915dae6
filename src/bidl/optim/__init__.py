"""Optimizers and learning-rate schedules built from a config's ``optimizer`` and ``lr_config``."""

from .lr_schedule import LrSchedule
from .optimizer import build_optimizer, check_optimizer, optimizer_names

__all__ = ["LrSchedule", "build_optimizer", "check_optimizer", "optimizer_names"]
