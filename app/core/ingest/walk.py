"""Which files an ingest reads, in which order, under which display paths.

Inputs are taken in the order given. A folder is walked honouring
``.gitignore``, ``.ignore`` and ``.lecternignore`` files at any depth (git's
rules: a deeper file overrides a shallower one; ``.lecternignore`` beats
``.ignore`` beats ``.gitignore`` in the same folder), skipping version-control,
dependency and build folders and files that may hold secrets. Files inside a
folder come sorted by relative path, so the same input always gives the same
order. A file the user names directly is never ignored.

Display paths are what citations name: a file given directly is its name, a
file in a folder is ``<folder name>/<relative path>``; inputs whose names
collide get parent folders prepended until they differ.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from app.core.ingest.model import Ignored, Problem

IGNORE_FILES = (".lecternignore", ".ignore", ".gitignore")  # highest precedence first

SKIP_DIRS = {
    ".git": "version-control folder", ".hg": "version-control folder",
    ".svn": "version-control folder", ".bzr": "version-control folder",
    "node_modules": "dependency folder", "bower_components": "dependency folder",
    "vendor": "vendored dependencies", "site-packages": "dependency folder",
    ".venv": "virtual environment", "venv": "virtual environment",
    ".direnv": "environment folder", "__pycache__": "cache folder",
    ".mypy_cache": "cache folder", ".pytest_cache": "cache folder",
    ".ruff_cache": "cache folder", ".hypothesis": "cache folder", ".cache": "cache folder",
    ".parcel-cache": "cache folder", ".ipynb_checkpoints": "cache folder",
    ".tox": "test environments", ".nox": "test environments", ".eggs": "build folder",
    "dist": "build output", "build": "build output", "target": "build output",
    "out": "build output", ".next": "build output", ".nuxt": "build output",
    ".svelte-kit": "build output", ".gradle": "build cache", ".terraform": "tool cache",
    "coverage": "test coverage output", "htmlcov": "test coverage output",
    ".idea": "editor settings", ".vs": "editor settings",
}  # fmt: skip
SECRET_NAMES = frozenset({".env", ".netrc", ".pypirc", ".npmrc", "id_rsa", "id_ed25519",
                          "id_ecdsa", "id_dsa", ".htpasswd"})  # fmt: skip
SECRET_SUFFIXES = (".pem", ".p12", ".pfx", ".keystore", ".jks")
SECRET_REASON = "may hold secrets (keys, passwords); force it to include it"


@dataclass(frozen=True)
class Candidate:
    """A file to read."""

    path: str  # display path
    source: Path  # absolute path
    forced: bool = False  # a force pattern names it: skip rules do not apply
    direct: bool = False  # the user named the file itself
    size: int = 0  # bytes, when walked
    mtime: float = 0.0


@dataclass
class Walked:
    files: list[Candidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


def walk(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    follow_symlinks: bool = False,
    extra_ignore: Iterable[str] = (),
    force: Iterable[str] = (),
) -> Walked:
    """Expand ``inputs`` (files and folders) into files to read, in order."""
    out = Walked()
    force_patterns = tuple(force)
    extra = pathspec.GitIgnoreSpec.from_lines(list(extra_ignore))
    paths = [Path(os.path.abspath(os.fspath(p))) for p in inputs]
    labels = _labels(paths)
    for given, path, label in zip(inputs, paths, labels, strict=True):
        shown = os.fspath(given)
        try:
            st = path.stat()
        except OSError as exc:
            out.problems.append(Problem(shown, _stat_reason(path, exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            walker = _Walker(
                out, path, label, follow_symlinks=follow_symlinks, extra=extra, force=force_patterns
            )
            walker.run()
        elif stat.S_ISREG(st.st_mode):
            forced = _forced(force_patterns, label, path)
            out.files.append(Candidate(label, path, forced, True, st.st_size, st.st_mtime))
        else:
            out.problems.append(Problem(shown, _special_reason(st.st_mode)))
    return out


class _Walker:
    def __init__(
        self,
        out: Walked,
        root: Path,
        label: str,
        *,
        follow_symlinks: bool,
        extra: pathspec.GitIgnoreSpec,
        force: tuple[str, ...],
    ) -> None:
        self.out = out
        self.root = root
        self.label = label
        self.follow = follow_symlinks
        self.force = force
        self.found: list[tuple[str, Candidate]] = []
        # (relative folder with trailing "/" or "", [(ignore file name, spec), ...])
        self.rules: list[tuple[str, list[tuple[str, pathspec.GitIgnoreSpec]]]] = []
        if extra.patterns:
            self.rules.append(("", [("Lectern's ignore list", extra)]))

    def run(self) -> None:
        real = os.path.realpath(self.root)
        self._dir(self.root, "", (real,), inside_ignored=False)
        self.found.sort(key=lambda item: item[0])
        self.out.files.extend(c for _, c in self.found)

    def _display(self, rel: str) -> str:
        return f"{self.label}/{'/'.join(_clean(tuple(rel.split('/'))))}" if rel else self.label

    def _dir(self, path: Path, rel: str, chain: tuple[str, ...], inside_ignored: bool) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            reason = (
                "cannot open this folder: permission denied; check its permissions"
                if isinstance(exc, PermissionError)
                else f"cannot open this folder: {exc.strerror or exc}"
            )
            self.out.problems.append(Problem(self._display(rel.rstrip("/")) + "/", reason))
            return
        pushed = self._push_rules(path, rel, entries)
        try:
            for entry in entries:
                self._entry(entry, rel + entry.name, chain, inside_ignored)
        finally:
            if pushed:
                self.rules.pop()

    def _entry(
        self, entry: os.DirEntry[str], rel: str, chain: tuple[str, ...], inside_ignored: bool
    ) -> None:
        display = self._display(rel)
        path = Path(entry.path)
        try:
            is_link = entry.is_symlink()
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            self.out.problems.append(Problem(display, _stat_reason(path, exc)))
            return
        if stat.S_ISDIR(st.st_mode):
            self._subdir(entry, rel, chain=chain, inside_ignored=inside_ignored, is_link=is_link)
        elif stat.S_ISREG(st.st_mode):
            forced = _forced(self.force, display, path, rel)
            if not forced:
                if inside_ignored:
                    return
                why = self._ignored(rel, is_dir=False) or _secret(entry.name)
                if why:
                    self.out.ignored.append(Ignored(display, why))
                    return
            self.found.append(
                (rel, Candidate(display, path, forced, False, st.st_size, st.st_mtime))
            )
        else:
            self.out.problems.append(Problem(display, _special_reason(st.st_mode)))

    def _subdir(
        self,
        entry: os.DirEntry[str],
        rel: str,
        *,
        chain: tuple[str, ...],
        inside_ignored: bool,
        is_link: bool,
    ) -> None:
        display = self._display(rel)
        path = Path(entry.path)
        real = os.path.realpath(path)
        if is_link and (real in chain or any(c.startswith(real + os.sep) for c in chain)):
            self.out.problems.append(
                Problem(display + "/", f"symlink loop: it points back to {real}; not followed")
            )
            return
        if real in chain:
            return  # a bind mount or similar showing a folder inside itself
        if is_link and not self.follow:
            self.out.ignored.append(Ignored(display + "/", "symlink to a folder; not followed"))
            return
        why = SKIP_DIRS.get(entry.name) or self._ignored(rel, is_dir=True)
        if entry.name.endswith(".egg-info"):
            why = why or "build output"
        names_it = _forced(self.force, display, path, rel)
        if why and not names_it:
            if not inside_ignored:
                self.out.ignored.append(Ignored(display + "/", why))
            if not self._forces_inside(display, path, rel):
                return
            inside_ignored = True  # walk it only for the forced files inside
        elif names_it:
            inside_ignored = False
        self._dir(path, rel + "/", (*chain, real), inside_ignored)

    def _push_rules(self, path: Path, rel: str, entries: list[os.DirEntry[str]]) -> bool:
        names = {e.name for e in entries}
        specs = []
        for name in IGNORE_FILES:
            if name not in names:
                continue
            try:
                lines = (path / name).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
            if spec.patterns:
                specs.append((name, spec))
        if specs:
            self.rules.append((rel, specs))
        return bool(specs)

    def _ignored(self, rel: str, *, is_dir: bool) -> str | None:
        for base, specs in reversed(self.rules):
            sub = rel[len(base) :] + ("/" if is_dir else "")
            for name, spec in specs:
                result = spec.check_file(sub)
                if result.include is None or result.index is None:
                    continue
                if not result.include:
                    return None  # re-included by a "!" rule
                pattern = spec.patterns[result.index]
                source = f"{base}{name}" if name.startswith(".") else name
                return f"matches `{getattr(pattern, 'pattern', pattern)}` in {source}"
        return None

    def _forces_inside(self, display: str, path: Path, rel: str) -> bool:
        prefixes = (display + "/", rel + "/", str(path) + os.sep)
        for pattern in self.force:
            if pattern.startswith(prefixes) or os.path.abspath(pattern).startswith(prefixes[2]):
                return True
        return False


def _forced(force: tuple[str, ...], display: str, path: Path, rel: str = "") -> bool:
    if not force:
        return False
    names = {display, str(path), path.name}
    if rel:
        names.add(rel)
    for pattern in force:
        if pattern in names or os.path.abspath(pattern) == str(path):
            return True
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return True
    return False


def _secret(name: str) -> str | None:
    lowered = name.lower()
    if lowered in SECRET_NAMES or lowered.endswith(SECRET_SUFFIXES):
        return SECRET_REASON
    if lowered.startswith(".env.") and not lowered.endswith((".example", ".sample", ".template")):
        return SECRET_REASON
    return None


def _stat_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: the link leads back to itself; fix or remove the link"
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            target = os.readlink(path)
            return f"broken symlink: its target {target} does not exist"
        return "does not exist; check the path"
    if isinstance(exc, PermissionError):
        return "cannot read it: permission denied; check its permissions"
    return f"cannot read it: {exc.strerror or exc}"


def _special_reason(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        what = "a named pipe"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    else:
        what = "not a regular file"
    return f"{what}, not a file; only files and folders can be read"


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short unique names for the inputs: the last path parts that tell them apart."""
    parts = [_clean(p.parts[1:] or ("root",)) for p in paths]
    depth = [1] * len(paths)
    while True:
        labels = ["/".join(parts[i][-depth[i] :]) for i in range(len(paths))]
        clashes: dict[str, set[Path]] = {}
        for label, path in zip(labels, paths, strict=True):
            clashes.setdefault(label, set()).add(path)
        grown = False
        for i, label in enumerate(labels):
            if len(clashes[label]) > 1 and depth[i] < len(parts[i]):
                depth[i] += 1
                grown = True
        if not grown:
            return labels


def _clean(parts: tuple[str, ...]) -> tuple[str, ...]:
    """Path parts with control characters (legal in names) made visible."""
    return tuple(
        part if part.isprintable() else "".join(c if c.isprintable() else "?" for c in part)
        for part in parts
    )
