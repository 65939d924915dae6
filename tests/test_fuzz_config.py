"""Fuzzing (hypothesis) of config loading: a damaged config file or a bad ``--cfg-options``
override ends in one ``BidlError``, never another exception type."""

from __future__ import annotations

import contextlib

from conftest import TINY_CONFIG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidl.config import load_config
from bidl.registry import BidlError

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
VALID = TINY_CONFIG.format(workers=0)
# edits from the characters that typos and truncation produce; no letters, so no new names
EDIT_CHARS = st.sampled_from(list("()[]{}=,.:'\"#\\ \n0123456789-+*/"))


@st.composite
def damaged_configs(draw):
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if kind == "insert":
            text = text[:at] + draw(st.text(EDIT_CHARS, min_size=1, max_size=3)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        else:
            text = text[:at]
    return text


@given(damaged_configs())
@FUZZ
def test_damaged_config_files(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("c") / "fuzzed-b8x0-blinks.py"
    path.write_text(text)
    with contextlib.suppress(BidlError):
        load_config(str(path))


@given(st.binary(max_size=300))
@FUZZ
def test_random_bytes_as_config_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("c") / "bytes-b8x0-blinks.py"
    path.write_bytes(data)
    with contextlib.suppress(BidlError):
        load_config(str(path))


KEYS = st.lists(
    st.sampled_from(["model", "data", "train", "backbone", "0", "type", "", "a b", "lr"]),
    min_size=1,
    max_size=4,
).map(".".join)
VALUES = st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=3)


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=3))
@FUZZ
def test_random_cfg_options(tmp_path_factory, options):
    path = tmp_path_factory.mktemp("c") / "opts-b8x0-blinks.py"
    path.write_text(VALID)
    with contextlib.suppress(BidlError):
        load_config(str(path), options)
