"""Request deadlines, and cancellation of a model run when its deadline passes or the server drains.

A request's deadline (time.monotonic() seconds) is set for the thread answering it (`request_deadline`); a
signature run under `cancellable_run` is cancelled at that deadline by one watchdog thread, so the work of a
request whose client gave up stops at the next op boundary instead of running to the end (TF's eager
CancellationManager; an op already running finishes). `cancel_all` cancels every run in progress: the server
calls it when its shutdown grace period is over.
"""

import contextlib
import heapq
import itertools
import threading
import time
from typing import Callable, Iterator, Optional

from tensorflow.python.eager import cancellation

_local = threading.local()


@contextlib.contextmanager
def request_deadline(deadline: Optional[float]) -> Iterator[None]:
    """Make `deadline` (time.monotonic() seconds or None) the deadline of the request this thread answers."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


def current_deadline() -> Optional[float]:
    """The deadline of the request this thread is answering (None: no deadline)."""
    return getattr(_local, "deadline", None)


class RunCanceled(Exception):
    """A run was cancelled: `reason` is "deadline" or "shutdown"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Run:
    def __init__(self):
        self.manager = cancellation.CancellationManager()
        self.reason: Optional[str] = None

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.manager.start_cancel()


class _Watchdog:
    """One thread that cancels runs at their deadlines (a heap of (deadline, id, run))."""

    def __init__(self):
        self._lock = threading.Condition()
        self._heap = []
        self._ids = itertools.count()
        self._running = set()
        self._thread: Optional[threading.Thread] = None

    def add(self, run: _Run, deadline: Optional[float]) -> None:
        with self._lock:
            self._running.add(run)
            if deadline is None:
                return
            heapq.heappush(self._heap, (deadline, next(self._ids), run))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="deadline-watchdog", daemon=True)
                self._thread.start()
            self._lock.notify()

    def remove(self, run: _Run) -> None:
        with self._lock:
            self._running.discard(run)

    def cancel_all(self, reason: str) -> int:
        with self._lock:
            runs = list(self._running)
        for run in runs:
            run.cancel(reason)
        return len(runs)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][2] not in self._running:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, _, run = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
            run.cancel("deadline")


_watchdog = _Watchdog()


def cancellable_run(function: Callable, kwargs: dict, deadline: Optional[float]):
    """`function(**kwargs)`, cancelled at `deadline` or by `cancel_all`; raises RunCanceled when it was."""
    if deadline is not None and time.monotonic() >= deadline:
        raise RunCanceled("deadline")
    run = _Run()
    _watchdog.add(run, deadline)
    try:
        return run.manager.get_cancelable_function(function)(**kwargs)
    except Exception:
        if run.reason is not None:
            raise RunCanceled(run.reason) from None
        raise
    finally:
        _watchdog.remove(run)


def cancel_all(reason: str = "shutdown") -> int:
    """Cancel every run in progress (their requests fail with `reason`); returns how many."""
    return _watchdog.cancel_all(reason)
