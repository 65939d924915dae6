"""A sample that fails to load (in the dataset or a pipeline step, in the main process or a
loader worker) stops training or testing with one ``BidlError`` naming the dataset, the
sample's index, its files and the original error; a worker killed by a signal says so."""

from __future__ import annotations

import pytest
from conftest import write_tiny_config

from bidl.config import load_config
from bidl.engine.apis import build_model, evaluate_checkpoint, train_model
from bidl.engine.checkpoint import save_checkpoint
from bidl.engine.dataloader import LoaderWorkerError, SampleError


def faulty_config(tmp_path, workers, mode, split="train"):
    path = write_tiny_config(tmp_path, workers=workers)
    text = path.read_text().replace('imports=["tiny_dataset"]', 'imports=["faulty_dataset"]')
    path.write_text(text)
    options = {
        "runner.max_epochs": 1,
        f"data.{split}.type": "FaultyBlinks",
        f"data.{split}.fail_mode": mode,
    }
    return path, options


@pytest.mark.parametrize("workers", [0, 2])
def test_failing_sample_in_training_is_named(tmp_path, workers):
    config, options = faulty_config(tmp_path, workers, "raise")
    with pytest.raises(SampleError) as err:
        train_model(config, work_dir=str(tmp_path / "w"), cfg_options=options)
    message = str(err.value)
    assert message.startswith("loading FaultyBlinks sample 5 (")
    assert "filename='blinks/005.npy'" in message
    assert message.endswith("failed: ValueError: corrupt frame in the event stream")
    assert "Traceback" not in message  # a worker's traceback is not the message
    assert not (tmp_path / "w" / "latest.pth").exists()


@pytest.mark.parametrize("workers", [0, 1])
def test_failing_pipeline_step_in_testing_names_the_img_file(tmp_path, workers):
    config, options = faulty_config(tmp_path, workers, "pipeline", split="test")
    ckpt = tmp_path / "init.pth"
    save_checkpoint(ckpt, build_model(load_config(config, options)))
    with pytest.raises(SampleError) as err:
        evaluate_checkpoint(config, ckpt, cfg_options=options, device="cpu")
    message = str(err.value)
    assert "FaultyBlinks sample 5 (img='broken/005.npy', filename='blinks/005.npy')" in message
    assert "Traceback" not in message


def test_worker_killed_by_a_signal_is_reported(tmp_path):
    config, options = faulty_config(tmp_path, 2, "kill")
    with pytest.raises(LoaderWorkerError) as err:
        train_model(config, work_dir=str(tmp_path / "w"), cfg_options=options)
    message = str(err.value)
    assert "data-loader worker of FaultyBlinks died" in message
    assert "was killed by signal SIGKILL" in message
    assert "workers_per_gpu=0" in message
