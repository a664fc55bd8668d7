"""Group commit: the writes waiting in one process share one transaction.

On the night, pledges arrive by the hundred a second and each used to pay for a
transaction of its own (SQLite's write lock, a commit, the count upserts). Here
the first request to find no writer at work becomes the leader: it takes every
write waiting in its process (up to `max_batch`) and writes them in one
transaction; the others wait for their answers. Each request is answered only
after the transaction that holds its write has committed. A leader whose own write
is done hands the lead to the oldest write still waiting, if any.

Each waiter sleeps on an event of its own, woken when its write is done or when it
is handed the lead: a batch of fifty answers fifty requests at once, instead of
passing a lock from one to the next (under gevent every hand-over of a lock costs a
turn of the event loop, and the requests read meanwhile queued behind the lock).

A transaction PostgreSQL aborts as a deadlock or serialization failure is run
again (database.retrying_write) before any caller is answered. When a batch fails
on something one item may have caused (a constraint, a value the database
refuses), its items are written again one by one, so one bad item
fails alone. Any other failure (the database away, the disk full) fails the batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Generic, TypeVar

from sqlalchemy.exc import DataError, IntegrityError

from ..database import retrying_write

Item = TypeVar("Item")
Result = TypeVar("Result")

# Failures that one item of a batch may have caused by itself.
ITEM_FAILURES = (IntegrityError, DataError)


class _Job(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "done", "wake")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Event()  # set when done, or when this job's caller must lead


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Callable[[list[Item]], list[Result]],
        touches: Collection[str] | None = None,
        max_batch: int = 100,
    ) -> None:
        """`write` writes a batch inside the open transaction and returns one result per item, in order."""
        self.write = write
        self.touches = touches
        self.max_batch = max_batch
        self._guard = threading.Lock()
        self._leader: _Job[Item, Result] | None = None  # whose caller writes batches now, or is told to
        self._waiting: list[_Job[Item, Result]] = []
        self.batches = 0  # transactions committed, for tests and benchmarks
        self.items = 0

    def submit(self, item: Item) -> Result:
        """Write `item` in the next transaction, and return its result once that has committed."""
        job: _Job[Item, Result] = _Job(item)
        with self._guard:
            self._waiting.append(job)
            if self._leader is None:
                self._leader = job
        try:
            if self._leader is not job:
                job.wake.wait()  # done, or handed the lead
            if not job.done:
                self._lead(job)
        finally:
            if not job.done:  # the caller was interrupted (a timeout, its greenlet killed)
                self._withdraw(job)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _lead(self, job: _Job[Item, Result]) -> None:
        try:
            # Let requests this process has already read reach submit() and join the batch.
            time.sleep(0)
            while not job.done:
                self._run()
        finally:
            if job.done:
                self._hand_over()

    def _hand_over(self) -> None:
        """Pass the lead to the oldest write still waiting, if any."""
        with self._guard:
            successor = self._leader = self._waiting[0] if self._waiting else None
        if successor is not None:
            successor.wake.set()

    def _withdraw(self, job: _Job[Item, Result]) -> None:
        """A write whose caller has gone before it was done: out of the queue, the lead passed on."""
        with self._guard:
            if job in self._waiting:
                self._waiting.remove(job)
            had_lead = self._leader is job
        if had_lead:
            self._hand_over()

    def _take(self) -> list[_Job[Item, Result]]:
        with self._guard:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        return batch

    def _run(self, alone: _Job[Item, Result] | None = None) -> None:
        """One transaction for the writes waiting now, or for `alone` when a batch is retried.

        Waiting writes are taken once the transaction holds its lock (on SQLite, while another
        process writes, that can take a while): the writes that arrived meanwhile join this batch.
        """
        batch: list[_Job[Item, Result]] = [alone] if alone is not None else []

        def write_batch() -> list[Result]:
            nonlocal batch
            batch = batch or self._take()  # kept when a transient failure runs it again
            return self.write([job.item for job in batch])

        try:
            results = retrying_write(write_batch, touches=self.touches)
        except ITEM_FAILURES as error:
            if len(batch) > 1:
                try:
                    for job in batch:
                        self._run(alone=job)
                except BaseException as interrupted:  # none of the batch may be left waiting
                    self._fail([job for job in batch if not job.done], interrupted)
                    raise
            else:
                self._fail(batch, error)
        except BaseException as error:
            self._fail(batch or self._take(), error)
            if not isinstance(error, Exception):
                raise
        else:
            self._deliver(batch, results)

    def _deliver(self, batch: list[_Job[Item, Result]], results: list[Result]) -> None:
        self.batches += 1
        self.items += len(batch)
        for job, result in zip(batch, results, strict=True):
            job.result, job.done = result, True
            job.wake.set()

    @staticmethod
    def _fail(batch: list[_Job[Item, Result]], error: BaseException) -> None:
        for job in batch:
            job.error, job.done = error, True
            job.wake.set()
