"""Data-parallel training (issue 6, part 3): 2 gloo processes on CPU against one process.

BatchNorm statistics of a per-rank batch differ from those of the combined batch, and
torch's SyncBatchNorm runs on GPUs only, so the test trains a variant of the tiny model
without BatchNorm (``TinyClifNoBn``); then both runs compute the same function.
No random augmentation: the train split uses the test pipeline.
"""

import json
import socket

import torch
import torch.multiprocessing as mp
from conftest import TINY_CONFIG
from torch import nn

from bidl.config import load_config
from bidl.engine import load_checkpoint, train_model
from bidl.engine.apis import build_datasets, build_model
from bidl.engine.dataloader import build_dataloader, seed_everything
from bidl.layers import Conv2dLif
from bidl.models.backbones.seq_clif_dm import SeqClif3Fc3Dm
from bidl.optim.optimizer import build_optimizer
from bidl.registry import BACKBONES

PER_RANK, WORLD, EPOCHS = 4, 2, 2


@BACKBONES.register_module(force=True)
class TinyClifNoBn(SeqClif3Fc3Dm):
    """Two conv-LIF layers without BatchNorm on the membrane, and a linear readout."""

    def build_layers(self, opts):
        body = nn.Sequential(
            Conv2dLif(self.in_channels, 8, 3, padding=1, pool=2, norm=False, **opts),
            Conv2dLif(8, 16, 3, padding=1, pool=2, norm=False, **opts),
        )
        features = 16 * (self.height // 4) * (self.width // 4)
        return body, nn.Sequential(nn.Flatten(), nn.Linear(features, self.nclass))


def write_config(folder):
    text = TINY_CONFIG.format(workers=0)
    text = text.replace("pipeline=train_pipeline", "pipeline=test_pipeline")
    text = text.replace('type="SeqClif3Fc3DmItout"', 'type="TinyClifNoBn"')
    text += f'\nlr_config = dict(policy="Fixed")\ndist_params = dict(backend="gloo")\ndata["samples_per_gpu"] = {PER_RANK}\n'
    path = folder / "tiny-ddp-blinks.py"
    path.write_text(text)
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def act_as_torchrun_rank(rank, world, port):
    """The variables torchrun sets for one of its processes, on this host; one thread each
    (the ranks share the machine's cores)."""
    import os

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)


def _worker(rank, config, work_dir, port):
    act_as_torchrun_rank(rank, WORLD, port)
    train_model(
        config,
        work_dir=work_dir,
        launcher="pytorch",
        cfg_options={"runner.max_epochs": EPOCHS, "data.samples_per_gpu": PER_RANK},
    )


def reference_weights(config):
    """One process, combined batch of WORLD * PER_RANK, in DistributedSampler's order."""
    cfg = load_config(config, {"data.samples_per_gpu": PER_RANK})
    seed_everything(0)
    model = build_model(cfg)
    train_set = build_datasets(cfg)["train"]
    optimizer = build_optimizer(model, cfg.optimizer)
    steps = 0
    for epoch in range(EPOCHS):
        model.train()
        sampler = torch.utils.data.DistributedSampler(train_set, 1, 0, shuffle=True, seed=0)
        sampler.set_epoch(epoch)
        loader = build_dataloader(train_set, WORLD * PER_RANK, sampler=sampler, drop_last=True)
        for batch in loader:
            loss = model(batch["img"], batch["gt_label"])["loss"]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), **cfg.optimizer_config.grad_clip)
            optimizer.step()
            steps += 1
    return model.state_dict(), steps


def test_ddp_on_two_gloo_processes_matches_one_process_on_the_combined_batch(tmp_path):
    config = write_config(tmp_path)
    work = tmp_path / "ddp"
    mp.spawn(_worker, args=(str(config), str(work), free_port()), nprocs=WORLD, join=True)

    expected, steps = reference_weights(config)
    checkpoint = load_checkpoint(work / "latest.pth")
    assert checkpoint["meta"]["world_size"] == WORLD
    assert checkpoint["meta"]["iter"] == steps == EPOCHS * 48 // (WORLD * PER_RANK)
    got = checkpoint["state_dict"]
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-5, msg=key)

    # rank 0 alone wrote logs: one meta record, one set of train records per epoch
    records = [json.loads(line) for line in (work / "log.json").read_text().splitlines()]
    assert sum(r["mode"] == "meta" for r in records) == 1
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [1, 2]
    assert (work / "train.log").is_file() and (work / "epoch_1.pth").is_file()

    # resume the 2-process checkpoint in one process: the lr/iteration count follows
    resumed = tmp_path / "resumed"
    train_model(
        config,
        work_dir=str(resumed),
        cfg_options={
            "runner.max_epochs": EPOCHS + 1,
            "resume_from": str(work / "latest.pth"),
        },
    )
    meta = load_checkpoint(resumed / "latest.pth")["meta"]
    assert meta["world_size"] == 1 and meta["epoch"] == EPOCHS + 1
    assert meta["iter"] == (EPOCHS + 1) * 48 // PER_RANK


def _averaging_worker(rank, port, out):
    """One rank: the gradients of a DDP replica and of a plain replica averaged by
    ``average_gradients`` after the same backward on this rank's half of a batch."""
    import torch.distributed as dist

    from bidl.engine.distributed import average_gradients, broadcast_module_state

    act_as_torchrun_rank(rank, WORLD, port)
    dist.init_process_group("gloo")
    torch.manual_seed(rank)  # different initial weights: the broadcast must fix them
    plain = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    broadcast_module_state(plain)
    replica = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    replica.load_state_dict(plain.state_dict())
    ddp = nn.parallel.DistributedDataParallel(replica)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4, 2, 8, 8, generator=generator)[rank * 2 : rank * 2 + 2]
    plain(x).square().sum().backward()
    own_bias_grad = plain[2].bias.grad.clone()
    if rank == 0:
        plain[2].bias.grad = None  # a parameter without a gradient on one rank counts as 0
    average_gradients(plain.parameters(), WORLD)
    ddp(x).square().sum().backward()
    if rank == 0:
        torch.save(
            {
                "plain": [p.grad for p in plain.parameters()],
                "ddp": [p.grad for p in replica.parameters()],
                "weights": [p.detach() for p in plain.parameters()],
                "own_bias_grad": own_bias_grad,
            },
            out,
        )
    dist.barrier()
    dist.destroy_process_group()


def test_averaged_gradients_equal_ddp_on_two_gloo_processes(tmp_path):
    """``average_gradients`` (the data parallelism of steps replayed from CUDA graphs)
    gives each parameter DDP's averaged gradient, after ``broadcast_module_state``."""
    out = tmp_path / "grads.pt"
    mp.spawn(_averaging_worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    got = torch.load(out, weights_only=True)
    torch.manual_seed(0)  # rank 0's initial weights won
    expected = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    for weight, want in zip(got["weights"], expected.parameters(), strict=True):
        assert torch.equal(weight, want.detach())
    plain, ddp = got["plain"], got["ddp"]
    for a, b in zip(plain[:-1], ddp[:-1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # rank 0 sent 0 for the bias: the mean lacks its half
    want = ddp[-1] - got["own_bias_grad"] / 2
    torch.testing.assert_close(plain[-1], want, rtol=1e-6, atol=1e-6)
