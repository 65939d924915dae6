"""A detector compiles to two graphs: the spiking part's step graph and the neck + head
graph (``deploy/head_graph.py``); together they give PyTorch eval's scores before NMS
(within 1e-5) and its boxes. Through the CLI: ``bidl infer`` of the artifact needs no
checkpoint and gives ``bidl test``'s figures; ``bidl stream`` prints boxes and latencies;
a damaged head file is refused; an artifact from before head graphs gives one error."""

import json
import shutil

import numpy as np
import pytest
import torch
from format_writers import write_dat

from bidl.cli import main
from bidl.datasets.events import EventIntegration
from bidl.datasets.events.formats import read_event_file
from bidl.deploy.artifact import MANIFEST, read_manifest
from bidl.deploy.compile import compile_model
from bidl.deploy.head_graph import TOLERANCE, HeadGraph
from bidl.deploy.runtime import Runtime
from bidl.deploy.step_graph import StepGraph
from bidl.models import build_classifier

pytest.importorskip("onnxruntime")

MODEL = dict(
    type="Detector",
    backbone=dict(type="StYolo", timestep=3, input_channels=2, h=32, w=32, width=0.125),
    neck=dict(type="YOLOPAFPN", depth=0.33),
    head=dict(type="YOLOXHead", num_classes=3),
    test_cfg=dict(score_thr=0.0),
)


def detector():
    torch.manual_seed(0)
    model = build_classifier(MODEL)
    # a few training steps' worth of batch-norm statistics, so the norms are not identities
    with torch.no_grad():
        model.train()(torch.rand(4, 3, 2, 32, 32), **model.example_targets(4))
    return model.eval()


def spikes(seed):
    return (
        torch.rand((2, 3, 2, 32, 32), generator=torch.Generator().manual_seed(seed)) < 0.2
    ).float()


def assert_same_detections(got: dict, want: dict) -> None:
    """The same boxes, labels and scores, in any order (boxes whose scores tie within
    float32 rounding may come out of NMS either way round)."""

    def rows(found):
        table = np.column_stack(
            [found["labels"].numpy(), found["scores"].numpy(), found["bboxes"].numpy()]
        )
        return table[np.lexsort(np.round(table[:, ::-1], 2).T)]

    got_rows, want_rows = rows(got), rows(want)
    assert got_rows.shape == want_rows.shape
    assert np.array_equal(got_rows[:, 0], want_rows[:, 0])
    assert np.allclose(got_rows[:, 1], want_rows[:, 1], atol=1e-5)
    assert np.allclose(got_rows[:, 2:], want_rows[:, 2:], atol=1e-4)


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


def test_compiled_detector_with_its_onnx_head_graph_gives_pytorch_eval_boxes(tmp_path):
    model = detector()
    img = spikes(2)
    artifact = compile_model(model, tmp_path / "det", backend="onnxruntime", batch_size=2)
    manifest = read_manifest(artifact)
    head = manifest["head"]
    assert head["graph"] == "head.onnx" and "head.onnx" in manifest["files"]
    assert head["input"]["shape"] == [2, 896]  # 16 * 4 * 4 + 32 * 2 * 2 + 64 * 1 * 1
    assert head["output"]["shape"] == [2, 21, 8]  # 16 + 4 + 1 anchors, box + obj + 3 classes
    assert head["test_cfg"] == model.test_cfg
    assert head["check"]["scores_max_diff"] <= TOLERANCE
    assert head["check"]["boxes_max_diff_px"] <= head["check"]["boxes_limit_px"] == 32e-5

    features = Runtime(artifact).run(img.numpy())
    graph_head = HeadGraph(artifact, manifest)
    with torch.no_grad():
        expected_scores = model.scores(img)
        expected = model(img, return_loss=False)
    compiled_scores = torch.from_numpy(graph_head.run(features))
    assert (compiled_scores - expected_scores).abs().max().item() <= 1e-5
    for got, want in zip(graph_head.detect(features), expected, strict=True):
        assert_same_detections(got, want)
    # one sample at a time (a stream's row) is padded to the batch and gives the same
    one = torch.from_numpy(graph_head.run(features[1:]))
    assert torch.equal(one, compiled_scores[1:])


# --- through the CLI --------------------------------------------------------------------

