"""Before Qt aborts for a missing system library, `lectern` says which package to install.

The plugin here is a real shared library the test compiles, linked against a real
library that the test then deletes: the dynamic linker finds it missing exactly as on
a minimal Debian desktop. The deleted library's name (``GONE``) is one no machine
has, so the test means the same where every xcb library is installed (a desktop,
or this machine after ``apt-get install libxcb-icccm4``): a real name such as
``libxcb-icccm.so.4`` would be found in the system's folders once installed, and the
fake would load. The in-process check maps ``GONE`` to a package, as the table does
the real names; ``run.sh`` is run on the table as it ships.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import qt_platform

ROOT = Path(__file__).resolve().parents[2]
GONE = "libxcb-lectern-gone.so.4"  # no distribution ships it
GONE_PACKAGE = "libxcb-lectern-gone4"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the xcb platform plugin is Linux's"
)


@pytest.fixture(scope="module")
def broken_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.fail("a C compiler is needed to build the fake plugin (apt-get install gcc)")
    work = tmp_path_factory.mktemp("xcb")
    dep_src = work / "dep.c"
    dep_src.write_text("int xcb_icccm_stub(void) { return 4; }\n")
    dep = work / GONE
    subprocess.run(
        [gcc, "-shared", "-fPIC", f"-Wl,-soname,{GONE}", "-o", str(dep), str(dep_src)],
        check=True,
    )
    plugin_src = work / "plugin.c"
    plugin_src.write_text(
        "int xcb_icccm_stub(void);\nint plugin_entry(void) { return xcb_icccm_stub(); }\n"
    )
    plugin = work / "platforms" / "libqxcb.so"
    plugin.parent.mkdir()
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-o", str(plugin), str(plugin_src), str(dep)], check=True
    )
    dep.unlink()  # now the loader cannot find it, as on a machine without the package
    return plugin


def test_the_check_names_the_missing_library_and_its_package(
    broken_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(qt_platform.PLUGIN_OVERRIDE_ENV, str(broken_plugin))
    monkeypatch.setitem(qt_platform.DEBIAN_PACKAGES, GONE, GONE_PACKAGE)
    check = qt_platform.check_xcb()
    assert check.missing == (GONE,)
    assert check.packages == (GONE_PACKAGE,)
    text = check.message()
    assert f"sudo apt-get install {GONE_PACKAGE}" in text
    assert "lectern ingest" in text and "QT_QPA_PLATFORM=offscreen" in text


def test_an_unknown_library_gets_a_way_to_find_its_package() -> None:
    check = qt_platform.PlatformCheck(
        plugin=None, missing=("libweird.so.9", "libxcb-keysyms.so.1"), packages=("libxcb-keysyms1",)
    )
    text = check.message()
    assert "sudo apt-get install libxcb-keysyms1" in text
    assert "libweird.so.9" in text and "apt-file search" in text


def test_run_sh_prints_the_apt_line_and_exits_without_a_qt_abort(broken_plugin: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "PYTHONPATH"}
    }
    env.update(
        {
            "DISPLAY": ":97",  # no X server: Qt would abort on the plugin before it looks
            qt_platform.PLUGIN_OVERRIDE_ENV: str(broken_plugin),
            "LECTERN_HOME": str(broken_plugin.parent.parent / "home"),
            "PYTHONPATH": str(ROOT),
        }
    )
    result = subprocess.run(
        [str(ROOT / "scripts" / "run.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert GONE in result.stderr and "apt-file search" in result.stderr  # not in the table
    assert "Could not load the Qt platform plugin" not in result.stderr
    assert "core dumped" not in result.stderr.lower()


def test_the_real_plugin_is_judged_by_what_the_linker_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(qt_platform.PLUGIN_OVERRIDE_ENV, raising=False)
    plugin = qt_platform.xcb_plugin_path()
    assert plugin is not None and plugin.name == "libqxcb.so" and plugin.is_file()
    ldd = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, check=True).stdout
    missing = {line.split()[0] for line in ldd.splitlines() if "not found" in line}
    check = qt_platform.check_xcb()
    assert set(check.missing) == missing
    assert check.ok == (not missing)
    assert all(p in qt_platform.WINDOW_PACKAGES for p in check.packages)


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, True),
        ({"QT_QPA_PLATFORM": "offscreen"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb:foo=1"}, True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, True),
    ],
)
def test_only_an_xcb_start_is_checked(env: dict[str, str], wanted: bool) -> None:
    assert qt_platform.wants_xcb(env) is wanted
