"""Precisions of compiled step graphs: fp16 / bf16 (half-precision synaptic layers around
float32 cells and states) and int8 (ONNX Runtime's static quantization), on a model of
DigitsDVS's shapes (2x34x34 frames, T=8, 10 classes) trained briefly."""

import functools
import json

import numpy as np
import onnx
import pytest
import torch
from deploy_helpers import (
    TinySnn,
    blink_batch,
    load_checkpointed,
    randomize_norms,
    tiny_config_checkpoint,
)
from torch import nn

from bidl.cli import main
from bidl.config import load_config
from bidl.deploy import Runtime, StepGraph, compile_config, compile_model, read_manifest
from bidl.deploy.compile import check_options
from bidl.deploy.quantize import MIN_CALIBRATION_SAMPLES
from bidl.engine.apis import build_datasets
from bidl.registry import BidlError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SIZE, STEPS = 34, 8  # DigitsDVS: 2x34x34 frames, T=8
#: int8 predictions agree with float32 on at least this share of samples (documented in
#: docs/deployment.md); fp16 / bf16 on all of them here
INT8_AGREEMENT = 0.95


def digits_batch(batch: int, seed: int):
    return blink_batch(batch, seed, size=SIZE, timesteps=STEPS)


@functools.cache
def digits_snn() -> TinySnn:
    """conv-LIF, FC-LIF, linear on DigitsDVS shapes, 10 Adam steps on blink data."""
    torch.manual_seed(3)
    model = randomize_norms(TinySnn(timestep=STEPS, size=SIZE, nclass=10), seed=3).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(10):
        xs, labels = digits_batch(16, seed=200 + step)
        loss = nn.functional.cross_entropy(model(xs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@functools.cache
def reference() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Test inputs, their labels and the float32 step graph's outputs."""
    xs, labels = digits_batch(48, seed=7)
    return xs, labels.numpy(), StepGraph(digits_snn(), 48).run_sequence(xs).numpy()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """ONNX artifacts of ``digits_snn`` at batch 16: fp16, and int8 taking raw uint8 spike
    frames (BIDL's ``input_type="uint8"``)."""
    folder = tmp_path_factory.mktemp("precision")
    calibration, _ = digits_batch(32, seed=11)
    return {
        "fp16": compile_model(digits_snn(), folder / "fp16", batch_size=16, precision="fp16"),
        "int8": compile_model(
            digits_snn(),
            folder / "int8",
            batch_size=16,
            precision="int8",
            calibration=calibration,
            input_dtype="uint8",
        ),
    }


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_step_graph_keeps_states_in_float32_and_the_predictions(precision):
    xs, _, expected = reference()
    graph = StepGraph(digits_snn(), 48, precision=precision)
    assert {spec.dtype for spec in graph.states} == {"float32"}
    assert graph.model.body[0].conv.weight.dtype == {"fp16": torch.float16}.get(
        precision, torch.bfloat16
    )
    assert graph.model.body[0].neuron.norm.weight.dtype == torch.float32  # inside the cell
    got = graph.run_sequence(xs)
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy().argmax(1), expected.argmax(1))
    # a spike that flips near its threshold moves an output by a step: no rounding-sized bound
    scale = np.abs(expected).max()
    assert np.abs(got.numpy() - expected).max() <= {"fp16": 0.05, "bf16": 0.1}[precision] * scale


#: the synaptic layers of ``digits_snn``: all that runs in half precision
SYNAPSES = ("body.0.conv", "body.2.fc", "head")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_never_rounds_the_cells_or_the_aggregator(precision):
    """The cells' parameters and buffers (leak 0.3, membrane norms: not representable in
    half precision) are the trained float32 values bit for bit, not values rounded through
    half precision and back; the synaptic layers hold the trained values rounded once."""
    model = digits_snn()
    graph = StepGraph(model, 2, precision=precision)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    trained = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    held = {**dict(graph.model.named_parameters()), **dict(graph.model.named_buffers())}
    assert set(held) == set(trained)
    for name, tensor in held.items():
        if name.startswith(SYNAPSES):
            assert tensor.dtype == dtype, name
            assert torch.equal(tensor, trained[name].to(dtype)), name
        else:  # the neurons (norm, alpha, beta, theta, v_0) and the aggregator
            assert tensor.dtype == trained[name].dtype, name
            assert torch.equal(tensor, trained[name]), name
    assert float(graph.model.body[0].neuron.alpha) == float(torch.tensor(0.3))


def _rounded_synapses(model: nn.Module, dtype: torch.dtype) -> StepGraph:
    """The float32 step graph of ``model`` in which only the synaptic layers compute in
    ``dtype`` (input, weights and output rounded), everything else in float32."""
    graph = StepGraph(model, 16)
    modules = dict(graph.model.named_modules())
    for name in SYNAPSES:
        layer = modules[name].to(dtype)
        layer.register_forward_pre_hook(lambda _m, args: (args[0].to(dtype), *args[1:]))
        layer.register_forward_hook(lambda _m, _args, out: out.float())
    return graph


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_graph_rounds_the_synaptic_layers_and_nothing_else(precision):
    """The mixed graph equals, bit for bit, a float32 graph whose synaptic layers alone are
    rounded: the membrane update, the threshold comparison, the aggregation and the states
    see no half-precision value other than the synaptic currents."""
    xs, _, _ = reference()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    got = StepGraph(digits_snn(), 16, precision=precision).run_sequence(xs[:16])
    expected = _rounded_synapses(digits_snn(), dtype).run_sequence(xs[:16])
    assert got.dtype == torch.float32
    assert torch.equal(got, expected)


def _onnx_value_types(path) -> dict[str, int]:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*graph.value_info, *graph.input, *graph.output]
    }
    types.update({init.name: init.data_type for init in graph.initializer})
    return types


