"""The spiking YOLO detector: BIDL ST-YOLO's parameter counts, one definition run EIM or
IIM, boxes, NMS, SimOTA, the loss, and the detector's two calls."""

import pytest
import torch

from bidl.models import build_classifier
from bidl.models.boxes import batched_nms, box_iou, cxcywh_to_xyxy, nms, xyxy_to_cxcywh
from bidl.models.detector import Detector
from bidl.models.simota import simota_assign
from bidl.neurons import reset_states
from bidl.registry import BACKBONES, BidlError

#: parameter counts of BIDL's ST-YOLO (applications/dvsdetection/st-yolo at commit
#: 9f87747c1e637ea37b5036da885105b4ec898648), from its own classes: YoloDet{N,S,X}() with 20
#: input channels, YOLOPAFPN(depth=0.67) and YOLOXHead(num_classes=2) on the backbone's
#: channels, as its config model/yolodet.yaml and GEN1 set them. ``backbone_trainable``
#: leaves out the LIF soma parameters (alpha, beta, theta, v_0 per channel), which BIDL keeps
#: as parameters with requires_grad=False and bidl as buffers.
BIDL_COUNTS = {
    "YoloDetN": dict(backbone=1058080, backbone_trainable=1056160, neck=967936, head=474325),
    "YoloDetS": dict(backbone=4194880, backbone_trainable=4191040, neck=3860992, head=1890709),
    "YoloDetX": dict(backbone=49333600, backbone_trainable=49324000, neck=24090880, head=11792341),
}
SOMA = ("alpha", "beta", "theta", "v_0")


def tiny_cfg(use_inner_loop=False, timestep=3, num_classes=3, size=64, **backbone):
    return dict(
        type="Detector",
        backbone=dict(
            type="StYolo",
            timestep=timestep,
            input_channels=2,
            h=size,
            w=size,
            width=0.125,
            use_inner_loop=use_inner_loop,
            **backbone,
        ),
        neck=dict(type="YOLOPAFPN", depth=0.33),
        head=dict(type="YOLOXHead", num_classes=num_classes),
    )


def spikes(shape, seed=0, p=0.2):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


@pytest.mark.parametrize("name", sorted(BIDL_COUNTS))
def test_parameter_counts_equal_bidl_st_yolo(name):
    with torch.device("meta"):  # counts need no memory
        model = build_classifier(
            dict(
                type="Detector",
                backbone=dict(type=name, timestep=2),
                neck=dict(type="PAFPN", depth=0.67),
                head=dict(type="YOLOXHead", num_classes=2),
            )
        )
    expected = BIDL_COUNTS[name]

    def count(module):
        return sum(p.numel() for p in module.parameters())

    soma = sum(b.numel() for n, b in model.backbone.named_buffers() if n.rsplit(".", 1)[-1] in SOMA)
    assert count(model.backbone) == expected["backbone_trainable"]
    assert count(model.backbone) + soma == expected["backbone"]
    assert count(model.neck) == expected["neck"]
    assert count(model.head) == expected["head"]


def test_bidl_names_are_registered():
    for name in ("YoloDetN", "YoloDetS", "YoloDetX", "st_yolov5n", "st_yolov5s", "st_yolov5x"):
        assert name in BACKBONES
    backbone = BACKBONES.get("st_yolov5s")(timestep=2)
    assert backbone.channels == (32, 64, 128, 256, 512) and backbone.depths == (1, 2, 3, 1)
    assert backbone.out_channels == (128, 256, 512)
    head = build_classifier(tiny_cfg() | {"head": dict(type="YOLOXHead", hidden_channels=40)}).head
    assert head.stems[0].conv.out_channels == 40  # ST-YOLO's rule would give 32
    # GEN1 frames padded to 256 x 320: maps of 32 x 40, 16 x 20, 8 x 10 (ST-YOLO's head)
    assert [s[1:] for s in backbone.feature_shapes] == [(32, 40), (16, 20), (8, 10)]


