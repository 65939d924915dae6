"""The model zoo: every backbone gives the same logits and gradients in EIM and IIM, with
LIF and LIF+ cells; segments chain to the whole model; ``bidl list models``."""

import pytest
import torch

from bidl.cli import main
from bidl.registry import BACKBONES, BidlError, build

SEQ = dict(timestep=2, h=16, w=16, nclass=4)
RESNET = dict(
    timestep=3, h=16, w=16, input_channels=2, stem_channels=8, low_resolut=True, noise=0, nclass=4
)
TINY = {
    "SeqClif3Fc3Dm": dict(SEQ, c0=2),
    "SeqClif5Fc2Dm": dict(SEQ, c0=2, h=64, w=64),
    "SeqClif5Fc2Cd": dict(SEQ, h=64, w=64),
    "SeqClif7Fc1Cd": dict(SEQ, h=128, w=128),  # seven 2x2 pools down to 1x1, as in BIDL
    "SeqClif3Flif2Dg": dict(SEQ, fmode="analog"),
    "SeqClif7Fc1Dg": dict(SEQ, h=128, w=128),
    "SeqClif3Fc3Lc": SEQ,
    "SeqClif3Fc3Mn": SEQ,
    "ResNetLif10": dict(RESNET, depth=10, base_channels=8),
    "ResNetLif50": dict(RESNET, depth=50, base_channels=4),
    "FastText": dict(timestep=5, vocab_size=30, embedding_dim=6, hidden_dim=8, noise=0),
}
# every architecture a name builds (BIDL's ...Itout and ...It differ), each run with the
# time loop outside and inside the layers
NAMES = [
    ("SeqClif3Fc3Dm", "SeqClif3Fc3DmItout"),
    ("SeqClif3Fc3Dm", "SeqClif3Fc3DmIt"),
    ("SeqClif5Fc2Dm", "SeqClif5Fc2DmItout"),
    ("SeqClif5Fc2Dm", "SeqClif5Fc2DmIt"),
    ("SeqClif5Fc2Cd", "SeqClif5Fc2CdItout"),
    ("SeqClif5Fc2Cd", "SeqClif5Fc2CdIt"),
    ("SeqClif7Fc1Cd", "SeqClif7Fc1CdItout"),
    ("SeqClif7Fc1Cd", "SeqClif7Fc1CdIt"),
    ("SeqClif3Flif2Dg", "SeqClif3Flif2DgItout"),
    ("SeqClif7Fc1Dg", "SeqClif7Fc1DgItout"),
    ("SeqClif7Fc1Dg", "SeqClif7Fc1DgIt"),
    ("SeqClif3Fc3Lc", "SeqClif3Fc3LcItout"),
    ("SeqClif3Fc3Mn", "SeqClif3Fc3MnItout"),
    ("ResNetLif10", "ResNetLifItout"),
    ("ResNetLif50", "ResNetLif"),
    ("ResNetLif10", "ResNetLifReluItout"),
    ("ResNetLif50", "ResNetLifReluIt"),
    ("FastText", "FastTextItout"),
]
LIF = ("lif", None)
LIFPLUS_SPREAD = [
    ("lifplus", [2, 1, 1, 1, 2, 1]),
    ("lifplus", [1, 0, 0, 0, 0, 0]),
    ("lifplus", [1, 1, 2, 2, 1, 2]),
    ("lifplus", [0, 0, 2, 1, 2, 0]),
]
# every backbone with LIF and one rich LIF+ combination; the whole spread on three of them.
# Through ResNet-50's 16 bottleneck blocks the richest one gives NaN gradients (in both loop
# forms alike), so those nets take the next richest.
CASES = [(*pair, *LIF) for pair in NAMES] + [
    (*pair, *LIFPLUS_SPREAD[2 if pair[0] == "ResNetLif50" else 0]) for pair in NAMES
]
CASES += [(*NAMES[i], *neuron) for i in (11, 14, 17) for neuron in LIFPLUS_SPREAD[1:]]


def make_pair(family, name, **kwargs):
    """The network ``name`` builds, with the time loop outside and inside the layers."""
    torch.manual_seed(0)
    outer = build(dict(type=name, **TINY[family], **kwargs, use_inner_loop=False), BACKBONES)
    inner = build(dict(type=name, **TINY[family], **kwargs, use_inner_loop=True), BACKBONES)
    inner.load_state_dict(outer.state_dict())
    return outer, inner


