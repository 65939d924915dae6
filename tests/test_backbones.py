import pytest
import torch

from bidl.models import build_classifier
from bidl.neurons import reset_states
from bidl.registry import BACKBONES, BidlError, build

# each name in both loop forms: BIDL's ...Itout (head per step) and ...It (head once on the
# time-averaged features) are different networks, each runnable either way
NAMES = ["SeqClif3Fc3DmItout", "SeqClif3Fc3DmIt", "SeqClif5Fc2DmItout", "SeqClif5Fc2DmIt"]
SIZE = {"SeqClif3Fc3Dm": 16, "SeqClif5Fc2Dm": 64}


def make_pair(name: str, **kwargs):
    """The network ``name`` builds, with the time loop outside and inside the layers."""
    size = SIZE[name.removesuffix("out").removesuffix("It")]
    config = dict(type=name, timestep=4, c0=2, h0=size, w0=size, nclass=5, **kwargs)
    torch.manual_seed(0)
    outer = build(dict(config, use_inner_loop=False), BACKBONES)
    inner = build(dict(config, use_inner_loop=True), BACKBONES)
    inner.load_state_dict(outer.state_dict())
    return outer, inner


def spikes(batch=3, steps=4, size=16):
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(batch, steps, 2, size, size, generator=generator) < 0.3).float()


@pytest.mark.parametrize("itout,it", [NAMES[:2], NAMES[2:]])
def test_it_names_loop_inside_and_read_out_the_time_mean(itout, it):
    outer = build(dict(type=itout, h0=64, w0=64), BACKBONES)
    inner = build(dict(type=it, h0=64, w0=64), BACKBONES)
    assert type(outer) is type(inner)
    assert (outer.use_inner_loop, outer.readout) == (False, "per_step")
    assert (inner.use_inner_loop, inner.readout) == (True, "time_mean")


def test_it_and_itout_differ_with_the_same_weights():
    _, it = make_pair("SeqClif3Fc3DmIt")
    _, itout = make_pair("SeqClif3Fc3DmItout")
    itout.load_state_dict(it.state_dict())
    it.eval(), itout.eval()
    # BIDL's It averages the last feature map over time before its MLP head (with ReLUs)
    x = spikes()
    assert (it(x) - itout(x)).abs().max().item() > 1e-4
    expected = it(x)
    reset_states(it)
    features = torch.stack([it.body(x_t) for x_t in x.transpose(0, 1)])
    assert torch.allclose(expected, it.head(features.mean(dim=0)), atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_eim_and_iim_give_the_same_logits_and_gradients(name, training):
    outer, inner = make_pair(name)
    outer.train(training), inner.train(training)
    size = outer.input_shape[-1]
    x = spikes(size=size)
    y_outer, y_inner = outer(x), inner(x)
    assert y_outer.shape == (3, 5)
    assert (y_outer - y_inner).abs().max().item() <= 1e-5
    y_outer.square().sum().backward()
    y_inner.square().sum().backward()
    # a gradient that is zero in exact arithmetic (a conv bias under batch norm) is rounding
    # noise in both runs: it must stay tiny; every other one must agree to 1e-5 relative
    zero = 1e-6 * max(p.grad.abs().max() for p in outer.parameters())
    for (name_, p_outer), p_inner in zip(outer.named_parameters(), inner.parameters(), strict=True):
        scale = p_outer.grad.abs().max()
        if scale < zero:
            assert p_inner.grad.abs().max() < zero, name_
            continue
        assert ((p_outer.grad - p_inner.grad).abs().max() / scale).item() <= 1e-5, name_


@pytest.mark.parametrize("name", NAMES)
def test_eim_and_iim_update_batch_norm_statistics_alike(name):
    outer, inner = make_pair(name)
    x = spikes(size=outer.input_shape[-1])
    outer(x), inner(x)
    for (name, b_outer), b_inner in zip(outer.named_buffers(), inner.buffers(), strict=True):
        assert torch.allclose(b_outer.float(), b_inner.float(), atol=1e-6), name


def test_each_forward_starts_from_a_fresh_state():
    outer, _ = make_pair(NAMES[0])
    outer.eval()
    x = spikes()
    assert torch.equal(outer(x), outer(x))


def test_bidl_keyword_aliases_equal_long_names():
    by_alias = build(dict(type="SeqClif3Fc3DmItout", c0=3, h0=24, w0=32), BACKBONES)
    by_name = build(dict(type="SeqClif3Fc3DmItout", input_channels=3, h=24, w=32), BACKBONES)
    assert by_alias.input_shape == by_name.input_shape == (3, 24, 32)


def test_wrong_input_shape_names_expected_layout():
    outer, _ = make_pair(NAMES[0])
    with pytest.raises(BidlError) as err:
        outer(torch.zeros(3, 4, 2, 32, 32))
    assert str(err.value).startswith(
        "SeqClif3Fc3Dm expects input [B, T, 2, 16, 16] (batch, time, channels, height, width); "
        "got [3, 4, 2, 32, 32]"
    )


def test_missing_time_axis_is_reported():
    outer, _ = make_pair(NAMES[0])
    with pytest.raises(BidlError, match=r"got \[3, 2, 16, 16\]"):
        outer(torch.zeros(3, 2, 16, 16))


def test_analog_mode_and_channel_share_build_and_run():
    model = build(
        dict(
            type="SeqClif3Fc3DmItout",
            use_inner_loop=True,
            timestep=2,
            c0=2,
            h0=16,
            w0=16,
            nclass=4,
            cmode="analog",
            soma_params="channel_share",
            amode="sum",
        ),
        BACKBONES,
    )
    assert model(spikes(batch=2, steps=2)).shape == (2, 4)


def test_the_time_mean_readout_takes_amode_mean_only():
    with pytest.raises(BidlError) as err:
        build(dict(type="SeqClif3Fc3DmIt", h0=16, w0=16, amode="sum"), BACKBONES)
    assert str(err.value) == (
        "SeqClif3Fc3Dm: readout='time_mean' averages the features over time, so amode must "
        "be 'mean' (got 'sum'); use readout='per_step' for amode='sum'"
    )


def test_classifier_returns_losses_in_training_and_probabilities_in_test():
    model = build_classifier(
        dict(
            type="ImageClassifier",
            backbone=dict(type="SeqClif3Fc3DmItout", timestep=4, c0=2, h0=16, w0=16, nclass=5),
            head=dict(
                type="ClsHead",
                loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1),
                topk=(1, 5),
                cal_acc=True,
            ),
        )
    )
    losses = model(spikes(), torch.tensor([0, 1, 2]))
    assert losses["loss"].ndim == 0 and losses["loss"].requires_grad
    assert set(losses["accuracy"]) == {"top-1", "top-5"}
    assert losses["accuracy"]["top-5"].item() == 100.0
    probs = model(spikes(), return_loss=False)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))


def test_training_forward_without_labels_is_reported():
    model = build_classifier(
        dict(type="ImageClassifier", backbone=dict(type="SeqClif3Fc3DmItout", h0=16, w0=16))
    )
    with pytest.raises(BidlError, match="needs gt_label"):
        model(spikes(), return_loss=True)
