"""Ingestion end to end: files and folders in, measured Documents and Problems out.

``ingest()`` walks the inputs (``walk``), reads each file once (hash,
duplicate check, type, text), and counts tokens with the DeepSeek V4
tokenizer. Work overlaps: paged documents are extracted in worker processes
(``pool``) while the calling thread reads text files, and a counting thread
tokenizes batches as they fill (``measure``; the tokenizer runs in parallel
without the GIL). Counts are stored on disk by content hash (``count_cache``),
so a document read before is not tokenized again, and the tokenizer is not
even loaded when nothing is new. One bad file never stops the others: each
becomes a Problem with its reason, including unexpected errors.

``ingest()`` blocks; ``ingest_in_background()`` runs it on its own thread and
returns a Future, so a UI never waits on it. Progress is reported on the
ingesting thread; cancellation is checked between files and while waiting.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.core.ingest import detect, paged
from app.core.ingest.archive import ArchiveError
from app.core.ingest.count_cache import CountCache, open_for
from app.core.ingest.decode import DecodeError, decode_text
from app.core.ingest.measure import Plan, finish, plan
from app.core.ingest.model import Document, Duplicate, IngestResult, Problem, Progress
from app.core.ingest.ocr_pass import read_scans
from app.core.ingest.paged import PagedError
from app.core.ingest.pool import ExtractionPool, PagedJob
from app.core.ingest.walk import Candidate, walk
from app.core.tokens import TokenCounter, deepseek_v4

DEFAULT_SIZE_LIMIT = 20_000_000
_BATCH_CHARS = 256 << 10  # text per counting batch: enough to keep every core busy
_PROGRESS_EVERY = 0.1  # seconds between progress reports


@dataclass(frozen=True)
class IngestOptions:
    size_limit: int = DEFAULT_SIZE_LIMIT  # bytes, for text files (not PDFs/EPUBs/DOCX)
    force: frozenset[str] = frozenset()  # paths or globs that override skip rules
    extra_ignore: tuple[str, ...] = ()  # gitignore-style patterns for every input folder
    follow_symlinks: bool = False  # follow symlinked folders (loops are still caught)
    workers: int | None = None  # processes for paged documents; None: pool.default_workers()
    # Paged documents totalling at least this many bytes go to worker processes
    # (their start overlaps other work; below this, extracting in process is as fast).
    pool_threshold: int = 1_000_000
    # Reuse and store token counts in the data dir (``count_cache``).
    count_cache: bool = True


class Cancellable(Protocol):
    """``threading.Event`` or ``backends.base.CancelToken``."""

    def wait(self, seconds: float) -> bool: ...


ProgressCallback = Callable[[Progress], None]


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    *,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: Cancellable | None = None,
    counter: TokenCounter | None = None,
) -> IngestResult:
    """Read ``paths`` into an ordered corpus; blocks until done or cancelled."""
    return _Run(paths, options or IngestOptions(), progress, cancel, counter).run()


def ingest_in_background(
    paths: Sequence[str | os.PathLike[str]],
    *,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: Cancellable | None = None,
) -> cf.Future[IngestResult]:
    """Run ``ingest`` on a thread of its own; progress is reported on that thread."""
    future: cf.Future[IngestResult] = cf.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(ingest(paths, options=options, progress=progress, cancel=cancel))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name="lectern-ingest", daemon=True).start()
    return future


def _is_cancelled(cancel: Cancellable | None) -> bool:
    if cancel is None:
        return False
    flag = getattr(cancel, "cancelled", None)
    if isinstance(flag, bool):
        return flag
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set()) if callable(is_set) else cancel.wait(0)


@dataclass
class _Slot:
    """One candidate file on its way to a Document (or a Problem/Duplicate)."""

    candidate: Candidate
    size: int = 0
    mtime: float = 0.0
    draft: Document | None = None  # text extracted, not yet measured
    job: PagedJob | None = None  # pages being extracted elsewhere
    kind: str = ""
    sha256: str = ""
    notes: tuple[str, ...] = ()
    document: Document | None = None  # measured
    problem: Problem | None = None
    finished: bool = False
    # Paged documents from the pool: token counts of page ranges, by first page.
    range_counts: dict[int, cf.Future[list[int]]] = dataclasses.field(default_factory=dict)
    page_tokens: int | None = None
    count_key: bytes | None = None  # where its counts go in the count cache


class _Run:
    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        options: IngestOptions,
        progress: ProgressCallback | None,
        cancel: Cancellable | None,
        counter: TokenCounter | None,
    ) -> None:
        self.paths = paths
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.result = IngestResult()
        self.started = time.monotonic()
        self.last_report = 0.0
        self.slots: list[_Slot] = []
        self.seen: dict[str, str] = {}  # sha256 -> display path
        self.pool: ExtractionPool | None = None
        self.counting = cf.ThreadPoolExecutor(1, thread_name_prefix="lectern-count")
        self.counter = counter
        self.pending: list[_Slot] = []
        self.plans: list[Plan] = []
        self.pending_chars = 0
        self.batches: list[tuple[list[_Slot], cf.Future[list[tuple[int, int]]]]] = []
        self.harvested = 0
        self.bytes_total = 0
        self.bytes_done = 0
        self.tokens = 0
        self.cache: CountCache | None = open_for(counter) if options.count_cache else None
        self.counter_requested = False

    # -- the run ------------------------------------------------------------

    def run(self) -> IngestResult:
        try:
            return self._run()
        finally:
            cancelled = self.result.cancelled
            if self.pool is not None:
                self.pool.close(cancel=cancelled)
            self.counting.shutdown(wait=not cancelled, cancel_futures=cancelled)
            if self.cache is not None:
                self.cache.close()  # stores the new counts

    def _run(self) -> IngestResult:
        opts = self.options
        walked = walk(
            self.paths,
            follow_symlinks=opts.follow_symlinks,
            extra_ignore=opts.extra_ignore,
            force=opts.force,
        )
        self.result.problems.extend(walked.problems)
        self.result.ignored.extend(walked.ignored)
        self.slots = [_Slot(c, size=c.size, mtime=c.mtime) for c in _unique_paths(walked.files)]
        self.bytes_total = sum(slot.size for slot in self.slots)
        paged_bytes = sum(
            slot.size
            for slot in self.slots
            if detect.kind_of(slot.candidate.path, b"").family == "paged"
        )
        if paged_bytes >= opts.pool_threshold:
            # Start extracting before anything else: the workers then run
            # while the tokenizer loads and text files are read.
            self.pool = ExtractionPool(opts.workers)
            for slot in self.slots:
                kind = detect.kind_of(slot.candidate.path, b"")
                if slot.size and kind.family == "paged":
                    self._start_job(slot, kind.kind)
        if self.cache is None:
            self._load_counter()

        for slot in self.slots:
            if self._cancelled():
                return self._finish(cancelled=True)
            if slot.finished:
                continue
            try:
                self._read(slot)
            except Exception as exc:  # never let one file stop the batch
                self._problem(slot, f"could not be read: {type(exc).__name__}: {exc}"[:300])
            if slot.draft is not None:
                self._queue(slot)
            self._report(slot.candidate.path)

        for slot in self.slots:
            if slot.job is not None:
                if not self._wait_for(slot.job):
                    return self._finish(cancelled=True)
                try:
                    self._collect_pages(slot)
                except Exception as exc:
                    self._problem(slot, f"could not be read: {type(exc).__name__}: {exc}"[:300])
                if slot.draft is not None:
                    self._queue(slot)
        if self._cancelled():
            return self._finish(cancelled=True)
        self._flush()
        for _, future in self.batches:
            if not self._wait_future(future):
                return self._finish(cancelled=True)
        return self._finish(cancelled=False)

    def _finish(self, *, cancelled: bool) -> IngestResult:
        if cancelled:
            for slot in self.slots:
                if slot.job is not None:
                    slot.job.cancel()
        self._harvest()
        self.result.documents = [s.document for s in self.slots if s.document is not None]
        # Problems in input order, whenever they were found.
        self.result.problems.extend(s.problem for s in self.slots if s.problem is not None)
        self.result.cancelled = cancelled
        self._report("", force=True)
        return self.result

    # -- reading one file -----------------------------------------------------

    def _read(self, slot: _Slot) -> None:
        cand = slot.candidate
        name = cand.path
        if slot.size == 0:
            self._problem(slot, "empty file (0 bytes)")
            return
        kind = detect.kind_of(name, b"")
        if kind.family == "text" and not cand.forced:
            why = detect.skip_reason(name, slot.size, self.options.size_limit)
            if why:
                self._problem(slot, why, forceable=True)
                return
        data = b""
        try:
            with open(cand.source, "rb") as f:
                if kind.family == "text":
                    data = f.read()
                    digest = hashlib.sha256(data).hexdigest()
                else:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as exc:
            reason = (
                "cannot read it: permission denied; check its permissions"
                if isinstance(exc, PermissionError)
                else f"cannot read it: {exc.strerror or exc}"
            )
            self._problem(slot, reason)
            return
        self.bytes_done += slot.size
        if kind.family == "text":
            if not data:
                self._problem(slot, "empty file (0 bytes)")
                return
            kind = detect.kind_of(name, data[: detect.SNIFF_BYTES])  # e.g. a PDF named .txt
        slot.sha256 = digest
        if digest in self.seen:
            self.result.duplicates.append(Duplicate(name, self.seen[digest]))
            slot.finished = True
            if slot.job is not None:
                slot.job.cancel()
                slot.job = None
            return
        self.seen[digest] = name
        slot.kind = kind.kind
        if kind.family == "paged":
            self._start_paged(slot, kind.kind)
        elif kind.family == "docx":
            self._read_docx(slot)
        else:
            self._read_text(slot, data, kind)

    def _read_text(self, slot: _Slot, data: bytes, kind: detect.Kind) -> None:
        name = slot.candidate.path
        forced = slot.candidate.forced
        why = detect.binary_reason(name, data[: detect.SNIFF_BYTES])
        if why and not forced:
            self._problem(slot, why, forceable="NUL byte" in why)
            return
        try:
            decoded = decode_text(data)
        except DecodeError as exc:
            self._problem(slot, str(exc))
            return
        text = decoded.text
        if kind.kind == "html":
            from app.core.ingest.html import html_text

            text = html_text(text)
        if not forced:
            why = detect.minified_reason(name, text)
            if why:
                self._problem(slot, why, forceable=True)
                return
        if not text.strip():
            self._problem(slot, "no text in it (only whitespace)")
            return
        slot.notes = decoded.notes
        slot.draft = self._draft(slot, text, language=kind.language)

    def _read_docx(self, slot: _Slot) -> None:
        from app.core.ingest.office import OfficeError, office_text

        try:
            text = office_text(str(slot.candidate.source), slot.kind)
        except (OfficeError, ArchiveError) as exc:
            self._problem(slot, str(exc))
            return
        if not text:
            self._problem(slot, "no text in it (an empty document?)")
            return
        slot.draft = self._draft(slot, text)

    def _start_job(self, slot: _Slot, kind: str) -> None:
        assert self.pool is not None

        def count_range(start: int, pages: list[str]) -> None:
            # After a cancel the counting thread is shut down; nothing to count.
            with contextlib.suppress(RuntimeError):
                slot.range_counts[start] = self._count_later(pages)

        slot.job = self.pool.job(str(slot.candidate.source), kind, count_range)

    def _start_paged(self, slot: _Slot, kind: str) -> None:
        if slot.job is not None:
            return  # started before reading
        if self.pool is not None:
            self._start_job(slot, kind)
            return
        try:
            pages = paged.extract_all(str(slot.candidate.source), kind)
        except PagedError as exc:
            self._problem(slot, str(exc))
            return
        self._pages_to_draft(slot, pages)

    def _collect_pages(self, slot: _Slot) -> None:
        job, slot.job = slot.job, None
        assert job is not None
        try:
            pages = job.result()
        except PagedError as exc:
            self._problem(slot, str(exc))
            return
        except Exception as exc:
            self._problem(slot, f"could not be read: {type(exc).__name__}: {exc}"[:300])
            return
        # Pages were counted as their ranges arrived; count any range whose
        # callback has not run yet.
        size = paged.CHUNK_PAGES if slot.kind == "pdf" else max(1, len(pages))
        futures = [
            slot.range_counts.get(i) or self._count_later(pages[i : i + size])
            for i in range(0, len(pages), size)
        ]
        try:
            slot.page_tokens = sum(sum(f.result()) for f in futures)
        except Exception as exc:
            self._problem(slot, f"could not count its tokens: {exc}"[:300])
            return
        self._pages_to_draft(slot, pages)

    def _pages_to_draft(self, slot: _Slot, pages: list[str]) -> None:
        ocr_notes: tuple[str | None, str | None] = (None, None)
        if slot.kind == "pdf" and not all(pages):
            read = read_scans(
                str(slot.candidate.source),
                pages,
                cancelled=self._cancelled,
                report=self._report_ocr,
                label=slot.candidate.path,
            )
            if read is None:
                return  # stopped: the run sees the cancel
            if read.problem is not None:
                self._problem(slot, read.problem)
                return
            if read.pages is not pages:
                slot.page_tokens = None  # counted again with the OCR text
            pages, ocr_notes = read.pages, (read.mark, read.warning)
        if not any(pages):
            self._problem(
                slot,
                f"no text on any of its {len(pages)} pages, not even by OCR (blank pages?)"
                if slot.kind == "pdf"
                else f"no text layer on any of its {len(pages)} pages (scanned images?); "
                "run OCR on it (e.g. ocrmypdf) and add the result",
            )
            return
        starts = []
        offset = 0
        for page in pages:
            starts.append(offset)
            offset += len(page)
        note = paged.no_text_note(pages)
        slot.notes = tuple(n for n in (ocr_notes[0], note, ocr_notes[1]) if n)
        slot.draft = self._draft(slot, "".join(pages), page_starts=tuple(starts))

    def _draft(
        self,
        slot: _Slot,
        text: str,
        *,
        page_starts: tuple[int, ...] = (),
        language: str | None = None,
    ) -> Document:
        return Document(
            path=slot.candidate.path,
            source=str(slot.candidate.source),
            kind=slot.kind,
            text=text,
            sha256=slot.sha256,
            tokens=0,
            size=slot.size,
            mtime=slot.mtime,
            anchor="page" if page_starts else "line",
            page_starts=page_starts,
            notes=slot.notes,
            language=language,
        )

    def _problem(self, slot: _Slot, reason: str, *, forceable: bool = False) -> None:
        slot.problem = Problem(slot.candidate.path, reason, forceable)
        slot.finished = True
        slot.draft = None
        if slot.job is not None:
            slot.job.cancel()
            slot.job = None

    # -- counting -------------------------------------------------------------

    def _queue(self, slot: _Slot) -> None:
        # Planning is Python (GIL) work done here, while the counting thread
        # tokenizes earlier batches without the GIL.
        assert slot.draft is not None
        if self.cache is not None:
            slot.count_key = self.cache.document_key(slot.draft)
            known = self.cache.get(slot.count_key)
            if known is not None:
                self._measured(slot, *known)
                return
        self._load_counter()
        self.pending.append(slot)
        self.plans.append(plan(slot.draft, slot.page_tokens))
        if slot.page_tokens is None:
            self.pending_chars += len(slot.draft.text)
        if self.pending_chars >= _BATCH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending, self.pending_chars = self.pending, [], 0
        plans, self.plans = self.plans, []
        future = self.counting.submit(lambda: finish(plans, self._counter()))
        self.batches.append((batch, future))

    def _count_later(self, texts: list[str]) -> cf.Future[list[int]]:
        """Count ``texts`` on the counting thread (in order with the batches)."""
        return self.counting.submit(self._count_texts, texts)

    def _count_texts(self, texts: list[str]) -> list[int]:
        """Counts of ``texts``, from the count cache where it has them."""
        cache = self.cache
        if cache is None:
            return self._counter().count_batch(texts)
        keys = [cache.text_key(t) for t in texts]
        known = cache.get_many(keys)
        counts = [known[k][0] if k in known else -1 for k in keys]
        todo = [i for i, n in enumerate(counts) if n < 0]
        if todo:
            fresh = self._counter().count_batch([texts[i] for i in todo])
            for i, n in zip(todo, fresh, strict=True):
                counts[i] = n
            cache.put_many((keys[i], counts[i], 0) for i in todo)
        return counts

    def _load_counter(self) -> None:
        """Start loading the tokenizer (~0.3 s) on the counting thread, once: a run
        whose counts are all in the cache never loads it."""
        if not self.counter_requested:
            self.counter_requested = True
            self.counting.submit(self._counter)

    def _counter(self) -> TokenCounter:
        """The token counter; only the counting thread calls this (it loads once)."""
        return self.counter or deepseek_v4()

    def _harvest(self) -> None:
        """Turn finished batches (they finish in order) into Documents."""
        while self.harvested < len(self.batches):
            batch, future = self.batches[self.harvested]
            if not future.done() or future.cancelled():
                return
            self.harvested += 1
            try:
                counts = future.result()
            except Exception as exc:
                for slot in batch:
                    self._problem(slot, f"could not count its tokens: {exc}"[:300])
                continue
            for slot, (tokens, block) in zip(batch, counts, strict=True):
                if self.cache is not None and slot.count_key is not None:
                    self.cache.put(slot.count_key, tokens, block)
                self._measured(slot, tokens, block)

    def _measured(self, slot: _Slot, tokens: int, block: int) -> None:
        assert slot.draft is not None
        slot.document = dataclasses.replace(slot.draft, tokens=tokens, block_tokens=block)
        slot.draft = None
        slot.finished = True
        self.tokens += block  # the one figure shown everywhere: what it costs in the prompt

    # -- waiting, progress, cancellation -------------------------------------

    def _cancelled(self) -> bool:
        return _is_cancelled(self.cancel)

    def _wait_future(self, future: cf.Future[list[tuple[int, int]]]) -> bool:
        """Wait, reporting progress; False if cancelled meanwhile."""
        while not cf.wait([future], timeout=_PROGRESS_EVERY).done:
            if self._cancelled():
                return False
            self._report("")
        return True

    def _wait_for(self, job: PagedJob) -> bool:
        while not job.wait(_PROGRESS_EVERY):
            if self._cancelled():
                return False
            self._report("")
        return True

    def _report_ocr(self, current: str, eta: float | None) -> None:
        # OCR's ETA comes from the pages read so far; the bytes read say nothing of it.
        self._report(current, force=True, eta=eta, eta_given=True)

    def _report(
        self,
        current: str,
        *,
        force: bool = False,
        eta: float | None = None,
        eta_given: bool = False,
    ) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self.last_report < _PROGRESS_EVERY:
            return
        self.last_report = now
        self._harvest()
        elapsed = now - self.started
        done = sum(1 for s in self.slots if s.finished)
        if not eta_given and self.bytes_done and self.bytes_total and elapsed > 0.2:
            eta = max(0.0, elapsed * (self.bytes_total / self.bytes_done - 1))
        self.progress(Progress(done, len(self.slots), self.tokens, elapsed, eta, current))


def _unique_paths(files: list[Candidate]) -> list[Candidate]:
    """Make display paths unique (two inputs may still name the same file)."""
    used: set[str] = set()
    out = []
    for cand in files:
        path = cand.path
        n = 2
        while path in used:
            path = f"{cand.path} ({n})"
            n += 1
        used.add(path)
        out.append(cand if path == cand.path else dataclasses.replace(cand, path=path))
    return out
