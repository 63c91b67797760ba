"""The locks (requirements/lock.txt, requirements/build.lock) agree with pyproject.toml,
pin every package with hashes, and are what this venv holds.

A fresh install must equal yesterday's: every install path (scripts/install.sh, used
by both README commands, .ci/run and packaging/build) installs these files with
``--require-hashes --no-deps``. `scripts/lock.sh` rewrites them; these tests fail when
someone edits pyproject.toml and forgets to.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
BUILD_LOCK = ROOT / "requirements" / "build.lock"
BUILD_IN = ROOT / "requirements" / "build.in"

# The platforms the README supports, and the next Python.
ENVIRONMENTS = {
    "linux-x86_64-py311": {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "python_version": "3.11",
        "python_full_version": "3.11.7",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    },
    "macos-arm64-py311": {
        "sys_platform": "darwin",
        "platform_system": "Darwin",
        "platform_machine": "arm64",
        "python_version": "3.11",
        "python_full_version": "3.11.9",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    },
    "macos-arm64-py313": {
        "sys_platform": "darwin",
        "platform_system": "Darwin",
        "platform_machine": "arm64",
        "python_version": "3.13",
        "python_full_version": "3.13.1",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    },
}


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]
    via: tuple[str, ...]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> Version:
        (spec,) = self.requirement.specifier
        return Version(spec.version)

    def applies(self, env: dict[str, str]) -> bool:
        marker = self.requirement.marker
        return marker is None or marker.evaluate(env)


def read_lock(path: Path) -> list[Pin]:
    """uv's requirements format: `name==1.0 ; marker \\`, `--hash=...` lines, `# via` lines."""
    pins: list[Pin] = []
    current: list[str] | None = None
    hashes: list[str] = []
    via: list[str] = []

    def close() -> None:
        if current is not None:
            pins.append(Pin(Requirement(" ".join(current)), tuple(hashes), tuple(via)))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if re.match(r"^[A-Za-z0-9]", raw):
            close()
            current, hashes, via = [line.rstrip("\\").strip()], [], []
        elif line.startswith("--hash="):
            hashes.append(line.removeprefix("--hash=").rstrip("\\").strip())
        elif line.startswith("#") and current is not None:
            text = line.lstrip("#").strip()
            via.append(text.removeprefix("via").strip())
    close()
    return pins


def pyproject_requirements() -> list[Requirement]:
    """Every requirement of the project with the extras the lock is made for."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    out = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    todo = ["all", "dev", "package"]
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in extras[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "lectern":
                todo.extend(req.extras)
            else:
                out.append(req)
    return out


def pins_for(pins: list[Pin], env: dict[str, str]) -> dict[str, Pin]:
    chosen: dict[str, Pin] = {}
    for pin in pins:
        if pin.applies(env):
            assert pin.name not in chosen, f"{pin.name} is locked twice for one platform"
            chosen[pin.name] = pin
    return chosen


@pytest.mark.parametrize("path", [LOCK, BUILD_LOCK], ids=["lock.txt", "build.lock"])
def test_every_pin_is_exact_and_hashed(path: Path) -> None:
    pins = read_lock(path)
    assert len(pins) > 5
    for pin in pins:
        specs = list(pin.requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{pin.requirement} is not pinned"
        assert pin.hashes and all(h.startswith("sha256:") for h in pin.hashes), (
            f"{pin.name} has no sha256 hash in {path.name}"
        )


@pytest.mark.parametrize("env_name", sorted(ENVIRONMENTS))
def test_the_lock_satisfies_pyproject_on_every_supported_platform(env_name: str) -> None:
    env = ENVIRONMENTS[env_name]
    locked = pins_for(read_lock(LOCK), env)
    problems = []
    for req in pyproject_requirements():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pin = locked.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req} is in pyproject.toml but not in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req} is in pyproject.toml but the lock pins {pin.version}")
    assert not problems, "run scripts/lock.sh:\n" + "\n".join(problems)


def test_the_locks_direct_dependencies_are_pyprojects() -> None:
    """A dependency dropped from pyproject.toml leaves the lock too."""
    wanted = {canonicalize_name(r.name) for r in pyproject_requirements()}
    direct = {p.name for p in read_lock(LOCK) if any("pyproject.toml" in v for v in p.via)}
    assert direct == wanted, (
        "run scripts/lock.sh: the lock's direct dependencies differ from pyproject.toml: "
        f"only in the lock {sorted(direct - wanted)}, only in pyproject {sorted(wanted - direct)}"
    )


def test_the_build_lock_satisfies_build_in_and_agrees_with_the_lock() -> None:
    wanted = [
        Requirement(line)
        for line in BUILD_IN.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for env in ENVIRONMENTS.values():
        build = pins_for(read_lock(BUILD_LOCK), env)
        main = pins_for(read_lock(LOCK), env)
        for req in wanted:
            pin = build.get(canonicalize_name(req.name))
            assert pin is not None and req.specifier.contains(pin.version), (
                f"run scripts/lock.sh: {req} is not satisfied by requirements/build.lock"
            )
        for name in build.keys() & main.keys():
            assert build[name].version == main[name].version, (
                f"{name} is {build[name].version} in build.lock and {main[name].version} in "
                "lock.txt: run scripts/lock.sh"
            )


def test_llama_cpp_python_is_pinned_and_built_from_its_locked_source() -> None:
    (pin,) = [p for p in read_lock(LOCK) if p.name == "llama-cpp-python"]
    assert pin.version >= Version("0.3.36")
    assert pin.hashes


def test_this_venv_holds_exactly_the_lock() -> None:
    """`pip freeze` equals the lock: every locked package at its version, nothing else."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed: dict[str, str] = {}
    for line in frozen.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            installed[canonicalize_name(name)] = version.strip()
        elif line.strip() and not line.startswith("#"):
            installed[canonicalize_name(re.split(r"[ @]", line)[0])] = line
    env = {k: str(v) for k, v in _current_environment().items()}
    locked = pins_for(read_lock(LOCK), env) | pins_for(read_lock(BUILD_LOCK), env)
    wrong = [
        f"{name}: locked {pin.version}, installed {installed.get(name, 'nothing')}"
        for name, pin in sorted(locked.items())
        if installed.get(name) is None or Version(installed[name]) != pin.version
    ]
    extra = sorted(set(installed) - set(locked) - {"lectern"})
    assert not wrong, "the venv differs from the lock (run scripts/install.sh):\n" + "\n".join(
        wrong
    )
    assert not extra, (
        f"installed but not locked (add to pyproject.toml, run scripts/lock.sh): {extra}"
    )


def _current_environment() -> dict[str, str]:
    from packaging.markers import default_environment

    return dict(default_environment())
