"""``Compose``: run a list of pipeline steps (built from configs) over a sample dict."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...registry import PIPELINES, build


class Compose:
    def __init__(self, transforms: Sequence[dict | Callable]):
        self.transforms: list[Callable] = []
        for transform in transforms:
            if isinstance(transform, dict):
                transform = build(transform, PIPELINES)
            if not callable(transform):
                raise TypeError(f"a pipeline step must be a dict or callable, got {transform!r}")
            self.transforms.append(transform)

    def __call__(self, results: dict) -> dict | None:
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        steps = "".join(f"\n    {t}" for t in self.transforms)
        return f"Compose({steps}\n)"
