"""Paged documents extracted in worker processes, big PDFs split by page ranges.

PyMuPDF holds the GIL, so threads would not help; processes do. Workers are
forked when that is safe (a process with one thread, on Linux: milliseconds),
else they come from a ``forkserver`` that imported PyMuPDF once (a threaded
GUI), else ``spawn``.

Nothing waits for the workers: ``job()`` submits a document's first ranges
from the calling thread and returns; a PDF's first task also counts its
pages, after which a dispatcher thread queues the other ranges. Each range is
reported to a listener as it arrives, so its tokens can be counted while the
rest is still being extracted.

A job's ``result()`` returns the pages or raises ``PagedError`` with the
reason to show; a crashed worker (MuPDF on a malicious file) becomes such an
error too, never an exception that stops the batch.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from app.core.ingest import paged
from app.core.ingest.paged import PagedError

_PRELOAD = "app.core.ingest.mupdf_preload"


RangeListener = Callable[[int, list[str]], None]


class PagedJob:
    """The extraction of one document, possibly spread over several tasks.

    ``on_range(first_page_index, pages)`` is called (from a pool thread) as each
    range of pages arrives, so the caller can count them while others are
    still being extracted.
    """

    def __init__(self, path: str, kind: str, on_range: RangeListener | None = None) -> None:
        self.path = path
        self.kind = kind
        self.on_range = on_range
        self.first: Future[tuple[int, list[str]]] | None = None
        self.rest: list[Future[list[str]]] = []
        self.error: BaseException | None = None
        self.scheduled = threading.Event()  # every task is submitted (or failed to be)
        self.cancelled = False

    def _arrived(self, start: int, future: Future[Any]) -> None:
        if self.on_range is None or future.cancelled() or future.exception() is not None:
            return
        value = future.result()
        with contextlib.suppress(Exception):  # a listener's failure must not surface here
            self.on_range(start, value[1] if start == 0 else value)

    def cancel(self) -> None:
        self.cancelled = True
        for f in [self.first, *self.rest]:
            if f is not None:
                f.cancel()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once every range is extracted."""
        deadline = time.monotonic() + timeout
        if not self.scheduled.wait(timeout):
            return False
        futures: list[Future[Any]] = [f for f in [self.first, *self.rest] if f is not None]
        return not wait(futures, max(0.0, deadline - time.monotonic())).not_done

    def result(self) -> list[str]:
        """All pages' text; raises PagedError with the reason to show."""
        self.scheduled.wait()
        try:
            if self.first is None:
                raise self.error or PagedError("was not extracted")
            pages = list(self.first.result()[1])
            if self.error is not None:
                raise self.error
            for f in self.rest:
                pages.extend(f.result())
        except PagedError:
            raise
        except BrokenProcessPool:
            raise PagedError(
                f"the {self.kind.upper()} reader crashed on it (damaged or hostile file?)"
            ) from None
        return pages


class ExtractionPool:
    """Worker processes for paged documents.

    ``job()`` submits a document's first two page ranges at once, from the
    calling thread, so both workers start before anything else competes for
    the GIL (loading the tokenizer holds it for a quarter second); a
    dispatcher thread queues the remaining ranges once the page count is known.
    """

    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or default_workers()
        self._executor: ProcessPoolExecutor | None = None
        self._events: queue.SimpleQueue[PagedJob | None] = queue.SimpleQueue()
        self._closed = False
        # Started after the executor: forking is only chosen while this
        # process has a single thread.
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="lectern-extract", daemon=True
        )

    def job(self, path: str, kind: str, on_range: RangeListener | None = None) -> PagedJob:
        job = PagedJob(path, kind, on_range)
        try:
            self._submit_first(job)
        except BaseException as exc:  # the pool broke or was shut down
            job.error = job.error or exc
            job.scheduled.set()
        return job

    def close(self, *, cancel: bool = False) -> None:
        self._closed = True
        if self._dispatcher.is_alive():
            self._events.put(None)
            self._dispatcher.join()
        if self._executor is not None:
            self._executor.shutdown(wait=not cancel, cancel_futures=cancel)

    def _dispatch(self) -> None:
        while True:
            job = self._events.get()
            if job is None:
                return
            try:
                self._submit_rest(job)
            except BaseException as exc:  # the pool broke or was shut down
                job.error = job.error or exc
            finally:
                job.scheduled.set()

    def _submit(self, fn: Any, *args: Any) -> Future[Any]:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self._workers, mp_context=_context())
            future = self._executor.submit(fn, *args)  # with fork, this forks the workers
            self._dispatcher.start()
            return future
        return self._executor.submit(fn, *args)

    def _submit_range(self, job: PagedJob, start: int) -> None:
        future = self._submit(_range, job.path, job.kind, start, start + paged.CHUNK_PAGES)
        future.add_done_callback(functools.partial(job._arrived, start))
        job.rest.append(future)

    def _submit_first(self, job: PagedJob) -> None:
        if self._closed:
            raise PagedError("cancelled")
        splittable = job.kind == "pdf"
        stop = paged.CHUNK_PAGES if splittable else None
        job.first = self._submit(_first, job.path, job.kind, stop)
        job.first.add_done_callback(functools.partial(job._arrived, 0))
        if not splittable:
            job.scheduled.set()
            return
        # Most PDFs worth a pool have a second range: start it now rather than
        # after the first returns (a range past the end comes back empty).
        self._submit_range(job, paged.CHUNK_PAGES)
        # The done-callback only posts an event: submitting from the pool's own
        # thread could deadlock.
        job.first.add_done_callback(lambda _: self._events.put(job))

    def _submit_rest(self, job: PagedJob) -> None:
        assert job.first is not None
        if job.first.cancelled() or job.first.exception() is not None:
            return
        pages = job.first.result()[0]
        for start in range(2 * paged.CHUNK_PAGES, pages, paged.CHUNK_PAGES):
            if job.cancelled or self._closed:
                break
            self._submit_range(job, start)


def default_workers() -> int:
    """One worker per CPU but one, at most four.

    Extraction competes with tokenizing for the same cores, and every worker
    pays PyMuPDF's import (~0.25 s of CPU); measured on 2 cores, one worker
    beside the tokenizer finishes sooner than two.
    """
    return min(4, max(1, (os.cpu_count() or 2) - 1))


def _first(path: str, kind: str, stop: int | None) -> tuple[int, list[str]]:
    return paged.extract_first(path, kind, stop, keep_open=True)


def _range(path: str, kind: str, start: int, stop: int) -> list[str]:
    return paged.extract_pages(path, kind, start, stop, keep_open=True)


def _context() -> multiprocessing.context.BaseContext:
    """How to start workers: fork when that is safe, else a preloaded forkserver.

    Forking takes milliseconds, but only a process with no other threads may
    fork safely (a lock held by another thread stays locked in the child), and
    macOS frameworks do not survive it. The forkserver is a clean process that
    imported PyMuPDF once; workers fork from it.
    """
    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([_PRELOAD])
        return ctx
    return multiprocessing.get_context("spawn")
