"""Dynamic batching, as TF Serving's BatchingSession over a SharedBatchScheduler.

Concurrent requests for one signature are queued, merged along dimension 0 into batches of at most
`max_batch_size` (a batch is processed when full, when its oldest task has waited `batch_timeout_micros`, or at
once when the timeout is 0 and a batch thread is free), padded up to the next `allowed_batch_sizes` entry, run
once, and the outputs are split back to the requests. When the timeout is 0 and the scheduler is idle, the
request's own thread runs its one-task batch, as an idle batch thread would, without the hand-off.
"""

import dataclasses
import os
import threading
import time
from concurrent.futures import Future
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from serving.errors import ServingError, deadline_exceeded, internal, invalid_argument, unavailable

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters with its defaults (SharedBatchScheduler / BatchingSession options)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: Tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise invalid_argument("max_batch_size, num_batch_threads and max_enqueued_batches must be positive")
        if self.batch_timeout_micros < 0:
            raise invalid_argument("batch_timeout_micros must be non-negative")
        sizes = list(self.allowed_batch_sizes)
        if sizes:
            if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)) or sizes[0] < 1:
                raise invalid_argument("allowed_batch_sizes entries must be monotonically increasing")
            if sizes[-1] != self.max_batch_size:
                raise invalid_argument("Last entry in allowed_batch_sizes must match max_batch_size; last "
                                       f"entry was {sizes[-1]}; expected {self.max_batch_size}")

    @classmethod
    def from_proto(cls, params) -> "BatchingOptions":
        """Options from a BatchingParameters message (unset wrapper fields keep the defaults)."""
        kwargs = {}
        for field in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
            if params.HasField(field):
                kwargs[field] = getattr(params, field).value
        kwargs["allowed_batch_sizes"] = tuple(params.allowed_batch_sizes)
        kwargs["pad_variable_length_inputs"] = params.pad_variable_length_inputs
        return cls(**kwargs)

    def padded_size(self, size: int) -> int:
        """The smallest allowed batch size that holds `size` rows (`size` itself when none are configured)."""
        for allowed in self.allowed_batch_sizes:
            if allowed >= size:
                return allowed
        return size


class _Task:
    def __init__(self, inputs: Mapping[str, np.ndarray], size: int, deadline: Optional[float] = None):
        self.inputs = inputs
        self.size = size
        self.deadline = deadline  # time.monotonic() seconds after which the client no longer waits
        self.future: Future = Future()

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


class _Batch:
    def __init__(self, key, created: float):
        self.key = key
        self.created = created
        self.tasks: List[_Task] = []
        self.size = 0
        self.closed = False  # no more tasks may join (full, or a task that did not fit came after it)


def task_size(inputs: Mapping[str, np.ndarray]) -> int:
    """The 0th-dimension size shared by every input of a task (BatchingSession's requirement)."""
    sizes = set()
    for array in inputs.values():
        if array.ndim == 0:
            raise invalid_argument("Batching session Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) != 1:
        raise invalid_argument("Batching session Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """Append copies of the first row until the array has `rows` rows (BatchingSession pads this way)."""
    if rows == array.shape[0]:
        return array
    return np.concatenate([array, np.repeat(array[:1], rows - array.shape[0], axis=0)])


def _pad_trailing_dims(arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Pad dims 1.. of each array to the largest among them (pad_variable_length_inputs), with zeros/b''."""
    target = np.max([a.shape[1:] for a in arrays], axis=0)
    padded = []
    for array in arrays:
        widths = [(0, 0)] + [(0, int(t - s)) for t, s in zip(target, array.shape[1:], strict=True)]
        fill = b"" if array.dtype == object else 0
        padded.append(np.pad(array, widths, constant_values=fill) if any(w for _, w in widths[1:]) else array)
    return padded


class BatchQueue:
    """Tasks for one signature of one servable; batches are taken off it by the scheduler's threads."""

    def __init__(self, scheduler: "BatchScheduler", run: Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]],
                 on_batch: Optional[Callable[[int, int], None]] = None):
        self._scheduler = scheduler
        self._run = run
        self._on_batch = on_batch
        self.batches: List[_Batch] = []  # guarded by scheduler.lock

    def _key(self, inputs: Mapping[str, np.ndarray]):
        # Tasks share a batch only when their tensors can be concatenated (after padding, if enabled).
        pad = self._scheduler.options.pad_variable_length_inputs
        return tuple(sorted((alias, a.dtype.str, a.ndim if pad else a.shape[1:]) for alias, a in inputs.items()))

    def submit(self, inputs: Mapping[str, np.ndarray], deadline: Optional[float] = None) -> Future:
        """Enqueue one request; the future resolves to its slice of the batch outputs (already resolved when the
        request ran inline). A task whose `deadline` has passed when its batch runs is dropped from the batch
        (DEADLINE_EXCEEDED) instead of being computed for nobody."""
        options = self._scheduler.options
        size = task_size(inputs)
        if size > options.max_batch_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {options.max_batch_size}")
        task = _Task(inputs, size, deadline)
        key = self._key(inputs)
        with self._scheduler.lock:
            if self._scheduler.stopped:
                raise unavailable("Batch scheduler is shut down")
            if self._scheduler.take_idle_slot():
                inline = _Batch(key, time.monotonic())
                inline.tasks.append(task)
                inline.size = size
            else:
                inline = None
        if inline is not None:
            # An idle batch thread would take this one-task batch at once (timeout 0, nothing queued): run it
            # here instead and save the two thread switches.
            try:
                self.process(inline)
            finally:
                self._scheduler.release_slot()
            return task.future
        with self._scheduler.lock:
            batch = self.batches[-1] if self.batches else None
            if batch is None or batch.closed or batch.key != key or batch.size + size > options.max_batch_size:
                if batch is not None:
                    batch.closed = True
                if len(self.batches) >= options.max_enqueued_batches:
                    raise unavailable(QUEUE_FULL_MESSAGE)
                batch = _Batch(key, time.monotonic())
                self.batches.append(batch)
            batch.tasks.append(task)
            batch.size += size
            if batch.size == options.max_batch_size:
                batch.closed = True
            self._scheduler.lock.notify()
        return task.future

    def process(self, batch: _Batch) -> None:
        """Run one batch and hand every task its rows (or the batch's error)."""
        now = time.monotonic()
        tasks = []
        for task in batch.tasks:
            if task.expired(now):
                task.future.set_exception(deadline_exceeded("Deadline exceeded while the request was queued"))
            else:
                tasks.append(task)
        if not tasks:
            return
        size = sum(task.size for task in tasks)
        try:
            padded = self._scheduler.options.padded_size(size)
            merged = {}
            for alias in tasks[0].inputs:
                parts = [t.inputs[alias] for t in tasks]
                if self._scheduler.options.pad_variable_length_inputs:
                    parts = _pad_trailing_dims(parts)
                merged[alias] = _pad_rows(np.concatenate(parts) if len(parts) > 1 else parts[0], padded)
            if self._on_batch is not None:
                self._on_batch(size, padded)
            outputs = self._run(merged)
            for alias, array in outputs.items():
                if array.ndim == 0 or array.shape[0] != padded:
                    raise invalid_argument(f"Batched output tensor '{alias}' has 0th dimension "
                                           f"{array.shape[0] if array.ndim else 0}, expected {padded}")
            offset = 0
            for task in tasks:
                task.future.set_result({a: v[offset:offset + task.size] for a, v in outputs.items()})
                offset += task.size
        except Exception as e:  # every request of the batch learns the failure
            error = e if isinstance(e, ServingError) else internal(f"{type(e).__name__}: {e}")
            for task in tasks:
                if not task.future.done():
                    task.future.set_exception(error)


