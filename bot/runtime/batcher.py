"""Micro-batching for one model call shared by concurrent callers: fair and failure-isolated.

:class:`MicroBatcher` joins concurrent :meth:`~MicroBatcher.submit` calls into one call of ``fn`` over a
list of items. There is no background thread: the first caller becomes the *leader*, takes the oldest
pending items (its own among them, the queue being first-in first-out), runs one batch, and as soon as its
own item is done hands leadership to the caller of the oldest item still pending. So a caller waits for at
most ``ceil(callers ahead of it / batch_max) + 1`` batches, however long the traffic lasts (fair batching;
the old leader kept draining the queue until it was empty, holding its own caller for as long as the load
lasted).

If a batch fails, each of its items is retried alone, so only the caller whose item fails gets the error
(failure isolation: one bad question must not fail the questions batched with it).

``lanes`` (issue 11): up to that many batches run at once, each led by one caller's thread (default 1).
With a model session that encodes each call on one thread, two lanes keep both cores of a 2-core machine
busy: one batch encodes while the other lane's batch does too, or while the request threads do their
Python work (one batch at a time left the second core idle whenever the request threads had nothing to do,
and two intra-op threads per call cost ~40% more CPU per query, measured). A leader takes the oldest
pending items, so the order stays first-in first-out across lanes; a caller waits for at most
``ceil(callers ahead of it / batch_max) + lanes`` batches (counting the batches other lanes start meanwhile).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Item(Generic[T]):
    __slots__ = ("done", "error", "event", "lead", "result", "seen", "value", "waited")

    def __init__(self, value: T) -> None:
        self.value = value
        self.event = threading.Event()
        self.done = False
        self.lead = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.seen = 0  # batches started before this item was queued
        self.waited = 0  # batches started from its queueing until its result was handed back


class MicroBatcher(Generic[T, R]):
    """Runs ``fn(items) -> results`` (one result per item, in order) for concurrent callers.

    ``batches`` counts the calls of ``fn`` made for batches (retries of a failed batch's items excluded),
    and :meth:`last_wait` tells the calling thread how many batches its last item waited for (its own
    included), so tests can bound waits in batches rather than seconds.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        batch_max: int = 32,
        batch_wait_s: float = 0.0,
        lanes: int = 1,
    ) -> None:
        self.fn = fn
        self.batch_max = max(1, int(batch_max))
        self.batch_wait_s = max(0.0, float(batch_wait_s))
        self.lanes = max(1, int(lanes))
        self.batches = 0
        self._queue: deque[_Item[T]] = deque()  # pending items no leader has taken yet
        self._lock = threading.Lock()
        self._leaders = 0  # batches being formed or run: at most ``lanes``
        self._local = threading.local()

    def last_wait(self) -> int:
        """Batches started between this thread's last :meth:`submit` queueing its item and the result being
        handed back to it (for a leader: when it stops leading). 1: served by the next batch."""
        return int(getattr(self._local, "waited", 0))

    def submit(self, value: T) -> R:
        """``fn([value])[0]``, possibly computed in one call with other callers' values."""
        item: _Item[T] = _Item(value)
        with self._lock:
            item.seen = self.batches
            if self._leaders < self.lanes:  # a free lane: the queue is empty (see _lead), lead at once
                self._leaders += 1
                item.lead = True
            else:
                self._queue.append(item)
        if not item.lead:
            item.event.wait()
        if not item.done:  # leading: our item was taken off the queue for us, the oldest pending one
            self._lead(item)
        self._local.waited = item.waited
        if item.error is not None:
            raise item.error
        return item.result

    def _lead(self, own: _Item[T]) -> None:
        """Run one batch: ``own`` (already off the queue, so no other lane can take it) and the oldest
        pending items after it; then hand the lane to the oldest pending item's caller, or free it. The
        queue is non-empty only while every lane is taken: an item queued when a lane is free leads."""
        try:
            if self.batch_wait_s:
                time.sleep(self.batch_wait_s)
            with self._lock:
                take = min(self.batch_max - 1, len(self._queue))
                batch = [own, *(self._queue.popleft() for _ in range(take))]
                self.batches += 1
            self._run(batch)
        finally:
            with self._lock:
                own.waited = self.batches - own.seen  # the leader's caller gets its result only now
                if self._queue:
                    nxt = self._queue.popleft()
                    nxt.lead = True
                    nxt.event.set()
                else:
                    self._leaders -= 1

    def _run(self, batch: list[_Item[T]]) -> None:
        try:
            try:
                results = self._call([it.value for it in batch])
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                else:  # isolate the failure: retry each item alone
                    for it in batch:
                        try:
                            it.result = self._call([it.value])[0]
                        except Exception as single:
                            it.error = single
            else:
                for it, res in zip(batch, results, strict=True):
                    it.result = res
        except BaseException as exc:  # KeyboardInterrupt, SystemExit …: nobody may wait forever
            for it in batch:
                if it.error is None and it.result is None:
                    it.error = exc
            raise
        finally:
            delivered = self.batches
            for it in batch:
                it.waited = delivered - it.seen
                it.done = True
                it.event.set()

    def _call(self, values: list[T]) -> Sequence[R]:
        results = self.fn(values)
        if len(results) != len(values):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(values)} items")
        return results
