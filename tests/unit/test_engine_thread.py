"""The owner-thread helper: one thread loads, runs every job and unloads; errors come
back as values after the items already produced; closing and abandoning stop work."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from backends.local.engine_thread import EngineClosedError, EngineThread, JobContext


class Resource:
    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.used_on: set[int] = set()
        self.unloaded_on: list[int] = []
        self.running = 0
        self.max_running = 0


def make() -> tuple[EngineThread[Resource], list[Resource]]:
    made: list[Resource] = []

    def load() -> Resource:
        made.append(Resource())
        return made[-1]

    def unload(resource: Resource) -> None:
        resource.unloaded_on.append(threading.get_ident())

    return EngineThread("test-engine", load, unload), made


@pytest.fixture
def engine() -> Iterator[tuple[EngineThread[Resource], list[Resource]]]:
    thread, made = make()
    yield thread, made
    thread.close(timeout=10)


def test_load_jobs_and_unload_all_run_on_the_owner_thread(
    engine: tuple[EngineThread[Resource], list[Resource]],
) -> None:
    thread, made = engine
    thread.wait_loaded()

    def job(resource: Resource, ctx: JobContext[int]) -> None:
        resource.used_on.add(threading.get_ident())
        for i in range(3):
            ctx.emit(i)

    assert list(thread.stream(job)) == [0, 1, 2]
    assert thread.call(lambda r: threading.get_ident()) == made[0].thread
    thread.close(timeout=10)
    resource = made[0]
    assert resource.used_on == {resource.thread} != {threading.get_ident()}
    assert resource.unloaded_on == [resource.thread]


def test_an_error_arrives_after_the_items_produced_before_it(
    engine: tuple[EngineThread[Resource], list[Resource]],
) -> None:
    thread, _ = engine

    def job(resource: Resource, ctx: JobContext[str]) -> None:
        ctx.emit("kept")
        raise KeyError("boom")

    got: list[str] = []
    with pytest.raises(KeyError, match="boom"):
        for item in thread.stream(job):
            got.append(item)
    assert got == ["kept"]
    assert thread.call(lambda r: "still works") == "still works"


def test_jobs_run_one_at_a_time(engine: tuple[EngineThread[Resource], list[Resource]]) -> None:
    thread, made = engine

    def job(resource: Resource, ctx: JobContext[None]) -> None:
        resource.running += 1
        resource.max_running = max(resource.max_running, resource.running)
        threading.Event().wait(0.01)
        resource.running -= 1

    workers = [threading.Thread(target=lambda: list(thread.stream(job))) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    assert made[0].max_running == 1


def test_a_failed_load_is_raised_to_every_caller() -> None:
    def load() -> Resource:
        raise OSError("no such model")

    thread: EngineThread[Resource] = EngineThread("bad", load, lambda r: None)
    with pytest.raises(OSError, match="no such model"):
        thread.wait_loaded()
    with pytest.raises(OSError, match="no such model"):
        thread.call(lambda r: 1)
    assert not thread.alive
    thread.close(timeout=10)


def test_close_is_idempotent_and_refuses_later_jobs(
    engine: tuple[EngineThread[Resource], list[Resource]],
) -> None:
    thread, made = engine
    thread.wait_loaded()
    thread.close(timeout=10)
    thread.close(timeout=10)
    assert made[0].unloaded_on == [made[0].thread]
    with pytest.raises(EngineClosedError):
        thread.call(lambda r: 1)


def test_a_caller_that_stops_reading_abandons_the_job(
    engine: tuple[EngineThread[Resource], list[Resource]],
) -> None:
    thread, _ = engine
    finished = threading.Event()
    produced: list[int] = []

    def job(resource: Resource, ctx: JobContext[int]) -> None:
        for i in range(100_000):
            if ctx.abandoned:
                break
            produced.append(i)
            ctx.emit(i)
            threading.Event().wait(0.001)
        finished.set()

    stream = thread.stream(job)
    assert next(stream) == 0
    stream.close()  # the caller walks away
    assert finished.wait(10)
    assert len(produced) < 100_000


def test_closing_signals_the_running_job(
    engine: tuple[EngineThread[Resource], list[Resource]],
) -> None:
    thread, made = engine
    started = threading.Event()

    def job(resource: Resource, ctx: JobContext[str]) -> None:
        started.set()
        while not ctx.abandoned:
            threading.Event().wait(0.001)
        ctx.emit("saw close")

    results: list[str] = []
    reader = threading.Thread(target=lambda: results.extend(thread.stream(job)))
    reader.start()
    assert started.wait(10)
    thread.close(timeout=10)
    reader.join(timeout=10)
    assert results == ["saw close"]
    assert made[0].unloaded_on == [made[0].thread]
