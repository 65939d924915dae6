"""Fuzzing (hypothesis) of ``net_params.json`` and the artifact loader: every malformed
manifest ends in one ``BidlError`` (``ArtifactError``), never another exception type."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import tiny_artifact
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidl.deploy import Runtime
from bidl.deploy.artifact import MANIFEST, describe_manifest, read_manifest, tensor_table
from bidl.registry import BidlError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def valid_manifest() -> dict:
    return json.loads((tiny_artifact() / MANIFEST).read_text())


def paths_of(value, prefix=()):
    """Every (key path) inside a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, (*prefix, index))


@st.composite
def mutated_manifests(draw):
    """A valid manifest with one to three places replaced by random JSON, or deleted."""
    manifest = valid_manifest()
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in paths_of(manifest) if p]
        path = draw(st.sampled_from(paths))
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
        if not isinstance(manifest, dict):
            break
    return manifest


def check_manifest(folder: Path, manifest) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest))
    try:
        loaded = read_manifest(folder)
        describe_manifest(loaded)
        tensor_table(loaded)
    except BidlError:
        pass


def open_and_run(folder: Path) -> None:
    try:
        runtime = Runtime(folder)
        shape = (1, runtime.timesteps, *runtime.step_shape)
        runtime.run(np.zeros(shape, dtype=np.float32))
    except BidlError:
        pass


@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
@FUZZ
def test_random_bytes_and_json_as_manifest(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("a")
    (folder / MANIFEST).write_bytes(data)
    try:
        read_manifest(folder)
    except BidlError:
        return
    raise AssertionError("random bytes passed as a manifest")


@given(mutated_manifests())
@settings(FUZZ, max_examples=400)
def test_mutated_manifests_read_and_describe(tmp_path_factory, manifest):
    check_manifest(tmp_path_factory.mktemp("a"), manifest)


@given(mutated_manifests())
@settings(FUZZ, max_examples=60)
def test_mutated_manifests_open_in_the_runtime(tmp_path_factory, manifest):
    folder = tmp_path_factory.mktemp("a") / "artifact"
    shutil.copytree(tiny_artifact(), folder)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    open_and_run(folder)


def test_the_unmutated_artifact_runs(tmp_path):
    folder = tmp_path / "artifact"
    shutil.copytree(tiny_artifact(), folder)
    runtime = Runtime(folder)
    assert (
        runtime.run(np.zeros((1, runtime.timesteps, *runtime.step_shape), np.float32)) is not None
    )


def test_an_empty_input_shape_is_refused_when_read(tmp_path):
    folder = tmp_path / "artifact"
    shutil.copytree(tiny_artifact(), folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["input"]["shape"][1] = 0  # found by the fuzz test: ONNX Runtime failed at run
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BidlError, match=r"input.*shape.*positive integers"):
        read_manifest(folder)


def test_a_manifest_shape_the_graph_does_not_take_is_refused_when_opened(tmp_path):
    folder = tmp_path / "artifact"
    shutil.copytree(tiny_artifact(), folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["input"]["shape"][1] += 1
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BidlError, match=r"the graph takes 'x' of shape \[2, 2, 8, 8\]"):
        Runtime(folder)
