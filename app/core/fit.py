"""What to leave out so a corpus fits the model's window: suggestions, never silent cuts.

When the corpus, the conversation and the reserved output pass the chosen
model's window, Lectern says by how much and offers exclusions that make it
fit; the user picks. The window and the CLI share this logic, so it lives here,
free of any GUI.

Order of preference: test code and fixtures first, then generated and build
output (``build/``, ``dist/``, ``*.min.*``...), then documentation and
examples, and only then the rest, largest folders first. Within a tier, when
one item alone frees what is still needed, the smallest such item is taken
(one exclusion, least lost); otherwise the largest, and so on. A last pass
drops later picks that the others make unnecessary, so the list stays short.
"""

from __future__ import annotations

import fnmatch
import heapq
from collections.abc import Iterable
from dataclasses import dataclass

# Folder names (any depth) and file-name patterns per tier, most expendable first.
_TIERS: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...] = (
    (
        "test",
        frozenset({"tests", "test", "__tests__", "testing", "fixtures", "testdata", "test_data"}),
        ("test_*", "*_test.*", "*.test.*", "*.spec.*", "*_spec.*", "conftest.py"),
    ),
    (
        "generated or build output",
        frozenset({"generated", "build", "dist", "out", "target", "coverage", "__generated__"}),
        ("*.min.*", "*_pb2.py", "*_pb2_grpc.py", "*.pb.go", "*.generated.*", "*.map"),
    ),
    (
        "documentation or examples",
        frozenset({"docs", "doc", "documentation", "examples", "example", "samples"}),
        (),
    ),
)


@dataclass(frozen=True)
class FitSuggestion:
    """Exclude ``path`` (a folder ends with ``/``; a file pattern holds ``*``) to free ``tokens``.

    ``why`` says in words why this item was chosen; ``files`` are the
    document paths it covers, so a caller can exclude exactly those.
    """

    path: str
    tokens: int
    why: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class _Candidate:
    path: str
    files: frozenset[str]
    why: str
    depth: int


