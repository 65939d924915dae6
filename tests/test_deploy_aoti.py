"""AOTInductor packages (torch.export + PyTorch's compiler): the runtime's compiled path,
on the CPU here and on CUDA where there is a GPU. Each compile takes tens of seconds."""

import numpy as np
import pytest
import torch
from deploy_helpers import example_input, tiny_snn

from bidl.deploy import Runtime, compile_model
from bidl.deploy.artifact import read_manifest
from bidl.registry import BidlError

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def small_model():
    return tiny_snn(seed=7, size=4, timestep=3)


@pytest.fixture(scope="module")
def cpu_package(tmp_path_factory):
    model = small_model()
    folder = compile_model(
        model, tmp_path_factory.mktemp("aoti") / "art", backend="aoti", batch_size=2
    )
    return model, folder


def test_aoti_cpu_package_matches_pytorch_eval(cpu_package):
    model, folder = cpu_package
    xs = example_input(model, batch=3)
    with torch.no_grad():
        expected = model(xs).numpy()
    with Runtime(folder) as runtime:
        assert np.abs(runtime.run(xs) - expected).max() <= 1e-4
        runtime.reset()
        for t in range(xs.shape[1]):
            running = runtime.step(xs[:2, t])
        assert np.abs(running - expected[:2]).max() <= 1e-4
    assert read_manifest(folder)["graph"] == "step.pt2"


def test_aoti_cpu_package_refuses_a_cuda_device(cpu_package):
    _, folder = cpu_package
    with pytest.raises(BidlError, match="was compiled for cpu; it cannot run on cuda:0"):
        Runtime(folder, device="cuda:0")


@pytest.mark.cuda
@needs_cuda
def test_aoti_cuda_package_matches_pytorch_eval_cuda(tmp_path):
    model = small_model()
    folder = compile_model(model, tmp_path / "art", backend="aoti", batch_size=2, device="cuda:0")
    xs = example_input(model, batch=4)
    with torch.no_grad():
        expected = model.cuda()(xs.cuda()).cpu().numpy()
    with Runtime(folder, device="cuda:0") as runtime:
        assert runtime.engine.describe().endswith("on cuda:0")
        assert np.abs(runtime.run(xs) - expected).max() <= 1e-4
    with pytest.raises(BidlError, match="was compiled for cuda:0; it cannot run on cpu"):
        Runtime(folder, device="cpu")
