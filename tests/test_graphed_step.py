"""``runner.cuda_graph``: the training step's forward and backward replayed from CUDA graphs.

The choice and its error messages are checked everywhere; the replay itself (graphed
steps equal eager steps, a second graph for a new input signature, the fallback of a
model that cannot be captured, ``bidl train``'s default) needs a CUDA device."""

import json
import logging

import pytest
import torch
from conftest import write_tiny_config
from torch import nn

from bidl.engine import load_checkpoint, train_model
from bidl.engine.graphed_step import GraphedLosses, cuda_graph_obstacle
from bidl.registry import BACKBONES, BidlError, build

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_the_obstacles_are_named():
    model = nn.Sequential(nn.Linear(2, 2))
    cuda = torch.device("cuda")
    assert "CUDA device (training on cpu)" in cuda_graph_obstacle(model, torch.device("cpu"))
    assert cuda_graph_obstacle(model, cuda) is None
    assert "sync_bn" in cuda_graph_obstacle(model, cuda, sync_bn=True)
    assert "detector" in cuda_graph_obstacle(model, cuda, detector=True)
    assert "float16 loss scaling" in cuda_graph_obstacle(model, cuda, loss_scaling=True)
    assert "skip_nonfinite" in cuda_graph_obstacle(model, cuda, skip_nonfinite=True)
    assert "runner.compile" in cuda_graph_obstacle(model, cuda, compiled=True)
    model[0].register_forward_hook(lambda *args: None)
    assert cuda_graph_obstacle(model, cuda) == "0 has module hooks"


def test_asking_for_graphs_on_the_cpu_is_one_clear_error(tmp_path):
    config = write_tiny_config(tmp_path)
    with pytest.raises(BidlError) as caught:
        train_model(
            config,
            work_dir=str(tmp_path / "w"),
            device="cpu",
            cfg_options={"runner.cuda_graph": True},
        )
    assert str(caught.value) == (
        "runner.cuda_graph=True cannot be met: CUDA graphs need a CUDA device (training on cpu)"
    )


def test_a_wrong_setting_is_refused_with_its_key(tmp_path):
    config = write_tiny_config(tmp_path)
    with pytest.raises(BidlError, match=r"runner\.cuda_graph"):
        train_model(config, work_dir=str(tmp_path / "w"), cfg_options={"runner.cuda_graph": "on"})


class Classifier(nn.Module):
    """A spiking backbone and a loss, called as the runner calls its training module."""

    def __init__(self):
        super().__init__()
        self.backbone = build(
            dict(type="SeqClif3Fc3DmIt", timestep=4, c0=2, h0=16, w0=16, nclass=3), BACKBONES
        )

    def forward(self, img, target):
        scores = self.backbone(img)
        if target.dtype.is_floating_point:  # soft targets (mixup)
            loss = -(target * scores.log_softmax(-1)).sum(-1).mean()
        else:
            loss = nn.functional.cross_entropy(scores, target)
        labels = target.argmax(-1) if target.dim() > 1 else target
        top = {"top-1": (scores.argmax(-1) == labels).float().mean()}  # nested, as ClsHead's
        return {"loss": loss, "accuracy": top, "mean_score": scores.detach().mean()}


def _steps(module, forward, batches, lr=0.1):
    optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
    losses = []
    for img, target in batches:
        out = forward(img, target)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].detach())  # not the autograd graph
    return losses


def _batches(n, soft=False):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        img = (torch.rand(8, 4, 2, 16, 16, generator=g) < 0.3).float().cuda()
        labels = torch.randint(0, 3, (8,), generator=g).cuda()
        out.append((img, nn.functional.one_hot(labels, 3).float() if soft else labels))
    return out


@needs_cuda
def test_graphed_steps_equal_eager_steps():
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    eager = Classifier().cuda()
    graphed_module = Classifier().cuda()
    graphed_module.load_state_dict(eager.state_dict())
    batches = _batches(6)
    eager_losses = _steps(eager, eager, batches)
    graphed = GraphedLosses(graphed_module, required=True)
    graphed_losses = _steps(graphed_module, graphed, batches)
    assert len(graphed.graphs) == 1 and graphed.broken is None
    # every step's loss is its own tensor (the graph's outputs are copied out)
    assert len({t.data_ptr() for t in graphed_losses}) == len(graphed_losses)
    torch.testing.assert_close(torch.stack(graphed_losses), torch.stack(eager_losses))
    for (name, a), b in zip(
        eager.state_dict().items(), graphed_module.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)  # buffers included


@needs_cuda
def test_a_new_input_signature_gets_its_own_graph():
    module = Classifier().cuda()
    graphed = GraphedLosses(module, required=True)
    _steps(module, graphed, _batches(2, soft=True) + _batches(2))
    assert len(graphed.graphs) == 2


class Syncing(Classifier):
    def forward(self, img, target):
        out = super().forward(img, target)
        if out["loss"].item() > 1e9:  # a host synchronisation: CUDA graphs refuse it
            raise AssertionError
        return out


@needs_cuda
def test_a_step_that_cannot_be_captured_trains_eagerly_or_is_refused(caplog):
    module = Syncing().cuda()
    graphed = GraphedLosses(module)
    with caplog.at_level(logging.WARNING, logger="bidl"):
        losses = _steps(module, graphed, _batches(2))
    assert graphed.broken is not None and not graphed.graphs
    assert all(torch.isfinite(loss) for loss in losses)
    assert "CUDA graph capture failed" in caplog.text and "training eagerly" in caplog.text
    with pytest.raises(BidlError, match=r"runner.cuda_graph=True: the training step cannot"):
        _steps(module, GraphedLosses(module, required=True), _batches(1))


@needs_cuda
def test_bidl_train_on_cuda_uses_graphs_by_default(tmp_path):
    config = write_tiny_config(tmp_path)
    metrics = train_model(config, work_dir=str(tmp_path / "w"), device="cuda")
    log = (tmp_path / "w" / "train.log").read_text()
    assert "CUDA graphs of the forward and backward" in log
    assert "training step captured as CUDA graphs" in log
    records = [json.loads(x) for x in (tmp_path / "w" / "log.json").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] for r in records if r["mode"] == "train")  # no NaN
    assert metrics["accuracy_top-1"] >= 80.0  # as on the CPU (tests/test_runner.py)


@needs_cuda
def test_a_graphed_run_resumed_on_cuda_ends_with_the_same_weights(tmp_path):
    config = write_tiny_config(tmp_path)
    common = dict(device="cuda", deterministic=True)
    train_model(config, work_dir=str(tmp_path / "full"), **common)
    resume = {"resume_from": str(tmp_path / "full" / "epoch_1.pth")}
    train_model(config, work_dir=str(tmp_path / "resumed"), cfg_options=resume, **common)
    full, resumed = (
        load_checkpoint(tmp_path / run / "latest.pth")["state_dict"] for run in ("full", "resumed")
    )
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    eager = {"runner.cuda_graph": False}
    train_model(config, work_dir=str(tmp_path / "eager"), cfg_options=eager, **common)
    for key, value in load_checkpoint(tmp_path / "eager" / "latest.pth")["state_dict"].items():
        torch.testing.assert_close(value, full[key], rtol=1e-4, atol=1e-5, msg=key)
