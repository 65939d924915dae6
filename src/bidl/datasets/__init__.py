"""Datasets: ``BaseDataset``, the registered datasets and their pipelines."""

from .base import BaseDataset, DatasetNotFoundError, topk_accuracy
from .builder import build_dataset
from .digits_dvs import DigitsDVS, prepare_digits_dvs
from .events.frames import events_to_frames, events_to_frames_batch
from .pipelines import Compose

__all__ = [
    "BaseDataset",
    "Compose",
    "DatasetNotFoundError",
    "DigitsDVS",
    "build_dataset",
    "events_to_frames",
    "events_to_frames_batch",
    "prepare_digits_dvs",
    "topk_accuracy",
]