def _folders(path: str) -> list[str]:
    """The folders ``path`` sits in, outermost first, each ending with ``/``."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def _tier_candidates(
    tokens: dict[str, int], names: frozenset[str], patterns: tuple[str, ...], label: str
) -> list[_Candidate]:
    """Folders named like the tier (outermost), then files named like it outside them."""
    by_folder: dict[str, set[str]] = {}
    loose: dict[str, set[str]] = {}
    for path in tokens:
        folder = next(
            (f for f in _folders(path) if f.rstrip("/").rsplit("/", 1)[-1].lower() in names),
            None,
        )
        if folder is not None:
            by_folder.setdefault(folder, set()).add(path)
            continue
        name = path.rsplit("/", 1)[-1].lower()
        pattern = next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)
        if pattern is not None:
            loose.setdefault(f"**/{pattern}", set()).add(path)
    everything = set(tokens)
    out = [
        _Candidate(folder, frozenset(files), f"{label} folder", folder.count("/"))
        for folder, files in by_folder.items()
        if files != everything
    ]
    for pattern, files in loose.items():
        if files == everything:
            continue
        if len(files) == 1:
            (only,) = files
            out.append(_Candidate(only, frozenset(files), f"{label} file", only.count("/") + 1))
        else:
            why = f"{label}: {len(files)} files named {pattern[3:]}"
            out.append(_Candidate(pattern, frozenset(files), why, 1))
    return out


def _general_candidates(tokens: dict[str, int]) -> list[_Candidate]:
    """Every folder and file, except folders holding everything; one folder per file set."""
    everything = frozenset(tokens)
    members: dict[str, set[str]] = {}
    for path in tokens:
        for folder in _folders(path):
            members.setdefault(folder, set()).add(path)
    seen: set[frozenset[str]] = set()
    out: list[_Candidate] = []
    # Shallowest first, so a folder holding only one subfolder stands for both.
    for folder in sorted(members, key=lambda f: (f.count("/"), f)):
        files = frozenset(members[folder])
        if files == everything or files in seen or len(files) == 1:
            continue
        seen.add(files)
        out.append(_Candidate(folder, files, "largest folder", folder.count("/")))
    out.extend(
        _Candidate(p, frozenset({p}), "largest file", p.count("/") + 1)
        for p in tokens
        if len(tokens) > 1
    )
    return out


class _Selection:
    """The picks so far, the files they take and the tokens they free."""

    def __init__(self, tokens: dict[str, int]) -> None:
        self.tokens = tokens
        self.chosen: list[_Candidate] = []
        self.taken: set[str] = set()
        self.freed = 0

    def add(self, best: _Candidate) -> None:
        if len(best.files) > 1:  # a folder around earlier picks replaces them
            self.chosen = [c for c in self.chosen if not c.files <= best.files]
        self.chosen.append(best)
        new = best.files - self.taken
        self.taken |= new
        self.freed += sum(self.tokens[f] for f in new)


def _pick(candidates: list[_Candidate], sel: _Selection, need: int) -> None:
    """Greedy: the smallest candidate covering what remains, else the largest; repeat.

    A candidate is worth the tokens of its files not taken yet. Worth only
    falls, so a lazy max-heap finds the largest; a covering pick ends the loop,
    so the full scan for the smallest covering one runs once.
    """
    tokens = sel.tokens
    worth = [sum(tokens[f] for f in c.files - sel.taken) for c in candidates]
    holders: dict[str, list[int]] = {}
    for index, c in enumerate(candidates):
        for f in c.files:
            holders.setdefault(f, []).append(index)
    heap = [(-worth[i], c.depth, c.path, i) for i, c in enumerate(candidates) if worth[i]]
    heapq.heapify(heap)
    while sel.freed < need and heap:
        stale, _, _, index = heapq.heappop(heap)
        if -stale != worth[index]:
            if worth[index] > 0:
                c = candidates[index]
                heapq.heappush(heap, (-worth[index], c.depth, c.path, index))
            continue
        remaining = need - sel.freed
        if worth[index] >= remaining:
            covering = [i for i, w in enumerate(worth) if w >= remaining]
            index = min(covering, key=lambda i: (worth[i], candidates[i].depth, candidates[i].path))
        best = candidates[index]
        for f in best.files - sel.taken:
            for holder in holders[f]:
                worth[holder] -= tokens[f]
        sel.add(best)


def fit_suggestions(documents: Iterable[tuple[str, int]], need: int) -> list[FitSuggestion]:
    """Exclusions that together free at least ``need`` tokens, most expendable first.

    ``documents``: (path, tokens) of each included document, paths as the
    corpus names them (``repo/src/auth.py``). Returns [] when ``need`` <= 0,
    and also when even excluding every document frees too little: then the
    caller says the system prompt and conversation alone do not fit.
    """
    tokens: dict[str, int] = {}
    for path, count in documents:
        tokens[path] = tokens.get(path, 0) + max(0, int(count))
    if need <= 0 or need > sum(tokens.values()):
        return []
    sel = _Selection(tokens)
    for label, names, patterns in _TIERS:
        if sel.freed >= need:
            break
        _pick(_tier_candidates(tokens, names, patterns, label), sel, need)
    if sel.freed < need:
        _pick(_general_candidates(tokens), sel, need)
    out: list[FitSuggestion] = []
    claimed: set[str] = set()
    for c in _prune(sel, need):
        files = tuple(sorted(c.files - claimed))
        claimed |= c.files
        out.append(FitSuggestion(c.path, sum(tokens[f] for f in files), c.why, files))
    return out


def _prune(sel: _Selection, need: int) -> list[_Candidate]:
    """Drop picks the others make unnecessary, latest first: fewer items, fewer lost."""
    cover: dict[str, int] = {}
    for c in sel.chosen:
        for f in c.files:
            cover[f] = cover.get(f, 0) + 1
    freed = sum(sel.tokens[f] for f in cover)
    dropped: set[int] = set()
    for index in range(len(sel.chosen) - 1, -1, -1):
        files = sel.chosen[index].files
        lost = sum(sel.tokens[f] for f in files if cover[f] == 1)
        if freed - lost >= need:
            freed -= lost
            dropped.add(index)
            for f in files:
                cover[f] -= 1
    return [c for i, c in enumerate(sel.chosen) if i not in dropped]


def freed_total(suggestions: Iterable[FitSuggestion]) -> int:
    """Tokens the suggestions free together (their ``files`` never overlap)."""
    return sum(s.tokens for s in suggestions)
