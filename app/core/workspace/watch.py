"""Watching the files and folders of a session: changed, new and deleted files.

Qt-free and dependency-free: a thread polls stat snapshots (size, mtime, inode)
of the watched roots. That catches every way an editor saves, including
save-by-rename (write a temp file, rename it over the old one: the path gets a
new inode and mtime) and works the same on every OS and network drive. One
watch per folder: a path inside a watched folder adds no watch, and a folder
that holds watched paths replaces them. Changes are debounced: they are
reported once the tree has been quiet for ``debounce`` seconds, so a burst of
saves (or a checkout) is one report. A snapshot of a 3,000-file tree is a few
``os.scandir`` calls taking milliseconds, off the UI thread.

What happens next is the service's job (``Workspace.sync``): before the next
question changed and new files are read again and appended, and deleted ones
become exclusions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.core.ingest.walk import SKIP_DIRS

Stamp = tuple[int, int, int]  # size, mtime_ns, inode


@dataclass(frozen=True)
class Changes:
    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.deleted)

    def merged(self, later: Changes) -> Changes:
        """This change set followed by ``later`` (a file added then deleted is gone)."""
        state: dict[str, str] = {}
        for kind, paths in (
            ("changed", self.changed),
            ("added", self.added),
            ("deleted", self.deleted),
        ):
            for p in paths:
                state[p] = kind
        for kind, paths in (
            ("changed", later.changed),
            ("added", later.added),
            ("deleted", later.deleted),
        ):
            for p in paths:
                before = state.get(p)
                if before == "added" and kind == "deleted":
                    del state[p]
                elif before == "added" and kind == "changed":
                    continue
                elif before == "deleted" and kind == "added":
                    state[p] = "changed"
                else:
                    state[p] = kind
        return Changes(
            tuple(sorted(p for p, k in state.items() if k == "changed")),
            tuple(sorted(p for p, k in state.items() if k == "added")),
            tuple(sorted(p for p, k in state.items() if k == "deleted")),
        )

    def describe(self) -> str:
        parts = []
        for count, word in (
            (len(self.changed), "changed"),
            (len(self.added), "new"),
            (len(self.deleted), "deleted"),
        ):
            if count:
                parts.append(f"{count} {word}")
        return ", ".join(parts) + (" file" if len(self) == 1 else " files") if parts else ""

    def __len__(self) -> int:
        return len(self.changed) + len(self.added) + len(self.deleted)


def _skip_dir(name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIRS


def snapshot(roots: Iterable[str]) -> dict[str, Stamp]:
    """Stat stamps of every file under ``roots`` (files, or folders walked)."""
    out: dict[str, Stamp] = {}
    stack: list[str] = []
    for root in roots:
        try:
            st = os.stat(root)
        except OSError:
            continue
        if os.path.isdir(root):
            stack.append(root)
        else:
            out[root] = (st.st_size, st.st_mtime_ns, st.st_ino)
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not _skip_dir(entry.name):
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out[entry.path] = (st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                continue  # vanished while listed
    return out


def diff(before: dict[str, Stamp], after: dict[str, Stamp]) -> Changes:
    changed = tuple(sorted(p for p, s in after.items() if p in before and before[p] != s))
    added = tuple(sorted(p for p in after if p not in before))
    deleted = tuple(sorted(p for p in before if p not in after))
    return Changes(changed, added, deleted)


def watch_roots(paths: Iterable[str]) -> list[str]:
    """Absolute roots with one watch per folder: paths under another root are dropped."""
    resolved = sorted({str(Path(p).resolve()) for p in paths})
    roots: list[str] = []
    kept: set[str] = set()
    for path in resolved:  # sorted: a folder comes before what is inside it
        if not _under(path, kept):  # its ancestors, not every root: linear in the paths
            roots.append(path)
            kept.add(path)
    return roots


def _under(path: str, roots: set[str]) -> bool:
    """``path`` is one of ``roots`` or inside one of them."""
    while True:
        if path in roots:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


class Watcher:
    """Polls the watched roots on its own thread; ``on_change`` gets debounced Changes.

    ``on_change`` runs on the watcher's thread: a UI hands it to its own thread.
    Changes also accumulate until ``take()`` (the service reads them before the
    next question).
    """

    def __init__(
        self,
        on_change: Callable[[Changes], None] | None = None,
        *,
        interval: float = 0.5,
        debounce: float = 0.4,
    ) -> None:
        self._on_change = on_change
        self.interval = interval
        self.debounce = debounce
        self._lock = threading.Lock()
        self._roots: list[str] = []
        self._stamps: dict[str, Stamp] = {}
        self._held = Changes()  # seen, not yet quiet long enough to report
        self._quiet = 0.0
        self._pending = Changes()  # reported, not yet taken
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def roots(self) -> list[str]:
        with self._lock:
            return list(self._roots)

    def watch(self, paths: Iterable[str]) -> None:
        """Watch ``paths`` too (what the session was given: files and folders)."""
        with self._lock:
            roots = watch_roots([*self._roots, *paths])
            added = [r for r in roots if r not in self._roots]
            self._roots = roots
        fresh = snapshot(added)
        with self._lock:
            self._stamps.update(fresh)

    def poll(self) -> Changes:
        """One pass: the changes that became quiet and were reported (maybe none)."""
        roots = self.roots
        now_stamps = snapshot(roots)
        with self._lock:
            found = diff(self._stamps, now_stamps)
            self._stamps = now_stamps
            if found:
                self._held = self._held.merged(found)
                self._quiet = 0.0
                return Changes()
            if not self._held:
                return Changes()
            self._quiet += self.interval
            if self._quiet < self.debounce:
                return Changes()
            ready, self._held = self._held, Changes()
            self._pending = self._pending.merged(ready)
        if self._on_change is not None:
            self._on_change(ready)
        return ready

    def pending(self) -> Changes:
        with self._lock:
            return self._pending

    def take(self) -> Changes:
        """The reported changes, cleared (call before reading them again)."""
        with self._lock:
            out, self._pending = self._pending, Changes()
            return out

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lectern-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a watch must never die of one odd file
                continue
