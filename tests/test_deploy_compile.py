"""Compile: the artifact folder, its manifest, reuse by hashes, and the commands."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from deploy_helpers import (
    load_checkpointed,
    tiny_artifact,
    tiny_config_checkpoint,
    tiny_snn,
)

from bidl.cli import main
from bidl.config import load_config
from bidl.deploy import (
    StepGraph,
    compile_config,
    compile_model,
    default_artifact_dir,
    reuse_reason,
)
from bidl.deploy.artifact import file_sha256, read_manifest, weights_hash, write_artifact
from bidl.engine import save_checkpoint
from bidl.registry import BidlError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
ROOT = Path(__file__).resolve().parents[1]


def test_artifact_holds_graph_summary_and_a_manifest_of_the_states():
    folder = tiny_artifact()
    assert sorted(p.name for p in folder.iterdir()) == [
        "net_params.json",
        "step.onnx",
        "summary.txt",
    ]
    assert [p.name for p in folder.parent.iterdir()] == ["tiny"]  # no temporary folder left
    manifest = read_manifest(folder)
    graph = StepGraph(tiny_snn(), batch_size=2)
    assert manifest["states"] == [spec.as_dict() for spec in graph.states]
    assert manifest["input"] == {
        "name": "x",
        "shape": [2, 2, 8, 8],
        "dtype": "float32",
        "scale": 1.0,
    }
    assert manifest["output"] == {"name": "y", "shape": [2, 5], "dtype": "float32"}
    assert (manifest["batch_size"], manifest["timesteps"], manifest["aggregation"]) == (
        2,
        4,
        "mean",
    )
    assert manifest["hashes"]["weights"] == weights_hash(tiny_snn())
    assert "body.0.neuron.v" in (folder / "summary.txt").read_text()


def write_graph(content: bytes):
    return lambda folder: (folder / "step.onnx").write_bytes(content)


def test_rewriting_an_artifact_replaces_the_folder_and_leaves_nothing_beside(tmp_path):
    manifest = json.loads((tiny_artifact() / "net_params.json").read_text())
    write_artifact(tmp_path / "art", write_graph(b"old"), manifest, "first")
    (tmp_path / "art" / "stray.txt").write_text("from the old artifact")
    write_artifact(tmp_path / "art", write_graph(b"new"), manifest, "second")
    files = sorted(p.name for p in (tmp_path / "art").iterdir())
    assert files == ["net_params.json", "step.onnx", "summary.txt"]
    assert (tmp_path / "art" / "step.onnx").read_bytes() == b"new"
    hashes = read_manifest(tmp_path / "art")["files"]
    assert hashes == {"step.onnx": file_sha256(tmp_path / "art" / "step.onnx")}
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


def test_a_failed_compile_leaves_the_previous_artifact_intact(tmp_path):
    def failing_writer(folder):
        (folder / "step.onnx").write_bytes(b"half")
        raise BidlError("export failed")

    manifest = json.loads((tiny_artifact() / "net_params.json").read_text())
    write_artifact(tmp_path / "art", write_graph(b"good"), manifest, "")
    with pytest.raises(BidlError, match="export failed"):
        write_artifact(tmp_path / "art", failing_writer, manifest, "")
    assert (tmp_path / "art" / "step.onnx").read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


@pytest.fixture(scope="module")
def compiled_tiny(tmp_path_factory):
    """(config, checkpoint, artifact folder) of the trained tiny config at batch 2."""
    config, work_dir = tiny_config_checkpoint()
    ckpt = work_dir / "latest.pth"
    folder = compile_config(str(config), ckpt, tmp_path_factory.mktemp("c") / "art", batch_size=2)
    return str(config), ckpt, folder.path


def test_use_legacy_reuses_an_artifact_whose_hashes_match(compiled_tiny):
    config, ckpt, folder = compiled_tiny
    manifest_before = (folder / "net_params.json").stat().st_mtime_ns
    result = compile_config(config, ckpt, folder, use_legacy=True, batch_size=2)
    assert result.reused
    assert (folder / "net_params.json").stat().st_mtime_ns == manifest_before


def test_use_legacy_refuses_an_artifact_of_other_weights(compiled_tiny, tmp_path):
    config, ckpt, folder = compiled_tiny
    model = load_checkpointed(config, ckpt.parent)
    with torch.no_grad():
        model.backbone.head[-1].bias.add_(1.0)
    changed = save_checkpoint(tmp_path / "changed.pth", model)
    assert reuse_reason(config, changed, folder, batch_size=2).startswith("hashes.weights differs")


def test_use_legacy_refuses_an_artifact_of_another_config(compiled_tiny):
    config, ckpt, folder = compiled_tiny
    options = {"model.backbone.amode": "sum"}
    reason = reuse_reason(config, ckpt, folder, batch_size=2, cfg_options=options)
    assert reason.startswith("hashes.config differs")


def test_use_legacy_refuses_an_artifact_of_another_batch_size(compiled_tiny):
    config, ckpt, folder = compiled_tiny
    reason = reuse_reason(config, ckpt, folder, batch_size=4)
    assert reason == "batch_size differs (artifact: 2, now: 4)"


def test_use_legacy_refuses_a_corrupted_artifact(compiled_tiny, tmp_path):
    config, ckpt, folder = compiled_tiny
    damaged = shutil.copytree(folder, tmp_path / "damaged")
    (damaged / "step.onnx").write_bytes(b"not a graph")
    assert "corrupted" in reuse_reason(config, ckpt, damaged, batch_size=2)


def test_compile_and_infer_reproduce_bidl_test_accuracy(tmp_path, capsys):
    config, work_dir = tiny_config_checkpoint()
    tested, inferred, art = tmp_path / "test.json", tmp_path / "infer.json", tmp_path / "art"
    common = ["--work-dir", str(work_dir)]
    assert main(["test", str(config), "latest.pth", "--out", str(tested), *common]) == 0
    assert main(["compile", str(config), "--checkpoint", "latest.pth", "--batch", "8",
                 "--out", str(art), *common]) == 0  # fmt: skip
    assert main(["infer", str(config), "--artifact", str(art), "--out", str(inferred)]) == 0
    expected, got = json.loads(tested.read_text()), json.loads(inferred.read_text())
    assert got["accuracy_top-1"] == expected["accuracy_top-1"]
    assert got["accuracy_top-2"] == expected["accuracy_top-2"]
    printed = capsys.readouterr().out
    assert f"top-1: {got['accuracy_top-1']:.2f} %" in printed and "frames/s:" in printed


def test_tools_test_use_lyngor_compiles_then_reuses(tmp_path, capsys, monkeypatch):
    config, work_dir = tiny_config_checkpoint()
    spec = importlib.util.spec_from_file_location("bidl_tools_test", ROOT / "tools" / "test.py")
    tools_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools_test)
    monkeypatch.chdir(tmp_path)  # the artifact goes to ./model_files/
    argv = ["--config", str(config), "--checkpoint", "latest.pth", "--work-dir", str(work_dir)]
    argv += ["--use_lyngor", "1", "--b", "4", "--use_legacy", "1"]
    assert tools_test.evaluate_compiled(tools_test.parse_args(argv)) == 0
    first = capsys.readouterr().out
    assert "cannot reuse model_files/custom/tiny_blinks_b4: artifact folder" in first
    assert "compiled model_files/custom/tiny_blinks_b4" in first and "top-1:" in first
    assert tools_test.evaluate_compiled(tools_test.parse_args([*argv, "--c", "1"])) == 0
    second = capsys.readouterr().out
    assert "reusing model_files/custom/tiny_blinks_b4" in second and "top-1:" not in second


def test_default_artifact_folder_follows_bidl_layout():
    cfg = load_config("clif3fc3dm_itout-b16x1-digitsdvs")
    assert default_artifact_dir(cfg, 16, "onnxruntime", "float32") == Path(
        "model_files/dvs/clif3fc3dm_itout_digitsdvs_b16"
    )
    assert (
        default_artifact_dir(cfg, 1, "aoti", "uint8").name
        == "clif3fc3dm_itout_digitsdvs_b1_uint8_aoti"
    )


def test_a_missing_optional_package_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(BidlError, match=r"pip install 'bidl\[deploy\]'"):
        compile_model(tiny_snn(), tmp_path / "art")


def test_the_package_and_cli_import_without_the_deploy_extra():
    import subprocess

    code = (
        "import sys\n"
        "for name in ('onnx', 'onnxruntime', 'onnxscript', 'nir'): sys.modules[name] = None\n"
        "import bidl.deploy, bidl.cli\n"
        "bidl.cli.build_parser()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_infer_of_a_missing_artifact_is_one_clear_line(tmp_path, capsys):
    config, _ = tiny_config_checkpoint()
    assert main(["infer", str(config), "--artifact", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "artifact folder" in err and "does not exist; compile one with" in err
    assert "Traceback" not in err
