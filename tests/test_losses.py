import pytest
import torch
import torch.nn.functional as F

from bidl.registry import LOSSES, BidlError, build


def test_label_smooth_loss_matches_smoothed_targets():
    scores = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    loss = build(dict(type="LabelSmoothLoss", label_smooth_val=0.3, loss_weight=2.0), LOSSES)
    target = F.one_hot(labels, 3).float() * 0.7 + 0.1
    expected = -(target * scores.log_softmax(dim=1)).sum(dim=1).mean() * 2.0
    assert loss(scores, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_cross_entropy_loss_weight_scales():
    scores, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    plain = build(dict(type="CrossEntropyLoss"), LOSSES)(scores, labels)
    double = build(dict(type="CrossEntropyLoss", loss_weight=2.0), LOSSES)(scores, labels)
    assert double.item() == pytest.approx(2 * plain.item())


def test_bad_loss_arguments_are_reported():
    with pytest.raises(BidlError, match="label_smooth_val must be in"):
        build(dict(type="LabelSmoothLoss", label_smooth_val=1.5), LOSSES)
    with pytest.raises(BidlError, match="reduction must be"):
        build(dict(type="CrossEntropyLoss", reduction="avg"), LOSSES)


def test_label_smoothing_takes_class_probabilities_as_mixup_makes_them():
    from bidl.models.losses import LabelSmoothLoss

    torch.manual_seed(0)
    scores, labels = torch.randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])
    loss = LabelSmoothLoss(label_smooth_val=0.1)
    one_hot = F.one_hot(labels, 4)
    assert torch.allclose(loss(scores, one_hot), loss(scores, labels), atol=1e-6)
    mixed = 0.7 * one_hot.float() + 0.3 * one_hot.float().roll(1, 0)
    expected = 0.7 * loss(scores, labels) + 0.3 * loss(scores, labels.roll(1, 0))
    assert torch.allclose(loss(scores, mixed), expected, atol=1e-6)
