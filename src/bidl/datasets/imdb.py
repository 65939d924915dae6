"""``imdb``: the Large Movie Review Dataset (aclImdb), reviews as token-id sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .cached_dataset import CachedDataset
from .text import build_vocab, encode, load_or_build_vocab, tokenize

LABELS = ("neg", "pos")


@DATASETS.register_module(name=["imdb", "IMDB"])
class Imdb(CachedDataset):
    """IMDB sentiment: 25000 training and 25000 test reviews, ``neg`` 0 / ``pos`` 1.
    ``img`` is ``[timesteps]`` int32 token ids (vocabulary of the ``vocab_size`` most
    frequent training tokens, built once and cached; 0 pads, 1 is unknown)."""

    CLASSES = list(LABELS)
    SOURCE = "aclImdb: {train,test}/{pos,neg}/<id>_<rating>.txt reviews"
    PREPARE_NAME = "imdb"
    LAYOUT = "  <raw>/aclImdb/train/pos/*.txt, train/neg/*.txt\n  <raw>/aclImdb/test/pos/*.txt, test/neg/*.txt"

    def __init__(
        self,
        data_prefix: str = "data/imdb",
        timesteps: int = 500,
        vocab_size: int = 1001,
        padding: str = "pre",
        **kwargs,
    ):
        if padding not in ("pre", "post"):
            raise BidlError(f"imdb: padding must be 'pre' or 'post', got {padding!r}")
        self.timesteps, self.vocab_size, self.padding = int(timesteps), int(vocab_size), padding
        self._index: dict[str, int] | None = None
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {"timesteps": self.timesteps, "vocab_size": self.vocab_size, "padding": self.padding}

    def _root(self) -> Path:
        nested = self.raw_prefix / "aclImdb"
        return nested if nested.is_dir() else self.raw_prefix

    def _files(self, split: str):
        refs, labels = [], []
        for label, name in enumerate(LABELS):
            folder = self._root() / split / name
            if not folder.is_dir():
                raise self.missing(f"folder {folder} does not exist")
            files = sorted(folder.glob("*.txt"))
            refs += [str(f) for f in files]
            labels += [label] * len(files)
        return refs, labels

    @property
    def vocab(self) -> list[str]:
        def build():
            texts = (tokenize(Path(f).read_text(encoding="utf-8")) for f in self._files("train")[0])
            return build_vocab(texts, self.vocab_size)

        return load_or_build_vocab(self.cache_folder / "vocab.json", build)

    def list_samples(self, split: str):
        refs, labels = self._files(split)
        self._index = {w: i for i, w in enumerate(self.vocab)}
        return refs, labels

    def decode(self, ref) -> np.ndarray:
        text = Path(ref).read_text(encoding="utf-8")
        return encode(tokenize(text), self._index, self.timesteps, self.padding)