@pytest.mark.parametrize("training", [False, True])
def test_eim_equals_iim(training):
    torch.manual_seed(0)
    eim = build_classifier(tiny_cfg(use_inner_loop=False, timestep=2, size=32))
    iim = build_classifier(tiny_cfg(use_inner_loop=True, timestep=2, size=32))
    iim.load_state_dict(eim.state_dict())
    eim.train(training)
    iim.train(training)
    img = spikes((2, 2, 2, 32, 32))
    if training:
        # IIM normalises all steps' batches at once (sums in another order): a rounding-level
        # difference can flip a spike in fp32, so the two forms are compared in fp64
        eim, iim, img = eim.double(), iim.double(), img.double()
        targets = eim.example_targets(2)
        loss_e, loss_i = eim(img, **targets), iim(img, **targets)
        assert torch.allclose(loss_e["loss"], loss_i["loss"], atol=1e-5)
        loss_e["loss"].backward()
        loss_i["loss"].backward()
        for (name, a), b in zip(eim.named_parameters(), iim.parameters(), strict=True):
            scale = max(1.0, a.grad.abs().max().item())
            assert (a.grad - b.grad).abs().max().item() <= 1e-5 * scale, name
        for a, b in zip(eim.buffers(), iim.buffers(), strict=True):  # batch-norm statistics
            assert torch.allclose(a.float(), b.float(), atol=1e-5)
    else:
        with torch.no_grad():
            out_e, out_i = eim.scores(img), iim.scores(img)
        assert (out_e - out_i).abs().max().item() <= 1e-5


def test_lif_states_carry_the_scene_across_frames():
    torch.manual_seed(0)
    model = build_classifier(tiny_cfg()).eval()
    img = spikes((1, 3, 2, 64, 64))
    changed = img.clone()
    changed[:, 0] = spikes((1, 2, 64, 64), seed=5)  # only the first frame differs
    with torch.no_grad():
        a, b = model.backbone(img), model.backbone(changed)
        # ...and the whole sequence starts from zero states every call
        assert torch.equal(model.backbone(img), a)
    assert not torch.allclose(a, b)
    lif = model.backbone.body.yolo.conv2.neuron
    assert lif.mode == "analog" and lif.memb_mode[0] == 3 and lif.soma_params == "channel_share"
    reset_states(model)


def test_box_formats_and_iou():
    xyxy = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0], [20.0, 20.0, 30.0, 40.0]])
    assert torch.allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(xyxy)), xyxy)
    iou = box_iou(xyxy, xyxy)
    assert torch.allclose(iou.diagonal(), torch.ones(3))
    assert iou[0, 1].item() == pytest.approx(25 / 175)
    assert iou[0, 2].item() == 0.0
    assert torch.allclose(box_iou(xyxy_to_cxcywh(xyxy), xyxy_to_cxcywh(xyxy), "cxcywh"), iou)


def test_nms_matches_a_greedy_reference():
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(60, 2, generator=gen) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(60, 2, generator=gen) * 20], 1)
    scores = torch.rand(60, generator=gen)
    labels = torch.randint(0, 3, (60,), generator=gen)

    def reference(b, s, thr):
        order, kept = sorted(range(len(s)), key=lambda i: -float(s[i])), []
        for i in order:
            if all(box_iou(b[i : i + 1], b[j : j + 1]).item() <= thr for j in kept):
                kept.append(i)
        return kept

    assert nms(boxes, scores, 0.45).tolist() == reference(boxes, scores, 0.45)
    kept = batched_nms(boxes, scores, labels, 0.45).tolist()
    expected = []
    for c in range(3):
        idx = (labels == c).nonzero().squeeze(1)
        expected += [int(idx[i]) for i in reference(boxes[idx], scores[idx], 0.45)]
    assert kept == sorted(expected, key=lambda i: -float(scores[i]))
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_simota_picks_anchors_near_each_object():
    # a 4 x 4 grid at stride 8; one object centred on cell (1, 1), one on cell (3, 3)
    ys, xs = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    cells = torch.stack((xs, ys), -1).reshape(-1, 2).float()
    strides = torch.full((16,), 8.0)
    centers = (cells + 0.5) * 8
    gt = torch.tensor([[12.0, 12.0, 8.0, 8.0], [28.0, 28.0, 8.0, 8.0]])
    preds = torch.cat([centers, torch.full((16, 2), 8.0)], 1)  # every anchor predicts its cell
    cls = torch.zeros(16, 2)
    found = simota_assign(preds, torch.zeros(16), cls, centers, strides, gt, torch.tensor([0, 1]))
    fg = found.fg_mask.nonzero().squeeze(1).tolist()
    # each object's own cell is its best (IoU 1) match; dynamic k = 1 (sum of IoUs < 2)
    assert fg == [5, 15]
    assert found.matched_gt.tolist() == [0, 1]
    assert torch.allclose(found.matched_iou, torch.ones(2))


