"""References are not leaked: a million small calls keep the process's memory flat."""

import threading
import time

import numpy as np
import torch

import softmax


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_a_million_small_calls_keep_memory_flat():
    x = np.random.default_rng(0).normal(size=(1, 10))
    out = np.empty_like(x)
    strided = np.random.default_rng(1).normal(size=(10, 2))[:, 0:1].T  # non-contiguous: copied each call
    t = torch.randn(1, 10)
    bad = np.arange(10)
    for _ in range(20_000):  # warm up allocator pools and caches
        softmax.softmax(x)
    start = resident_bytes()
    call, log = softmax.softmax, softmax.log_softmax
    for _ in range(700_000):
        call(x)
    for _ in range(100_000):
        log(x, axis=0, scale=2.0, out=out)
        call(strided)
    for _ in range(50_000):
        call(t)
        try:
            call(bad)
        except TypeError:
            pass
    grown = resident_bytes() - start
    # One leaked 1x10 array per call would be > 100 MB.
    assert grown < 8 * 1024 * 1024, f"resident memory grew by {grown / 2**20:.1f} MiB over a million calls"


def test_gil_is_released_while_computing():
    """While one thread is inside a long call, another thread keeps running Python."""
    x = np.random.default_rng(0).normal(size=(4096, 4096)).astype(np.float32)
    softmax.softmax(x)  # warm up (pages, threads)
    started = time.perf_counter()
    softmax.softmax(x)
    call_seconds = time.perf_counter() - started
    finished = threading.Event()

    def compute():
        softmax.softmax(x)
        finished.set()

    worker = threading.Thread(target=compute)
    ticks = 0
    worker.start()
    while not finished.is_set():
        ticks += 1
        time.sleep(0)
    worker.join()
    # With the GIL held for the whole call, this thread would get (almost)
    # no turn until the call ends.
    assert ticks > 10, f"only {ticks} iterations of the other thread during a {call_seconds * 1e3:.0f} ms call"


def test_concurrent_calls_from_python_threads_give_the_serial_results():
    rng = np.random.default_rng(5)
    inputs = [rng.normal(size=(64, 1000)).astype(np.float32) for _ in range(4)]
    serial = [softmax.softmax(x, axis=i % 2) for i, x in enumerate(inputs)]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(20):
            results[i] = softmax.softmax(inputs[i], axis=i % 2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, expected in zip(results, serial):
        np.testing.assert_array_equal(got, expected)
