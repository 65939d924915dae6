"""The runner's per-iteration timing: data_time, time and the share spent waiting for data
(the host's on the CPU; on a GPU the time the GPU itself sat idle waiting for a batch)."""

import time

import pytest
import torch

from bidl.engine.iteration_log import IterationLog


def _iterations(log, data_s, step, count=3):
    for _ in range(count):
        time.sleep(data_s)
        log.data_ready()
        step()
        log.step_done()


def test_on_the_cpu_the_wait_is_the_hosts():
    log = IterationLog(torch.device("cpu"), samples_per_step=4)
    _iterations(log, 0.03, lambda: time.sleep(0.01))
    record = log.summary()
    assert set(record) == {"data_time", "time", "samples_per_s", "data_wait"}
    assert 0.025 < record["data_time"] < 0.2
    assert record["time"] >= record["data_time"]
    assert 0.5 < record["data_wait"] < 0.9  # about 30 of 40 ms
    assert record["samples_per_s"] == pytest.approx(4 / record["time"], rel=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_waiting_while_the_gpu_works_costs_nothing():
    """A host that waits for data while the GPU still runs the last step: the GPU's wait is
    small; the same host wait after a step the GPU finished at once: the GPU sat idle."""
    busy = torch.randn(4096, 4096, device="cuda")

    def long_step():  # ~ tens of ms of GPU work queued, returns at once
        for _ in range(20):
            busy.matmul(busy)

    log = IterationLog(torch.device("cuda"), samples_per_step=4)
    _iterations(log, 0.01, long_step, count=4)
    overlapped = log.summary()
    _iterations(log, 0.02, lambda: None, count=4)
    starved = log.summary()
    assert overlapped["host_data_wait"] > 0.01 and overlapped["gpu_data_wait"] < 0.1
    assert starved["gpu_data_wait"] > 0.5 and starved["data_wait"] == starved["gpu_data_wait"]
