"""Runtime: a compiled artifact run by ONNX Runtime gives the PyTorch model's outputs."""

import shutil
import threading

import numpy as np
import pytest
import torch
from deploy_helpers import (
    blink_batch,
    build_small_backbone,
    distinct_backbones,
    example_input,
    tiny_artifact,
    tiny_snn,
    trained_tiny_snn,
)
from torch import nn

from bidl.deploy import ArtifactError, Runtime, compile_model
from bidl.layers import FcLif
from bidl.models.backbones.base import SpikingBackbone
from bidl.registry import BidlError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def expected_output(model, xs):
    with torch.no_grad():
        return model(xs).numpy()


@pytest.fixture(scope="module")
def tiny():
    """(model, artifact folder) of a tiny conv/FC SNN compiled at batch 2."""
    return tiny_snn(), tiny_artifact()


@pytest.fixture
def tiny_copy(tiny, tmp_path):
    """A copy of the tiny artifact that a test may damage."""
    model, folder = tiny
    return model, shutil.copytree(folder, tmp_path / "copy")


@pytest.mark.parametrize("name", distinct_backbones())
def test_runtime_output_equals_pytorch_eval_for_every_backbone(name, tmp_path):
    model = build_small_backbone(name)
    xs = example_input(model, batch=2)
    with Runtime(compile_model(model, tmp_path / name, batch_size=2)) as runtime:
        got = runtime.run(xs)
    assert np.abs(got - expected_output(model, xs)).max() <= 1e-4


def test_lifplus_cells_of_every_switch_family_run_exactly(tmp_path):
    configs = [
        [1, 0, 0, 0, 0, 0],  # COBE conductance
        [2, 1, 1, 0, 1, 0],  # COBA, reversal voltage, absolute refractoriness, adaptive
        [0, 0, 2, 1, 2, 1],  # relative refractoriness, exponential initiation, subthreshold
        [0, 0, 0, 2, 0, 2],  # quadratic initiation, linear decay
    ]

    class LifPlusStack(SpikingBackbone):
        def __init__(self):
            super().__init__((6,), 5)
            self.body = nn.Sequential(
                *[FcLif(6, 6, neuron="lifplus", neuron_config=c) for c in configs]
            )
            self.head = nn.Linear(6, 3)

    torch.manual_seed(0)
    model = LifPlusStack().eval()
    xs = torch.rand(3, 5, 6) * 2
    with Runtime(compile_model(model, tmp_path / "lifplus", batch_size=3)) as runtime:
        got = runtime.run(xs)
    assert np.abs(got - expected_output(model, xs)).max() <= 1e-4


def test_run_takes_any_number_of_samples_padding_the_last_batch(tiny):
    model, folder = tiny
    xs = example_input(model, batch=5)
    got = Runtime(folder).run(xs)
    assert got.shape == (5, 5)
    np.testing.assert_allclose(got, expected_output(model, xs), atol=1e-5)


def test_run_of_one_unbatched_sample_returns_its_output(tiny):
    model, folder = tiny
    xs = example_input(model, batch=1)
    np.testing.assert_allclose(Runtime(folder).run(xs[0]), expected_output(model, xs)[0], atol=1e-5)


def test_submit_returns_the_output_and_calls_back_from_the_worker(tiny):
    model, folder = tiny
    samples = [example_input(model, batch=2, seed=s) for s in range(6)]
    called, threads = [], set()

    def callback(output):
        called.append(output)
        threads.add(threading.current_thread().name)

    with Runtime(folder, queue_size=2) as runtime:
        futures = [runtime.submit(xs, callback) for xs in samples]
        outputs = [f.result() for f in futures]
    for xs, out in zip(samples, outputs, strict=True):
        np.testing.assert_allclose(out, expected_output(model, xs), atol=1e-5)
    assert len(called) == 6 and threads == {"bidl-runtime"}


def test_streaming_step_returns_the_running_aggregate(tiny):
    model, folder = tiny
    xs = example_input(model, batch=2)
    runtime = Runtime(folder)
    runtime.reset()
    for t in range(xs.shape[1]):
        running = runtime.step(xs[:, t])
        # the mean over steps 0..t is the model's output on the first t + 1 steps
        np.testing.assert_allclose(running, expected_output(model, xs[:, : t + 1]), atol=1e-5)


def test_reset_starts_a_new_stream_from_the_initial_states(tiny):
    model, folder = tiny
    first, second = example_input(model, 1, seed=1), example_input(model, 1, seed=2)
    runtime = Runtime(folder)
    for t in range(first.shape[1]):
        runtime.step(first[:, t])
    runtime.reset()
    for t in range(second.shape[1]):
        out = runtime.step(second[:, t])
    np.testing.assert_allclose(out, expected_output(model, second), atol=1e-5)


