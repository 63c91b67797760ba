"""A long job on a worker thread, with its cancel token and its outcome.

``Job.start(name, work, sink)`` runs ``work(cancel)`` on a daemon thread. The
work reports through ``sink`` as it goes; when it returns, the job sends
``JobFinished`` with the outcome's ``to_dict()`` and keeps the outcome for
``result()``; when it raises, the job sends ``JobFailed`` with a message that
says what to do (``WorkspaceError`` carries one; anything else is a bug and
says so). ``cancel()`` sets the token from any thread: the work sees it
between tokens, files or chunks, and returns what it has.

The window uses the same jobs through its task helper; the CLI waits on one
and turns Ctrl-C into ``cancel()``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from app.core.events import JobFailed, JobFinished, Sink
from backends.base import BackendError, CancelToken


class Outcome(Protocol):
    def to_dict(self) -> Mapping[str, Any]: ...


T = TypeVar("T", bound=Outcome)


class WorkspaceError(Exception):
    """A request the workspace cannot carry out; ``message`` says why and what to do.

    ``code`` is the CLI's exit status: 1 failed, 2 bad input, 3 refused (budget,
    window, offline), 130 stopped.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Job(Generic[T]):
    """One running job. Create with ``Job.start``."""

    def __init__(
        self,
        name: str,
        work: Callable[[CancelToken], T],
        sink: Sink,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._cleanup = cleanup
        self.cancel_token = CancelToken()
        self._work = work
        self._sink = sink
        self._done = threading.Event()
        self._outcome: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"lectern-{name}", daemon=True)

    @classmethod
    def start(
        cls,
        name: str,
        work: Callable[[CancelToken], T],
        sink: Sink,
        cleanup: Callable[[], None] | None = None,
    ) -> Job[T]:
        """Start ``work``; ``cleanup`` runs on the job's thread when it ends (the
        workspace releases the thread's database connection there)."""
        job = cls(name, work, sink, cleanup)
        job._thread.start()
        return job

    def _run(self) -> None:
        event: JobFinished | JobFailed
        try:
            self._outcome = self._work(self.cancel_token)
            event = JobFinished(self.name, self._outcome.to_dict())
        except BaseException as exc:  # reported, never lost on a dead thread
            self._error = exc
            event = JobFailed(self.name, error_message(exc))
        finally:
            if self._cleanup is not None:
                with contextlib.suppress(Exception):
                    self._cleanup()
            self._done.set()  # before the event: a listener may call result() at once
        self._emit(event)

    def _emit(self, event: JobFinished | JobFailed) -> None:
        # A front end's bug must not hide the outcome from result().
        with contextlib.suppress(Exception):
            self._sink(event)

    def cancel(self) -> None:
        """Ask the job to stop; it returns what it has (an answer so far is kept)."""
        self.cancel_token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has ended (within ``timeout`` seconds)."""
        return self._done.wait(timeout)

    def result(self) -> T:
        """The outcome; raises the job's error. Call after ``wait()``."""
        if not self._done.is_set():
            raise RuntimeError(f"Job {self.name!r} is still running.")
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome


def error_message(exc: BaseException) -> str:
    """What to tell the user about ``exc``."""
    if isinstance(exc, WorkspaceError | BackendError):
        return exc.message
    return (
        f"Lectern failed unexpectedly ({type(exc).__name__}: {exc}). Nothing that was saved is "
        "lost; please report this."
    )