def assert_same_gradients(outer, inner, loss_grad_scale):
    """Equal to 1e-5 of the largest gradient, the loss's gradient at the output included:
    folding time into the batch changes the order of sums, so a gradient that is zero in
    exact arithmetic (a bias under batch norm) holds rounding noise of the incoming size."""
    scale = max([p.grad.abs().max().item() for p in outer.parameters()] + [loss_grad_scale])
    for (name, p_outer), p_inner in zip(outer.named_parameters(), inner.parameters(), strict=True):
        error = (p_outer.grad - p_inner.grad).abs().max().item()
        assert error <= 1e-5 * scale, (name, error, scale)


# Surrogate gradients through 16 bottleneck blocks, or seven conv-LIF layers on a 128x128
# map, amplify the rounding of fp32 convs run per step or folded (1e-5 to 2e-5 of the
# largest gradient), and the ResNets' batch norms over all steps at once sum in another
# order (a rounding-level difference that can flip a spike): those nets are compared in fp64.
FP64 = {"ResNetLif10", "ResNetLif50", "SeqClif7Fc1Cd", "SeqClif7Fc1Dg"}
SLOW = {"ResNetLif50", "SeqClif5Fc2Cd", "SeqClif7Fc1Cd", "SeqClif7Fc1Dg"}


def case(family, name, neuron, config):
    marks = (
        [pytest.mark.slow] if family in SLOW or config in [c for _, c in LIFPLUS_SPREAD[1:]] else []
    )
    return pytest.param(
        family, name, neuron, config, marks=marks, id=f"{name}-{neuron}{config or ''}"
    )


@pytest.mark.parametrize("family,name,neuron,config", [case(*c) for c in CASES])
def test_eim_and_iim_give_the_same_logits_and_gradients(family, name, neuron, config):
    # LIF+'s extra terms make the rectangle surrogate's window edge (a jump in the gradient)
    # meet rounding noise; the smooth sigmoid surrogate keeps the comparison to rounding
    spike_func = "sigmoid" if neuron == "lifplus" else None
    outer, inner = make_pair(
        family, name, neuron=neuron, neuron_config=config, spike_func=spike_func
    )
    assert (outer.use_inner_loop, inner.use_inner_loop) == (False, True)
    x = outer.example_input(batch=4, generator=torch.Generator().manual_seed(1))
    if family in FP64:
        outer, inner, x = outer.double(), inner.double(), x.double()
    torch.manual_seed(2)  # dropout masks: both runs draw them in the same order
    y_outer = outer(x)
    torch.manual_seed(2)
    y_inner = inner(x)
    assert y_outer.shape[0] == 4
    assert (y_outer - y_inner).abs().max().item() <= 1e-5
    y_outer.square().sum().backward()
    y_inner.square().sum().backward()
    assert_same_gradients(outer, inner, loss_grad_scale=2 * y_outer.abs().max().item())


def chain(segments, x):
    for segment in segments:
        x = segment(x)
    return x


@pytest.mark.parametrize("inner_loop", [False, True])
def test_resnet_segments_run_one_after_another_equal_the_whole_model(inner_loop):
    kwargs = dict(TINY["ResNetLif50"], use_inner_loop=inner_loop)
    torch.manual_seed(0)
    whole = build(dict(type="ResNetLifItout_MP", **kwargs), BACKBONES).eval()
    segments = [
        build(dict(type="ResNetLifItout_MP", split=split, **kwargs), BACKBONES).eval()
        for split in ([0, 6], [6, 12], [12, 16])
    ]
    for segment in segments:
        segment.load_state_dict(segment.segment_state_dict(whole.state_dict()))
    x = whole.example_input(batch=2)
    assert torch.allclose(chain(segments, x), whole(x), atol=1e-6)


def test_a_later_segment_declares_the_activation_it_takes():
    first = build(dict(type="ResNetLifItout_MP", split=[0, 6], **TINY["ResNetLif50"]), BACKBONES)
    second = build(dict(type="ResNetLifItout_MP", split=[6, 16], **TINY["ResNetLif50"]), BACKBONES)
    activation = first(first.example_input(batch=2))
    assert activation.shape == (2, 3, *second.input_shape) == (2, 3, 32, 4, 4)
    assert second.stem is None and first.stem is not None