CLIP_US, T = 100_000, 2  # DigitsDVS-Det: 100 ms clips, two steps of 50 ms in the config


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The tiny DigitsDVS-Det config, a checkpoint, and its torch artifact with the head."""
    from test_detection_engine import CONFIG

    from bidl.config import load_config
    from bidl.engine.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("det")
    config = root / "det_tiny-b8x0-digitsdvsdet.py"
    config.write_text(CONFIG.format(data=str(root / "data")))
    torch.manual_seed(0)
    model = build_classifier(load_config(config).model)
    with torch.no_grad():  # objectness and classes near 0.5, so that a fresh model has boxes
        for pred in (*model.head.obj_preds, *model.head.cls_preds):
            pred.bias.zero_()
    ckpt = save_checkpoint(root / "det.pth", model)
    art = root / "art"
    compile_args = ["--checkpoint", str(ckpt), "--backend", "torch", "--batch", "8"]
    assert main(["compile", str(config), *compile_args, "--out", str(art)]) == 0
    return config, ckpt, art


def infer_args(config, art, out):
    return ["infer", str(config), "--artifact", str(art), "--out", str(out)]


def test_bidl_infer_of_a_detector_needs_no_checkpoint_and_gives_the_test_figures(
    compiled, tmp_path, capsys
):
    config, ckpt, art = compiled
    manifest = read_manifest(art)
    assert manifest["head"]["graph"] == "head.pt" and "head.pt" in manifest["files"]
    assert manifest["head"]["check"]["scores_max_diff"] == 0.0  # eager PyTorch both sides
    assert main(["test", str(config), str(ckpt), "--out", str(tmp_path / "t.json")]) == 0
    capsys.readouterr()
    assert main(infer_args(config, art, tmp_path / "i.json")) == 0
    printed = capsys.readouterr().out
    assert "head graph: head.pt (fp32), features [8, 3584] -> scores [8, 84, 15]" in printed
    assert "mAP50:" in printed
    tested = json.loads((tmp_path / "t.json").read_text())
    inferred = json.loads((tmp_path / "i.json").read_text())
    assert inferred["boxes_per_sample"] > 1  # score_thr 0.001: every sample has boxes
    for key in ("mAP", "mAP50", "mAP75", "boxes_per_sample"):
        assert inferred[key] == pytest.approx(tested[key], abs=1e-6)
    # samples/s covers the neck, head and NMS after the steps, not the steps alone
    assert inferred["head_seconds"] > 0
    assert inferred["samples_per_s"] < inferred["samples"] / inferred["head_seconds"]


def damaged_copy(art, tmp_path, name="damaged"):
    copy = tmp_path / name
    shutil.copytree(art, copy)
    return copy


def test_a_damaged_or_linked_head_file_is_refused(compiled, tmp_path, capsys):
    config, _, art = compiled
    damaged = damaged_copy(art, tmp_path)
    with open(damaged / "head.pt", "ab") as handle:
        handle.write(b"\0")
    assert main(infer_args(config, damaged, tmp_path / "i.json")) == 1
    err = capsys.readouterr().err
    assert f"{damaged / 'head.pt'}: its content does not match the hash in {MANIFEST}" in err

    linked = damaged_copy(art, tmp_path, "linked")
    (linked / "head.pt").rename(tmp_path / "elsewhere.pt")
    (linked / "head.pt").symlink_to(tmp_path / "elsewhere.pt")
    assert main(infer_args(config, linked, tmp_path / "i.json")) == 1
    assert f"{linked / 'head.pt'}: a link or not a regular file" in capsys.readouterr().err

    unlisted = damaged_copy(art, tmp_path, "unlisted")
    manifest = json.loads((unlisted / MANIFEST).read_text())
    del manifest["files"]["head.pt"]
    (unlisted / MANIFEST).write_text(json.dumps(manifest))
    assert main(infer_args(config, unlisted, tmp_path / "i.json")) == 1
    assert "the graph 'head.pt' is not among the hashed files" in capsys.readouterr().err


def old_artifact(art, tmp_path):
    """The artifact as bidl compiled detectors before head graphs: no head entry, no file."""
    old = damaged_copy(art, tmp_path, "old")
    manifest = json.loads((old / MANIFEST).read_text())
    del manifest["head"], manifest["files"]["head.pt"]
    (old / MANIFEST).write_text(json.dumps(manifest))
    (old / "head.pt").unlink()
    return old


def test_an_old_artifact_without_head_needs_its_checkpoint_in_one_clear_error(
    compiled, tmp_path, capsys
):
    config, ckpt, art = compiled
    old = old_artifact(art, tmp_path)
    assert main(infer_args(config, old, tmp_path / "old.json")) == 1
    assert capsys.readouterr().err.strip() == (
        f"bidl infer: error: {old} holds only the spiking part of the detector {config} (it was compiled "
        f"before bidl compiled a detector's neck and head): recompile it with `bidl compile "
        f"{config} --checkpoint CKPT` to add the head graph, or give --checkpoint (the one it "
        f"was compiled from) to run the neck and head in PyTorch"
    )
    # the checkpoint's neck and head still serve it, with the head graph's figures
    assert main([*infer_args(config, old, tmp_path / "old.json"), "--checkpoint", str(ckpt)]) == 0
    assert main(infer_args(config, art, tmp_path / "new.json")) == 0
    with_graph = json.loads((tmp_path / "new.json").read_text())
    from_checkpoint = json.loads((tmp_path / "old.json").read_text())
    for key in ("mAP", "mAP50", "boxes_per_sample"):
        assert from_checkpoint[key] == pytest.approx(with_graph[key], abs=1e-6)
    # reusing it (--use_legacy 1) recompiles, saying why
    capsys.readouterr()
    argv = ["compile", str(config), "--checkpoint", str(ckpt), "--backend", "torch"]
    assert main([*argv, "--batch", "8", "--out", str(old), "--use_legacy", "1"]) == 0
    assert "it holds no head graph" in capsys.readouterr().out
    assert read_manifest(old)["head"]["graph"] == "head.pt"


def clip_recording(config, path, clips=3):
    """Test clips of DigitsDVS-Det one after the other (100 ms each), as a .dat recording;
    events at a clip's very end are dropped, so each stream window is one clip."""
    from bidl.config import load_config
    from bidl.datasets import build_dataset

    dataset = build_dataset(load_config(config).data.test)
    cols = {k: [] for k in "xytp"}
    for clip in range(clips):
        lo, hi = dataset.data_infos[clip]["events"]
        keep = dataset.events["t"][lo:hi] < CLIP_US
        for key in "xyp":
            cols[key].append(dataset.events[key][lo:hi][keep].astype(np.int64))
        cols["t"].append(dataset.events["t"][lo:hi][keep].astype(np.int64) + clip * CLIP_US)
    events = {k: np.concatenate(v) for k, v in cols.items()}
    events["t"][0] = 0  # the stream's time origin: the start of the first clip
    write_dat(path, events, size=(64, 64))
    return path


