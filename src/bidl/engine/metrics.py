"""Which accuracies validation, ``bidl test`` and ``bidl infer`` report."""

from __future__ import annotations

from collections.abc import Mapping

#: reported when neither ``evaluation.metric_options`` nor ``model.head.topk`` says
DEFAULT_TOPK = (1, 5)


def metric_options(cfg: Mapping) -> dict:
    """``evaluation.metric_options``; without it, the top-k the config's head computes
    (``model.head.topk``: a config with ``topk=(1,)`` is not shown a top-5), else (1, 5)."""
    options = (cfg.get("evaluation") or {}).get("metric_options")
    if options:
        return dict(options)
    head = (cfg.get("model") or {}).get("head") or {}
    topk = head.get("topk") if isinstance(head, Mapping) else None
    if isinstance(topk, int):
        topk = (topk,)
    return {"topk": tuple(topk) if topk else DEFAULT_TOPK}
