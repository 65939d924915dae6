"""A detector's spiking part compiles to a step graph (ONNX Runtime); the neck and head run
after its last step and give PyTorch eval's boxes (scores before NMS within 1e-5)."""

import json

import pytest
import torch

from bidl.deploy.compile import compile_model
from bidl.deploy.runtime import Runtime
from bidl.deploy.step_graph import StepGraph
from bidl.models import build_classifier

pytest.importorskip("onnxruntime")


def detector():
    torch.manual_seed(0)
    model = build_classifier(
        dict(
            type="Detector",
            backbone=dict(type="StYolo", timestep=3, input_channels=2, h=32, w=32, width=0.125),
            neck=dict(type="YOLOPAFPN", depth=0.33),
            head=dict(type="YOLOXHead", num_classes=3),
            test_cfg=dict(score_thr=0.0),
        )
    )
    # a few training steps' worth of batch-norm statistics, so the norms are not identities
    with torch.no_grad():
        model.train()(torch.rand(4, 3, 2, 32, 32), **model.example_targets(4))
    return model.eval()


def spikes(seed):
    return (
        torch.rand((2, 3, 2, 32, 32), generator=torch.Generator().manual_seed(seed)) < 0.2
    ).float()


def test_the_step_graph_is_the_spiking_part_and_the_head_follows():
    model = detector()
    img = spikes(1)
    graph = StepGraph(model, batch_size=2)
    assert graph.neck is None  # the neck reads maps, not the step's features
    with torch.no_grad():
        features = graph.run_sequence(img)
        assert torch.allclose(features, model.backbone(img), atol=1e-6)
        expected = model.scores(img)
        assert (model.scores_from_features(features) - expected).abs().max().item() <= 1e-5


def test_compiled_detector_gives_pytorch_eval_boxes(tmp_path):
    model = detector()
    img = spikes(2)
    artifact = compile_model(model, tmp_path / "det", backend="onnxruntime", batch_size=2)
    features = torch.from_numpy(Runtime(artifact).run(img.numpy()))
    with torch.no_grad():
        expected_scores = model.scores(img)
        compiled_scores = model.scores_from_features(features)
        expected = model(img, return_loss=False)
        compiled = model.detect_from_features(features)
    assert (compiled_scores - expected_scores).abs().max().item() <= 1e-5
    for got, want in zip(compiled, expected, strict=True):
        assert torch.equal(got["labels"], want["labels"])
        assert torch.allclose(got["bboxes"], want["bboxes"], atol=1e-4)
        assert torch.allclose(got["scores"], want["scores"], atol=1e-5)


def test_bidl_compile_and_infer_a_detector_report_the_test_figures(tmp_path, capsys):
    from test_detection_engine import CONFIG

    from bidl.cli import main
    from bidl.config import load_config
    from bidl.engine.checkpoint import save_checkpoint

    config = tmp_path / "det_tiny-b8x0-digitsdvsdet.py"
    config.write_text(CONFIG.format(data=str(tmp_path / "data")))
    torch.manual_seed(0)
    model = build_classifier(load_config(config).model)
    ckpt = save_checkpoint(tmp_path / "det.pth", model)
    art = tmp_path / "art"
    compile_args = ["--checkpoint", str(ckpt), "--backend", "torch", "--batch", "8"]
    assert main(["compile", str(config), *compile_args, "--out", str(art)]) == 0
    assert main(["test", str(config), str(ckpt), "--out", str(tmp_path / "t.json")]) == 0
    infer = ["infer", str(config), "--artifact", str(art), "--out", str(tmp_path / "i.json")]
    assert main(infer) == 1  # a detector's artifact needs the checkpoint of its head
    assert "give --checkpoint" in capsys.readouterr().err
    assert main([*infer, "--checkpoint", str(ckpt)]) == 0
    assert "mAP50:" in capsys.readouterr().out
    tested = json.loads((tmp_path / "t.json").read_text())
    inferred = json.loads((tmp_path / "i.json").read_text())
    for key in ("mAP", "mAP50", "boxes_per_sample"):
        assert inferred[key] == pytest.approx(tested[key], abs=1e-6)