def test_infer_scores_a_loader_and_measures_speed(tiny):
    model, folder = tiny
    xs = example_input(model, batch=6)
    labels = expected_output(model, xs).argmax(axis=1)
    labels[:2] = (labels[:2] + 1) % 5  # two wrong on purpose: top-1 is 4/6
    loader = [
        {"img": xs[i : i + 2], "gt_label": torch.from_numpy(labels[i : i + 2])} for i in (0, 2, 4)
    ]
    result = Runtime(folder).infer(loader, topk=(1, 5), progress=False)
    assert result.samples == 6
    assert result.accuracy["top-1"] == pytest.approx(100 * 4 / 6)
    assert result.accuracy["top-5"] == pytest.approx(100.0)
    assert result.frames_per_s == pytest.approx(result.samples_per_s * 4)
    assert 0 < result.latency_ms["p50"] <= result.latency_ms["p99"]


def test_describe_lists_shapes_dtypes_and_byte_lengths(tiny):
    _, folder = tiny
    text = Runtime(folder).describe()
    assert "batch size: 2, timesteps: 4, aggregation: mean" in text
    assert "input   x" in text and "[2, 2, 8, 8]" in text and str(2 * 2 * 8 * 8 * 4) in text
    assert "body.0.neuron.v" in text and str(2 * 4 * 8 * 8 * 4) in text


def test_float16_artifact_agrees_on_top1_for_99_percent_of_a_batch(tmp_path):
    model = trained_tiny_snn()
    xs, _ = blink_batch(200, seed=7)
    folder = compile_model(model, tmp_path / "fp16", batch_size=200, input_dtype="float16")
    got = Runtime(folder).run(xs)
    assert got.dtype == np.float16
    agree = (got.argmax(axis=1) == expected_output(model, xs).argmax(axis=1)).mean()
    assert agree >= 0.99


@pytest.fixture(scope="module")
def tiny_uint8(tmp_path_factory):
    """(model, artifact) taking raw uint8 frames that the graph halves."""
    model = tiny_snn(seed=4)
    folder = tmp_path_factory.mktemp("u8") / "art"
    return model, compile_model(model, folder, batch_size=2, input_dtype="uint8", input_scale=0.5)


def test_uint8_artifact_scales_raw_frames_in_the_graph(tiny_uint8):
    model, folder = tiny_uint8
    counts = torch.randint(0, 4, (2, 4, 2, 8, 8), dtype=torch.uint8)
    got = Runtime(folder).run(counts.numpy())
    np.testing.assert_allclose(got, expected_output(model, counts.float() * 0.5), atol=1e-5)


def test_uint8_artifact_takes_raw_counts_stored_as_floats(tiny_uint8):
    model, folder = tiny_uint8
    counts = torch.randint(0, 4, (2, 4, 2, 8, 8)).float()
    got = Runtime(folder).run(counts)
    np.testing.assert_allclose(got, expected_output(model, counts * 0.5), atol=1e-5)


def test_uint8_artifact_refuses_values_that_are_not_raw_frames(tiny_uint8):
    _, folder = tiny_uint8
    with pytest.raises(BidlError, match="not integers in 0..255; this artifact takes raw uint8"):
        Runtime(folder).run(np.full((2, 4, 2, 8, 8), 0.5, dtype=np.float32))


def test_wrong_input_shape_is_a_clear_error(tiny):
    _, folder = tiny
    with pytest.raises(BidlError, match=r"takes \[N, T, 2, 8, 8\].*got shape \[2, 4, 3, 8, 8\]"):
        Runtime(folder).run(np.zeros((2, 4, 3, 8, 8), np.float32))


def test_non_numeric_input_is_a_clear_error(tiny):
    _, folder = tiny
    with pytest.raises(BidlError, match="expected numbers"):
        Runtime(folder).run(np.full((2, 4, 2, 8, 8), "a"))


def test_missing_graph_file_is_a_clear_error(tiny_copy):
    _, folder = tiny_copy
    (folder / "step.onnx").unlink()
    with pytest.raises(ArtifactError, match="step.onnx is missing; recompile"):
        Runtime(folder)


def test_corrupted_graph_file_is_a_clear_error(tiny_copy):
    _, folder = tiny_copy
    data = bytearray((folder / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "step.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match the hash .* corrupted"):
        Runtime(folder)


def test_corrupted_manifest_is_a_clear_error(tiny_copy):
    _, folder = tiny_copy
    (folder / "net_params.json").write_text('{"format": "bidl-step-graph", "batch')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Runtime(folder)


def test_manifest_cannot_point_outside_its_folder(tiny_copy):
    _, folder = tiny_copy
    manifest = (folder / "net_params.json").read_text()
    (folder / "net_params.json").write_text(manifest.replace('"step.onnx"', '"../step.onnx"', 1))
    with pytest.raises(ArtifactError, match="'../step.onnx' is not a plain file name"):
        Runtime(folder)


def test_a_folder_without_manifest_is_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="has no net_params.json"):
        Runtime(tmp_path)


def test_onnx_on_cuda_without_a_gpu_build_is_a_clear_error(tiny):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    with pytest.raises(BidlError, match="has no CUDA provider.*--backend aoti"):
        Runtime(tiny[1], device="cuda:0")