def test_bidl_stream_of_a_detector_prints_boxes_and_latencies(compiled, tmp_path, capsys):
    config, _, art = compiled
    recording = clip_recording(config, tmp_path / "clips_td.dat")
    argv = ["stream", str(config), "--artifact", str(art), "--source", str(recording)]
    out = tmp_path / "stream.json"
    frame = ["--frame-us", str(CLIP_US // T), "--speed", "0", "--out", str(out)]
    assert main([*argv, *frame, "--every-step"]) == 0
    printed = capsys.readouterr().out
    assert "head graph: head.pt, run after every 1 step(s) of a window and after its last" in (
        printed
    )
    assert "step 0 t=0.050 s: " in printed and "window 2 [0.200, 0.300) s: " in printed
    assert " boxes: " in printed and "head " in printed
    assert "steps: 6, windows: 3; per-step latency p50 " in printed
    assert "step + head p50 " in printed and "(6 steps ran the head;" in printed
    figures = json.loads(out.read_text())
    assert figures["steps"] == 6 and figures["head_every"] == 1
    assert set(figures["step_head_latency_ms"]) == {"p50", "p99", "max"}
    assert figures["step_head_latency_ms"]["p50"] >= figures["latency_ms"]["p50"] > 0

    # each window's boxes are those of the same window's frames run whole (bidl infer's way)
    events = read_event_file(recording)
    integrate = EventIntegration(T, "time", CLIP_US // T, True, (64, 64))
    samples = np.stack(
        [
            integrate(events[(events["t"] >= s) & (events["t"] < s + CLIP_US)], (64, 64), s)
            for s in range(0, 3 * CLIP_US, CLIP_US)
        ]
    )
    manifest = read_manifest(art)
    with Runtime(art) as runtime:
        expected = HeadGraph(art, manifest).detect(runtime.run(samples.astype(np.float32)))
    for window, want in zip(figures["windows"], expected, strict=True):
        assert window["classes"] == [str(v) for v in window["labels"]]
        got = {k: torch.tensor(window[k]) for k in ("bboxes", "scores", "labels")}
        assert_same_detections(got, want)

    # every second step: the head runs at each window's end only (T = 2)
    assert main([*argv, *frame, "--head-every", "2", "--every-step"]) == 0
    printed = capsys.readouterr().out
    assert "step 0 t=0.050 s: head not run, step latency " in printed
    assert "(3 steps ran the head;" in printed


def test_bidl_stream_of_an_old_detector_artifact_says_to_recompile(compiled, tmp_path, capsys):
    config, _, art = compiled
    old = old_artifact(art, tmp_path)
    recording = clip_recording(config, tmp_path / "clips_td.dat", clips=1)
    argv = ["stream", str(config), "--artifact", str(old), "--source", str(recording)]
    assert main([*argv, "--speed", "0"]) == 1
    assert "bidl stream runs the head graph after the steps: recompile it with" in (
        capsys.readouterr().err
    )


def test_a_reduced_precision_detector_is_compared_by_map(compiled, tmp_path, capsys):
    config, ckpt, _ = compiled
    assert main(["test", str(config), str(ckpt), "--out", str(tmp_path / "t.json")]) == 0
    tested = json.loads((tmp_path / "t.json").read_text())
    capsys.readouterr()
    argv = ["compile", str(config), "--checkpoint", str(ckpt), "--batch", "8"]
    assert main([*argv, "--precision", "fp16", "--out", str(tmp_path / "fp16")]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("detection on the test split"))
    # the float32 side is bidl test's model: the same mAP
    assert f"mAP fp32 {tested['mAP']:.4f}, fp16 " in line
    assert f"mAP50 fp32 {tested['mAP50']:.4f}, fp16 " in line
    assert "largest feature difference" in line
