"""One owner thread per loaded in-process model.

Native engines (llama.cpp, MLX) are not safe to drive from several threads, and
a loaded model must be freed on the thread that used it. ``EngineThread`` loads
a resource on its own thread, runs every job there one at a time, and hands the
results back through per-job queues. Errors travel as values and are re-raised
in the caller, after every item the job produced before failing, so nothing a
job streamed is lost. Closing stops the thread and unloads the resource on it.

The helper knows nothing about models: ``load`` builds the resource, ``unload``
frees it, and a job is ``fn(resource, ctx)`` that calls ``ctx.emit(item)``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")  # the resource the thread owns (a loaded model)
T = TypeVar("T")  # the items a streaming job emits
V = TypeVar("V")  # the value a blocking call returns


class EngineClosedError(RuntimeError):
    """The engine thread was closed; create a new one to run more jobs."""


@dataclass(frozen=True, slots=True)
class _Item(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _Done:
    pass


_DONE = _Done()


class JobContext(Generic[T]):
    """What a job sees on the owner thread: a way to emit items, and whether anyone listens."""

    def __init__(self, closing: threading.Event) -> None:
        self._out: queue.SimpleQueue[_Item[T] | _Failed | _Done] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self._closing = closing

    def emit(self, item: T) -> None:
        self._out.put(_Item(item))

    @property
    def abandoned(self) -> bool:
        """True once the caller stopped reading or the engine is closing: stop early."""
        return self._abandoned.is_set() or self._closing.is_set()


class _Job(Generic[R, T]):
    def __init__(self, fn: Callable[[R, JobContext[T]], None], closing: threading.Event) -> None:
        self.fn = fn
        self.ctx: JobContext[T] = JobContext(closing)

    def execute(self, resource: R) -> None:
        try:
            self.fn(resource, self.ctx)
        except BaseException as exc:  # handed to the caller, re-raised there
            self.ctx._out.put(_Failed(exc))
        else:
            self.ctx._out.put(_DONE)

    def fail(self, error: BaseException) -> None:
        self.ctx._out.put(_Failed(error))


class EngineThread(Generic[R]):
    """Loads a resource on a dedicated thread and runs jobs on it, one at a time.

    ``load`` runs on the thread as soon as the object is built; if it raises, every
    job (and ``wait_loaded``) re-raises that error. ``unload`` runs on the thread
    when it stops. Jobs queue in submission order.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], R],
        unload: Callable[[R], None],
    ) -> None:
        self._load = load
        self._unload = unload
        self._jobs: queue.SimpleQueue[_Job[R, object] | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    # --- owner thread ----------------------------------------------------------

    def _main(self) -> None:
        try:
            resource = self._load()
        except BaseException as exc:
            self._load_error = exc
            self._loaded.set()
            self._drain(exc)
            return
        self._loaded.set()
        try:
            while (job := self._jobs.get()) is not None:
                job.execute(resource)
        finally:
            self._unload(resource)

    def _drain(self, error: BaseException) -> None:
        while (job := self._jobs.get()) is not None:
            job.fail(error)

    # --- caller side -----------------------------------------------------------

    def wait_loaded(self) -> None:
        """Block until the resource is loaded; re-raise the load error if it failed."""
        self._loaded.wait()
        if self._load_error is not None:
            raise self._load_error

    @property
    def alive(self) -> bool:
        return not self._closed and self._load_error is None

    def stream(self, fn: Callable[[R, JobContext[T]], None]) -> Generator[T, None, None]:
        """Run ``fn`` on the owner thread; yield what it emits; re-raise what it raises.

        The job is queued when iteration starts. If the caller stops iterating
        early, ``ctx.abandoned`` turns true so the job can stop.
        """
        job: _Job[R, T] = _Job(fn, self._closing)
        self._submit(job)
        try:
            while True:
                message = job.ctx._out.get()
                if isinstance(message, _Item):
                    yield message.value
                elif isinstance(message, _Failed):
                    raise message.error
                else:
                    return
        finally:
            job.ctx._abandoned.set()

    def call(self, fn: Callable[[R], V]) -> V:
        """Run ``fn(resource)`` on the owner thread and return its result."""

        def job(resource: R, ctx: JobContext[V]) -> None:
            ctx.emit(fn(resource))

        for value in self.stream(job):
            return value
        raise RuntimeError("engine job returned no value")  # pragma: no cover

    def _submit(self, job: _Job[R, T]) -> None:
        with self._lock:
            if self._closed:
                raise EngineClosedError("The engine was closed: load the model again to use it.")
            self._jobs.put(job)  # type: ignore[arg-type]

    def close(self, timeout: float | None = None) -> None:
        """Stop after the running job (which sees ``abandoned``), unload, join. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closing.set()
            self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
