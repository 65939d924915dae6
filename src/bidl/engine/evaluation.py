"""Run a model over a data loader and score it."""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
import torch
from tqdm import tqdm


def move_batch(batch: dict, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


@torch.no_grad()
def run_model(
    model: torch.nn.Module,
    loader,
    device: torch.device,
    each,
    autocast=None,
    desc: str = "test",
    to_device=move_batch,
) -> float:
    """``model(img, return_loss=False)`` in eval mode on every batch of ``loader``;
    ``each(loaded_batch, output)`` receives each output. Returns the seconds spent in the
    model (data loading excluded). ``to_device(batch, device)`` moves a batch (and may
    finish its preparation there)."""
    model.eval()
    model_seconds = 0.0
    for loaded in tqdm(loader, desc=desc, leave=False, disable=None, unit="batch"):
        batch = to_device(loaded, device)
        start = time.perf_counter()
        with autocast or nullcontext():
            output = model(batch["img"], return_loss=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        model_seconds += time.perf_counter() - start
        each(loaded, output)
    return model_seconds


def predict(
    model: torch.nn.Module,
    loader,
    device: torch.device,
    autocast=None,
    desc: str = "test",
    to_device=move_batch,
) -> tuple[np.ndarray, float]:
    """Class probabilities for every sample of ``loader`` ``[N, classes]``, and the seconds
    spent in the model (``run_model``)."""
    scores = []
    seconds = run_model(
        model, loader, device, lambda _, probs: scores.append(probs.float().cpu()), autocast,
        desc, to_device,
    )  # fmt: skip
    return torch.cat(scores).numpy(), seconds