def test_training_forward_returns_losses_and_predictions_have_the_notes_format():
    torch.manual_seed(0)
    model = build_classifier(tiny_cfg())
    assert isinstance(model, Detector)
    img = spikes((2, 3, 2, 64, 64))
    losses = model(img, **model.example_targets(2))
    assert set(losses) == {"loss", "iou_loss", "conf_loss", "cls_loss", "num_fg"}
    assert torch.isfinite(losses["loss"])
    model.eval()
    model.test_cfg["score_thr"] = 0.0  # keep every box to check the format
    with torch.no_grad():
        preds = model(img, return_loss=False)
    assert len(preds) == 2
    for p in preds:
        assert set(p) == {"bboxes", "scores", "labels"}
        assert p["bboxes"].shape == (len(p["scores"]), 4) and p["labels"].dtype == torch.int64
        assert 0 < len(p["scores"]) <= 100
        assert torch.all(p["scores"][:-1] >= p["scores"][1:])


def test_a_batch_without_objects_trains_objectness_only():
    model = build_classifier(tiny_cfg())
    img = spikes((2, 3, 2, 64, 64))
    losses = model(img, gt_bboxes=torch.zeros(2, 4, 4), gt_labels=torch.full((2, 4), -1))
    assert losses["iou_loss"].item() == 0.0 and losses["cls_loss"].item() == 0.0
    assert losses["conf_loss"].item() > 0
    losses["loss"].backward()


def test_bad_targets_get_clear_errors():
    model = build_classifier(tiny_cfg())
    img = spikes((2, 3, 2, 64, 64))
    with pytest.raises(BidlError, match=r"gt_bboxes must be \[B, M, 4\]"):
        model(img, gt_bboxes=torch.zeros(2, 4), gt_labels=torch.zeros(2, 4))
    with pytest.raises(BidlError, match=r"gt_labels must be \[B, M\]"):
        model(img, gt_bboxes=torch.zeros(2, 3, 4), gt_labels=torch.zeros(2, 4))
    with pytest.raises(BidlError, match="needs gt_bboxes and gt_labels"):
        model(img)
    with pytest.raises(BidlError, match="set the head's num_classes"):
        model(img, gt_bboxes=torch.ones(2, 1, 4) * 10, gt_labels=torch.full((2, 1), 7))
    with pytest.raises(BidlError, match="input_channels must be a positive int"):
        build_classifier(tiny_cfg() | {"backbone": dict(type="StYolo", input_channels=0)})
    head = dict(type="YOLOXHead", num_classes=3, hidden_channels=0)
    with pytest.raises(BidlError, match="hidden_channels must be a positive int"):
        build_classifier(tiny_cfg() | {"head": head})
    with pytest.raises(BidlError, match="unknown test_cfg keys"):
        build_classifier(tiny_cfg() | {"test_cfg": dict(score=0.1)})


def test_overfits_one_batch():
    """The loss, the assignment and the decoding fit together: a few steps on one batch
    of two squares lower the loss."""
    torch.manual_seed(0)
    model = build_classifier(tiny_cfg(use_inner_loop=True, timestep=2, num_classes=2, size=32))
    img = torch.zeros(2, 2, 2, 32, 32)
    boxes = torch.tensor([[[4.0, 5.0, 16.0, 17.0]], [[14.0, 12.0, 28.0, 26.0]]])
    for b in range(2):
        x1, y1, x2, y2 = boxes[b, 0].int().tolist()
        img[b, :, b % 2, y1:y2, x1:x2] = 1.0
    labels = torch.tensor([[0], [1]])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    first = None
    for _ in range(20):
        losses = model(img, gt_bboxes=boxes, gt_labels=labels)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first if first is not None else losses["loss"].item()
    assert losses["loss"].item() < 0.85 * first


def test_postprocess_best_class_or_every_class_above_the_threshold():
    from bidl.models.yolox_head import postprocess

    # two anchors on the same place: one sure of class 1 (0.9), unsure between 0 and 2
    decoded = torch.tensor(
        [
            [
                [20.0, 20.0, 10.0, 10.0, 1.0, 0.0, 0.9, 0.0],
                [21.0, 20.0, 10.0, 10.0, 0.8, 0.5, 0.0, 0.4],
            ]
        ]
    )
    best = postprocess(decoded, score_thr=0.1)[0]
    assert best["labels"].tolist() == [1, 0]  # best class only; classes never suppress each other
    assert torch.allclose(best["scores"], torch.tensor([0.9, 0.4]))
    assert torch.allclose(best["bboxes"][0], torch.tensor([15.0, 15.0, 25.0, 25.0]))
    every = postprocess(decoded, score_thr=0.1, multi_label=True)[0]
    assert every["labels"].tolist() == [1, 0, 2]
    assert torch.allclose(every["scores"], torch.tensor([0.9, 0.4, 0.32]))
    assert len(postprocess(decoded, score_thr=0.95)[0]["scores"]) == 0
