"""Tokenising text into fixed-length id sequences, with a vocabulary built once."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .. import fileio

PAD, UNKNOWN = 0, 1
_TOKEN = re.compile(r"[a-z0-9']+|[?.,!]")


def tokenize(text: str) -> list[str]:
    """Lower-case words (and ``? . , !``), HTML line breaks removed."""
    return _TOKEN.findall(text.replace("<br />", " ").lower())


def build_vocab(texts: Iterable[list[str]], size: int) -> list[str]:
    """The ``size - 2`` most frequent tokens (ties by first appearance) after ``<pad>``, ``<unk>``."""
    counts = Counter()
    for tokens in texts:
        counts.update(tokens)
    return ["<pad>", "<unk>"] + [w for w, _ in counts.most_common(max(size - 2, 0))]


def encode(
    tokens: list[str], index: dict[str, int], length: int, padding: str = "pre"
) -> np.ndarray:
    """Token ids ``[length]`` int32: unknown words -> 1; longer texts keep their last
    (``padding="pre"``) or first (``"post"``) ``length`` tokens, shorter ones are padded
    with 0 before (``"pre"``) or after (``"post"``)."""
    ids = [index.get(t, UNKNOWN) for t in tokens]
    ids = ids[-length:] if padding == "pre" else ids[:length]
    out = np.zeros(length, dtype=np.int32)
    if ids:
        if padding == "pre":
            out[length - len(ids) :] = ids
        else:
            out[: len(ids)] = ids
    return out


def load_or_build_vocab(path: Path, build) -> list[str]:
    """The vocabulary saved at ``path``, or ``build()``'s, saved there atomically."""
    if path.is_file():
        return json.loads(path.read_text())
    words = build()
    fileio.write_bytes(path, json.dumps(words).encode())
    return words
