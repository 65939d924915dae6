"""Datasets: ``BaseDataset``, the registered datasets and their pipelines."""

from .base import BaseDataset, DatasetNotFoundError, topk_accuracy
from .pipelines import Compose

__all__ = ["BaseDataset", "Compose", "DatasetNotFoundError", "topk_accuracy"]
