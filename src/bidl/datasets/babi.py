"""``BabiQa``: the bAbI question-answering tasks, story and question as one token-id
sequence, the answer as the class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS, BidlError
from .cached_dataset import CachedDataset
from .text import encode, load_or_build_vocab, tokenize


def parse_babi(path: Path) -> list[tuple[list[str], list[str], str]]:
    """``(story tokens, question tokens, answer)`` of each question of a bAbI task file:
    numbered lines, a story restarting at line 1, questions ``id text?<TAB>answer<TAB>facts``."""
    samples = []
    story: list[list[str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        head, _, rest = line.partition(" ")
        if not head.isdigit():
            raise BidlError(f"{path}, line {number}: expected '<number> <text>', got {line!r}")
        if int(head) == 1:
            story = []
        if "\t" in rest:
            fields = rest.split("\t")
            if len(fields) < 2 or not fields[1].strip():
                raise BidlError(f"{path}, line {number}: a question needs '<question>\\t<answer>'")
            samples.append(([t for s in story for t in s], tokenize(fields[0]), fields[1].strip()))
        else:
            story.append(tokenize(rest))
    return samples


@DATASETS.register_module(name=["BabiQa", "bAbI"])
class BabiQa(CachedDataset):
    """bAbI (Facebook, v1.2, English): task ``task`` (1-20) of ``<raw>/en/`` (or ``en-10k``
    with ``variant``). ``img`` is ``[timesteps]`` int32 token ids of the story followed by
    the question (``pre`` padding, 0 pads, 1 unknown); classes are the training answers."""

    SOURCE = "bAbI tasks v1.2: qa<N>_<name>_{train,test}.txt numbered story/question lines"
    PREPARE_NAME = "BabiQa"
    LAYOUT = "  <raw>/tasks_1-20_v1-2/en/qa1_single-supporting-fact_train.txt, ..._test.txt (or <raw>/en/...)"

    def __init__(
        self,
        data_prefix: str = "data/babi",
        task: int = 1,
        variant: str = "en",
        timesteps: int = 100,
        **kwargs,
    ):
        if not isinstance(task, int) or not 1 <= task <= 20:
            raise BidlError(f"BabiQa: task must be an int in 1..20, got {task!r}")
        self.task, self.variant, self.timesteps = task, variant, int(timesteps)
        self._lookup: dict | None = None
        super().__init__(data_prefix, **kwargs)

    def cache_params(self) -> dict:
        return {"task": self.task, "variant": self.variant, "timesteps": self.timesteps}

    def _file(self, split: str) -> Path:
        for base in (self.raw_prefix / "tasks_1-20_v1-2", self.raw_prefix):
            found = sorted((base / self.variant).glob(f"qa{self.task}_*_{split}.txt"))
            if found:
                return found[0]
        raise self.missing(
            f"no qa{self.task}_*_{split}.txt in {self.raw_prefix}/[tasks_1-20_v1-2/]{self.variant}"
        )

    def _vocab(self) -> tuple[list[str], list[str]]:
        def build():
            samples = parse_babi(self._file("train"))
            words = sorted({t for story, question, _ in samples for t in story + question})
            answers = sorted({answer for _, _, answer in samples})
            return {"words": ["<pad>", "<unk>", *words], "answers": answers}

        vocab = load_or_build_vocab(self.cache_folder / "vocab.json", build)
        return vocab["words"], vocab["answers"]

    def list_samples(self, split: str):
        words, answers = self._vocab()
        self.CLASSES = answers
        answer_index = {a: i for i, a in enumerate(answers)}
        self._lookup = {w: i for i, w in enumerate(words)}
        samples = parse_babi(self._file(split))
        unknown = sorted({a for _, _, a in samples if a not in answer_index})
        if unknown:
            raise BidlError(
                f"BabiQa: answers {unknown[:5]} of the {split} file never occur in training"
            )
        return [s[:2] for s in samples], [answer_index[s[2]] for s in samples]

    def decode(self, ref) -> np.ndarray:
        story, question = ref
        return encode(story + question, self._lookup, self.timesteps, "pre")
