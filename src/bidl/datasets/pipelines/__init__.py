"""Pipeline steps: loading, transforms and formatting of one sample dict."""

from .compose import Compose

__all__ = ["Compose"]