def test_fp16_onnx_artifact_runs_only_the_synaptic_layers_in_fp16(artifacts):
    """In the exported graph the convolution and the matrix products take float16; the
    membrane norms, the threshold comparisons and the aggregation's arithmetic float32, and
    the norms' statistics are the trained float32 values."""
    path = artifacts["fp16"] / "step.onnx"
    types = _onnx_value_types(path)
    nodes = onnx.load(str(path)).graph.node
    initializers = {i.name: i for i in onnx.load(str(path)).graph.initializer}
    half, single = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    by_op: dict[str, set] = {}
    for node in nodes:
        by_op.setdefault(node.op_type, set()).update(types[i] for i in node.input[:1])
    assert by_op["Conv"] == by_op["Gemm"] == {half}
    assert by_op["Greater"] == by_op["BatchNormalization"] == by_op["Div"] == {single}
    means = sorted(
        onnx.numpy_helper.to_array(initializers[node.input[3]]).tolist()
        for node in nodes
        if node.op_type == "BatchNormalization"
    )
    trained = sorted(
        module.running_mean.tolist()
        for module in digits_snn().modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
    )
    assert means == trained


def test_fp16_onnx_artifact_gives_the_float32_predictions(artifacts):
    xs, _, expected = reference()
    manifest = read_manifest(artifacts["fp16"])
    assert manifest["precision"] == "fp16"
    assert manifest["input"]["dtype"] == manifest["output"]["dtype"] == "float32"
    assert {s["dtype"] for s in manifest["states"]} == {"float32"}
    got = Runtime(artifacts["fp16"]).run(xs)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()


def test_int8_artifact_is_quantized_but_not_its_states_and_agrees_within_its_bound(artifacts):
    folder = artifacts["int8"]
    manifest = read_manifest(folder)
    assert manifest["precision"] == "int8" and manifest["input"]["dtype"] == "uint8"
    assert manifest["calibration"] == {
        "samples": 32,
        "method": "minmax",
        "quantized": ["Conv", "Gemm", "MatMul"],
    }
    graph = onnx.load(str(folder / "step.onnx")).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") >= 3  # input of the conv and of both linear maps
    quantized = {node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    assert not quantized & {s["name"] for s in manifest["states"]}  # states stay float
    xs, labels, expected = reference()
    got = Runtime(folder).run(xs.to(torch.uint8).numpy())
    assert (got.argmax(1) == expected.argmax(1)).mean() >= INT8_AGREEMENT
    assert abs((got.argmax(1) == labels).mean() - (expected.argmax(1) == labels).mean()) <= 0.05


def test_fp32_stays_the_default_and_float16_input_is_the_whole_graph_in_fp16():
    model = TinySnn(timestep=2, size=8)
    graph = StepGraph(model, 1)
    assert graph.precision == "fp32" and not graph.mixed
    legacy = StepGraph(model, 1, input_dtype="float16")
    assert legacy.precision == "fp16" and {s.dtype for s in legacy.states} == {"float16"}


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        ("onnxruntime", "fp8", "unknown precision 'fp8'; use one of fp32, fp16, bf16, int8"),
        (
            "onnxruntime",
            "bf16",
            "the onnxruntime backend cannot run precision bf16: it runs fp32, fp16, int8. "
            "Compile bf16 with --backend aoti or torch.",
        ),
        (
            "torch",
            "int8",
            "the torch backend cannot run precision int8: it runs fp32, fp16, bf16. "
            "Compile int8 with --backend onnxruntime.",
        ),
    ],
)
def test_a_precision_the_engine_cannot_run_is_one_clear_error(backend, precision, message):
    with pytest.raises(BidlError) as err:
        check_options(backend, "float32", 1, "cpu", precision)
    assert str(err.value) == message


def test_float16_input_with_another_precision_is_refused():
    with pytest.raises(BidlError, match="--input-dtype float16 runs the whole graph in float16"):
        check_options("aoti", "float16", 1, "cpu", "bf16")