def test_sequential_backbone_segments_chain_to_the_whole_model():
    kwargs = TINY["SeqClif3Flif2Dg"]
    torch.manual_seed(0)
    whole = build(dict(type="SeqClif3Flif2DgItout", **kwargs), BACKBONES).eval()
    segments = [
        build(dict(type="SeqClif3Flif2DgItout", split=split, **kwargs), BACKBONES).eval()
        for split in ([0, 2], [2, 5], [5, 7])
    ]
    for segment in segments:
        segment.load_state_dict(segment.segment_state_dict(whole.state_dict()))
    x = whole.example_input(batch=2)
    assert torch.allclose(chain(segments, x), whole(x), atol=1e-6)


def test_segment_weights_keep_the_whole_models_names():
    segment = build(dict(type="ResNetLifItout_MP", split=[6, 16], **TINY["ResNetLif50"]), BACKBONES)
    keys = list(segment.state_dict())
    assert keys[0].startswith("body.6.") and keys[-1].startswith("head.")


def test_split_out_of_range_is_reported():
    with pytest.raises(
        BidlError, match=r"split must be \[start, end\] with 0 <= start < end <= 16"
    ):
        build(dict(type="ResNetLifItout_MP", split=[6, 17], **TINY["ResNetLif50"]), BACKBONES)


def test_down_t_pools_groups_of_input_frames():
    kwargs = dict(TINY["ResNetLif10"], timestep=4)
    torch.manual_seed(0)
    pooled = build(dict(type="ResNetLifItout", down_t=[2, "max"], **kwargs), BACKBONES).eval()
    plain = build(dict(type="ResNetLifItout", **kwargs), BACKBONES).eval()
    plain.load_state_dict(pooled.state_dict())
    x = pooled.example_input(batch=2)
    by_hand = x.reshape(2, 2, 2, *x.shape[2:]).amax(dim=2)
    assert torch.equal(pooled(x), plain(by_hand))


def test_down_t_that_does_not_divide_the_timesteps_is_reported():
    with pytest.raises(BidlError, match="timestep=3 is not a multiple of down_t factor 2"):
        build(dict(type="ResNetLifItout", down_t=[2, "avg"], **TINY["ResNetLif10"]), BACKBONES)


def test_zero_init_residual_zeroes_each_blocks_last_batch_norm_scale():
    model = build(
        dict(type="ResNetLifItout", zero_init_residual=True, **TINY["ResNetLif50"]), BACKBONES
    )
    assert all(block.last_bn.weight.abs().sum() == 0 for block in model.body)


def test_unknown_resnet_depth_is_reported():
    with pytest.raises(
        BidlError, match=r"depth must be one of \[10, 18, 34, 50, 101, 152\], got 20"
    ):
        build(dict(type="ResNetLifItout", depth=20), BACKBONES)


def test_fasttext_reads_a_bag_of_tokens_per_step():
    model = build(dict(type="FastTextItout", tokens_per_step=4, **TINY["FastText"]), BACKBONES)
    x = model.example_input(batch=2)
    assert x.shape == (2, 5, 4) and not x.is_floating_point()
    assert model(x).shape == (2,)  # BIDL's one logit per text
    with_classes = build(dict(type="FastTextItout", nclass=3, **TINY["FastText"]), BACKBONES)
    assert with_classes(x[:, :, 0]).shape == (2, 3)


def test_fasttext_refuses_float_input_with_a_clear_message():
    model = build(dict(type="FastTextItout", **TINY["FastText"]), BACKBONES)
    with pytest.raises(BidlError, match="expects integer token ids, got torch.float32"):
        model(torch.zeros(2, 5))


def test_fasttext_names_its_token_layout_in_shape_errors():
    model = build(dict(type="FastTextItout", **TINY["FastText"]), BACKBONES)
    with pytest.raises(
        BidlError, match=r"expects input \[B, T\] \(batch, time, token ids\); got \[2, 5, 3\]"
    ):
        model(torch.zeros(2, 5, 3, dtype=torch.long))


def test_list_models_prints_each_backbone_with_parameters_and_input(capsys):
    main(["list", "models"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(BACKBONES.names())
    by_name = {line.split()[0]: line for line in lines}
    model = build(dict(type="SeqClif5Fc2CdIt"), BACKBONES)
    count = sum(p.numel() for p in model.parameters())
    assert f"{count:,d} params  input [B, 10, 2, 128, 128]" in by_name["SeqClif5Fc2CdIt"]
    assert " IIM " in by_name["SeqClif5Fc2CdIt"] and " EIM " in by_name["SeqClif5Fc2CdItout"]
    assert by_name["FastTextItout"].endswith("input [B, 500] token ids")