class BatchScheduler:
    """`num_batch_threads` threads shared by all queues; each picks the oldest batch that is ready."""

    def __init__(self, options: BatchingOptions):
        self.options = options
        self.lock = threading.Condition()
        self.stopped = False
        self._free_slots = options.num_batch_threads  # batches may run concurrently up to num_batch_threads
        self._queues: List[BatchQueue] = []
        self._threads = [threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
                         for i in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def add_queue(self, run, on_batch=None) -> BatchQueue:
        queue = BatchQueue(self, run, on_batch)
        with self.lock:
            self._queues.append(queue)
        return queue

    def remove_queue(self, queue: BatchQueue) -> None:
        """Forget a queue once its servable is unloaded (its in-flight batches have been drained by then)."""
        with self.lock:
            if queue in self._queues:
                self._queues.remove(queue)

    def _next_batch(self):
        """Under the lock: the ready batch that has waited longest, or the seconds until one may be ready."""
        now = time.monotonic()
        timeout = self.options.batch_timeout_micros / 1e6
        best, best_queue, wait = None, None, None
        for queue in self._queues:
            if not queue.batches:
                continue
            batch = queue.batches[0]
            ready_at = now if (batch.closed or len(queue.batches) > 1) else batch.created + timeout
            if ready_at <= now:
                if best is None or batch.created < best.created:
                    best, best_queue = batch, queue
            else:
                wait = ready_at - now if wait is None else min(wait, ready_at - now)
        if best is not None:
            best_queue.batches.pop(0)
        return best_queue, best, wait

    def take_idle_slot(self) -> bool:
        """Under the lock: claim a processing slot for an inline batch, if the scheduler would run one at once
        (batch timeout 0, nothing queued anywhere, a slot free)."""
        if self.options.batch_timeout_micros or self._free_slots == 0 or any(q.batches for q in self._queues):
            return False
        self._free_slots -= 1
        return True

    def release_slot(self) -> None:
        with self.lock:
            self._free_slots += 1
            self.lock.notify_all()

    def _work(self):
        while True:
            with self.lock:
                while True:
                    if self.stopped:
                        return
                    queue, batch, wait = self._next_batch() if self._free_slots else (None, None, None)
                    if batch is not None:
                        self._free_slots -= 1
                        break
                    self.lock.wait(wait)
            try:
                queue.process(batch)
            finally:
                self.release_slot()

    def stop(self):
        """Stop the threads; tasks still queued fail with UNAVAILABLE."""
        with self.lock:
            self.stopped = True
            pending = [t for q in self._queues for b in q.batches for t in b.tasks]
            for queue in self._queues:
                queue.batches.clear()
            self.lock.notify_all()
        for task in pending:
            task.future.set_exception(unavailable("Batch scheduler is shut down"))
        for thread in self._threads:
            thread.join(timeout=5)
