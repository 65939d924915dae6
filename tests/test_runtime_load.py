"""The deployment runtime under load: thousands of samples through ``Runtime.submit``'s queue
come back complete, in order and equal to ``Runtime.run``; the process's memory stays flat;
a failing sample is reported on its own while the rest go on."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from deploy_helpers import tiny_artifact

from bidl.deploy import Runtime
from bidl.registry import BidlError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SAMPLES = 3000
WARM_UP = 300
RSS_SLACK_MB = 32  # allowed growth between the end of the warm-up and the end of the run


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_runtime_serves_thousands_of_samples_in_order_with_flat_memory():
    folder = tiny_artifact()
    rng = np.random.default_rng(0)
    with Runtime(folder, queue_size=8) as runtime:
        shape = (runtime.timesteps, *runtime.step_shape)
        # distinct samples, so a lost or swapped output cannot go unnoticed
        samples = (rng.random((SAMPLES, *shape)) < 0.3).astype(np.float32)
        expected = np.stack([runtime.run(sample) for sample in samples])
        assert len({row.tobytes() for row in expected}) > SAMPLES // 2

        order: list[int] = []
        bad_callback = 1234

        def callback_for(index):
            def callback(output):
                order.append(index)
                if index == bad_callback:
                    raise ValueError("the client's callback failed")

            return callback

        futures, shape_errors, rss = [], [], {}
        start = time.perf_counter()
        for index, sample in enumerate(samples):
            if index == WARM_UP:
                [f.exception() for f in futures]  # noqa: B018  (wait for the warm-up)
                rss["warm"] = rss_mb()
            if index % 1000 == 500:  # a sample of the wrong shape among the good ones
                with pytest.raises(BidlError, match=r"got shape \[1, 4, 2, 4, 8\]"):
                    runtime.submit(sample[:, :, :4])
                shape_errors.append(index)
            futures.append(runtime.submit(sample, callback_for(index)))
        failures = {}
        outputs = []
        for index, future in enumerate(futures):
            if future.exception() is not None:
                failures[index] = future.exception()
            else:
                outputs.append((index, future.result()))
        seconds = time.perf_counter() - start
        rss["end"] = rss_mb()

    assert list(failures) == [bad_callback]
    assert "the client's callback failed" in str(failures[bad_callback])
    assert order == list(range(SAMPLES))  # every sample ran, in the order submitted
    assert len(outputs) == SAMPLES - 1
    for index, output in outputs:
        np.testing.assert_array_equal(output, expected[index])
    assert shape_errors == [500, 1500, 2500]
    growth = rss["end"] - rss["warm"]
    print(
        f"\nruntime load: {SAMPLES} samples in {seconds:.2f} s ({SAMPLES / seconds:.0f}/s), "
        f"RSS {rss['warm']:.1f} MB after warm-up, {rss['end']:.1f} MB at the end "
        f"({growth:+.1f} MB)"
    )
    assert growth < RSS_SLACK_MB


def _runtime_workers() -> set:
    return {t for t in threading.enumerate() if t.name == "bidl-runtime" and t.is_alive()}


def test_several_client_threads_share_one_runtime():
    """Four threads submit 150 samples each at once: every future gets its own sample's
    output (the queue, the uploads and the engine are shared safely)."""
    from concurrent.futures import ThreadPoolExecutor

    folder = tiny_artifact()
    rng = np.random.default_rng(1)
    before = _runtime_workers()  # other tests' runtimes may still have theirs
    with Runtime(folder, queue_size=4) as runtime:
        shape = (runtime.timesteps, *runtime.step_shape)
        samples = (rng.random((4, 150, *shape)) < 0.3).astype(np.float32)
        expected = [np.stack([runtime.run(s) for s in part]) for part in samples]

        def client(part):
            futures = [runtime.submit(sample) for sample in part]
            return np.stack([future.result(timeout=60) for future in futures])

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(client, samples))
        # one worker for all clients: close() stops exactly that one (two hung it)
        assert len(_runtime_workers() - before) == 1
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)
