"""The micro-batcher: one call for concurrent callers, fair under sustained load, failures isolated."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.runtime.batcher import MicroBatcher


class Model:
    """A stand-in batch function: doubles numbers, raises on poisoned items (a whole batch fails, as the
    tokenizer does on one bad text), sleeps so callers pile up."""

    def __init__(self, delay: float = 0.005) -> None:
        self.delay = delay
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, items: list[object]) -> list[int]:
        with self.lock:
            self.calls.append(len(items))
        time.sleep(self.delay)
        if any(not isinstance(i, int) for i in items):
            raise ValueError(f"poisoned item in a batch of {len(items)}")
        return [2 * int(i) for i in items]  # type: ignore[call-overload]


def test_concurrent_callers_share_calls_and_each_gets_its_own_result() -> None:
    model = Model(0.02)
    b: MicroBatcher[object, int] = MicroBatcher(model, batch_max=8)
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(b.submit, range(96)))
    assert results == [2 * i for i in range(96)]
    assert sum(model.calls) == 96 and max(model.calls) > 1 and max(model.calls) <= 8
    assert b.batches == len(model.calls)


def test_a_lone_caller_is_one_call_of_one() -> None:
    model = Model(0.0)
    b: MicroBatcher[object, int] = MicroBatcher(model)
    assert b.submit(21) == 42
    assert model.calls == [1]


def test_poisoned_items_fail_only_their_own_callers() -> None:
    model = Model(0.01)
    b: MicroBatcher[object, int] = MicroBatcher(model, batch_max=16)
    items: list[object] = [f"poison-{i}" if i % 5 == 0 else i for i in range(200)]

    def call(item: object) -> object:
        try:
            return b.submit(item)
        except ValueError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(call, items))
    mixed = [n for n in model.calls if n > 1]
    assert mixed, "no batch held more than one item: the test did not exercise batching"
    for item, res in zip(items, results, strict=True):
        if isinstance(item, int):
            assert res == 2 * item, f"caller {item} failed because of a poisoned neighbour: {res!r}"
        else:
            assert isinstance(res, ValueError)
    # and the batcher still works after the failures
    assert b.submit(5) == 10


def test_waits_are_bounded_in_batches_under_a_sustained_stream() -> None:
    """16 callers submit back to back for ~1.5 s with batches of at most 4: a caller waits for at most
    ceil(16 / 4) + 1 batches, however long the stream lasts."""
    model = Model(0.002)
    batch_max, clients = 4, 16
    b: MicroBatcher[object, int] = MicroBatcher(model, batch_max=batch_max)
    waits: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + 1.5

    def client(k: int) -> None:
        n = 0
        while time.monotonic() < stop:
            assert b.submit(k * 100_000 + n) == 2 * (k * 100_000 + n)
            with lock:
                waits.append(b.last_wait())  # counted by the batcher under its lock: no scheduling noise
            n += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(waits) > 200 and b.batches > 100  # a sustained stream, many batches
    # at most clients - 1 items are ahead of a newcomer: its own batch is at most the ceil(clients / batch_max)th
    bound = math.ceil(clients / batch_max)
    assert min(waits) >= 1 and max(waits) <= bound, f"a caller waited {max(waits)} batches (bound {bound})"


def test_a_caller_interrupted_mid_batch_does_not_strand_the_others() -> None:
    calls = {"n": 0}

    def fn(items: list[object]) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(0.05)
            raise KeyboardInterrupt
        return [1 for _ in items]

    b: MicroBatcher[object, int] = MicroBatcher(fn, batch_max=1)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(b.submit(0))
        except KeyboardInterrupt as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in threads)
    assert sorted(map(repr, results)) == sorted(["1", "1", "KeyboardInterrupt()"])


def test_a_batch_function_returning_the_wrong_count_is_an_error_for_its_callers() -> None:
    b: MicroBatcher[object, int] = MicroBatcher(lambda items: [], batch_max=4)
    with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
        b.submit(1)


def test_two_lanes_run_two_batches_at_once_and_keep_first_in_first_out_order() -> None:
    """Issue 11: with lanes=2 a second batch starts while the first is still running, never a third; the
    items queued meanwhile are taken oldest first, batch_max at a time, by whichever lane frees first."""
    calls: list[list[int]] = []
    gates: list[threading.Event] = []
    lock = threading.Lock()

    def fn(items: list[int]) -> list[int]:
        gate = threading.Event()
        with lock:
            calls.append(list(items))
            gates.append(gate)
        assert gate.wait(10), "the test never released this batch"
        return [2 * i for i in items]

    b: MicroBatcher[int, int] = MicroBatcher(fn, batch_max=2, lanes=2)
    results: dict[int, int] = {}

    def call(i: int) -> None:
        results[i] = b.submit(i)

    def wait_until(cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not cond():
            assert time.monotonic() < deadline, "timed out waiting for the batcher"
            time.sleep(0.001)

    threads = []
    for i in range(7):  # 0 and 1 lead a lane each; 2-6 queue up in this order
        t = threading.Thread(target=call, args=(i,))
        t.start()
        threads.append(t)
        if i < 2:
            wait_until(lambda n=i: len(calls) == n + 1)
        else:
            wait_until(lambda n=i: len(b._queue) == n - 1)
    assert calls == [[0], [1]]  # two batches at once, the others wait for a lane
    for k, expected in enumerate([[2, 3], [4, 5], [6]]):
        gates[k].set()  # free one lane: the oldest pending item leads the next batch
        wait_until(lambda n=k: len(calls) == n + 3)
        assert calls[-1] == expected
        assert len([g for g in gates if not g.is_set()]) == 2  # never more than two batches at once
    for g in gates:
        g.set()
    for t in threads:
        t.join(timeout=10)
    assert results == {i: 2 * i for i in range(7)}
    assert b.batches == 5 and b._leaders == 0 and not b._queue


def test_lanes_serve_many_concurrent_callers_each_their_own_result() -> None:
    model = Model(0.005)
    b: MicroBatcher[object, int] = MicroBatcher(model, batch_max=8, lanes=2)
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(b.submit, range(200)))
    assert results == [2 * i for i in range(200)]
    assert sum(model.calls) == 200 and max(model.calls) > 1 and max(model.calls) <= 8
    assert b._leaders == 0 and not b._queue