def test_int8_without_or_with_too_few_calibration_samples_is_named(tmp_path):
    with pytest.raises(BidlError, match="precision int8 needs calibration samples"):
        compile_model(digits_snn(), tmp_path / "a", precision="int8")
    few, _ = digits_batch(MIN_CALIBRATION_SAMPLES - 1, seed=1)
    with pytest.raises(BidlError, match=r"calibration: 7 sample\(s\) of 8 step\(s\) are too few"):
        compile_model(digits_snn(), tmp_path / "a", precision="int8", calibration=few)
    with pytest.raises(BidlError, match=r"expected samples \[N, T, 2, 34, 34\], got shape"):
        compile_model(
            digits_snn(), tmp_path / "a", precision="int8", calibration=np.zeros((8, 8, 2, 4))
        )
    assert not (tmp_path / "a").exists()


# --- bidl compile: a config, its checkpoint, the report ---------------------------------


def test_compile_config_in_bf16_on_the_torch_backend_reports_accuracy_beside_fp32(tmp_path):
    config, work = tiny_config_checkpoint()
    result = compile_config(
        config,
        "latest.pth",
        tmp_path / "bf16",
        work_dir=str(work),
        backend="torch",
        batch_size=8,
        precision="bf16",
        eval_samples=16,
    )
    manifest = read_manifest(result.path)
    assert manifest["precision"] == "bf16" and manifest["backend"] == "torch"
    report = result.report
    assert report.samples == 16 and report.precision == "bf16"
    # the same figures, computed here from the first 16 test samples
    cfg = load_config(str(config))
    test = build_datasets(cfg, ("test",))["test"]
    xs = torch.stack([test[i]["img"] for i in range(16)])
    labels = np.array([int(test[i]["gt_label"]) for i in range(16)])
    model = load_checkpointed(config, work)
    expected = StepGraph(model, 16).run_sequence(xs).numpy()
    got = Runtime(result.path).run(xs)
    assert report.reference_top1 == pytest.approx(100 * (expected.argmax(1) == labels).mean())
    assert report.top1 == pytest.approx(100 * (got.argmax(1) == labels).mean())
    assert report.agreement == pytest.approx(100 * (got.argmax(1) == expected.argmax(1)).mean())
    assert report.max_abs_diff == pytest.approx(np.abs(got - expected).max(), rel=1e-4)
    assert 0 < report.max_abs_diff <= 0.02  # bf16: 8 bits of mantissa in the synapses
    assert report.summary().startswith("accuracy on the test split (16 samples): top-1 fp32 ")
    # the reuse check sees the precision
    again = compile_config(
        config,
        "latest.pth",
        tmp_path / "bf16",
        work_dir=str(work),
        backend="torch",
        batch_size=8,
        precision="fp16",
        use_legacy=True,
        eval_samples=0,
    )
    assert not again.reused and again.reason == "precision differs (artifact: 'bf16', now: 'fp16')"
    assert again.report is None


def test_int8_calibration_set_too_small_or_missing_is_named(tmp_path):
    config, work = tiny_config_checkpoint()
    with pytest.raises(BidlError, match="holds 48 samples, fewer than the 64 asked"):
        compile_config(config, "latest.pth", tmp_path / "a", work_dir=str(work), precision="int8")
    with pytest.raises(BidlError, match="has no data.train; add one, or compile fp16 / bf16"):
        compile_config(
            config,
            "latest.pth",
            tmp_path / "a",
            work_dir=str(work),
            precision="int8",
            cfg_options={"data.train": None},
        )
    assert not (tmp_path / "a").exists()


def test_bidl_compile_int8_prints_the_comparison_and_records_the_precision(tmp_path, capsys):
    config, work = tiny_config_checkpoint()
    out = tmp_path / "int8"
    code = main(
        [
            "compile",
            str(config),
            "--checkpoint",
            "latest.pth",
            "--work-dir",
            str(work),
            "--out",
            str(out),
            "--batch",
            "8",
            "--precision",
            "int8",
            "--calib-samples",
            "16",
            "--eval-samples",
            "16",
        ]
    )
    assert code in (0, None)
    text = capsys.readouterr().out
    assert "accuracy on the test split (16 samples): top-1 fp32" in text and "int8" in text
    manifest = json.loads((out / "net_params.json").read_text())
    assert manifest["precision"] == "int8" and manifest["calibration"]["samples"] == 16


def test_bidl_compile_refuses_an_unknown_precision(tmp_path, capsys):
    config, work = tiny_config_checkpoint()
    argv = ["compile", str(config), "--checkpoint", "latest.pth", "--work-dir", str(work)]
    code = main([*argv, "--out", str(tmp_path / "a"), "--precision", "fp8"])
    assert code not in (0, None)
    assert "unknown precision 'fp8'; use one of fp32, fp16, bf16, int8" in capsys.readouterr().err
