"""Run cocotb test modules against Verilog sources under Icarus Verilog or Verilator."""

from __future__ import annotations

import shutil
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn

from cocotb_tools.runner import get_results, get_runner

from lstm_hw.emit.verilog import hdl_sources
from lstm_hw.errors import ToolError, UsageError
from lstm_hw.progress import follow, stage
from lstm_hw.progress import steps as progress_steps
from lstm_hw.sim.tools import check_simulator, ensure_simulators_on_path

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
#: Verilator build options: warnings neither stop a build nor fill its log (lint
#: is a separate step, see lstm_hw.sim.tools.verilator_lint). With waves=True,
#: cocotb_tools adds --trace itself (VCD: the wheel's FST writer needs lz4.h,
#: which Debian only has in liblz4-dev).
VERILATOR_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
#: Lines of a simulator log copied to stderr when a run ends without results.
_LOG_TAIL_LINES = 40


def run_cocotb(
    *,
    sim: str,
    sources: list[Path],
    toplevel: str,
    test_module: str,
    build_dir: Path,
    env: dict[str, str] | None = None,
    waves: bool = False,
    testcase: str | None = None,
    progress=None,
    steps: tuple[Path, int, str] | None = None,
) -> tuple[int, int]:
    """Build the Verilog of `sources` under sim ("icarus" or "verilator") in build_dir, run cocotb test module
    `test_module` (a dotted import name, e.g. "lstm_hw.sim.tb_top") against `toplevel`.
    Returns (tests_run, tests_failed). Raises UsageError for unknown sim.

    A design's ``.mem`` files (its ROMs' ``$readmemh`` contents) may be among
    `sources`: they are copied into build_dir, where the simulation runs and
    ``$readmemh`` looks for them.

    *env* adds environment variables for the simulation (cocotb_tools gives
    ``os.environ`` precedence over them). *waves* records ``dump.vcd`` (Verilator)
    or ``<toplevel>.fst`` (Icarus) in *build_dir*. *testcase* selects tests by
    name (comma-separated). The build and run logs go to ``build.log`` and
    ``test.log`` in *build_dir*, the results to ``results.xml``; nothing is printed
    unless the run ends without results, when the log's tail goes to stderr and
    :class:`ToolError` is raised. A run in which no test ran (e.g. *testcase*
    matched none), or whose simulator exits with an error although every test
    passed, raises :class:`ToolError` the same way.
    Use a separate *build_dir* per call: calls share nothing else, so they may run
    in parallel processes.

    *progress* (:mod:`lstm_hw.progress`) is told the build's phases as its log
    shows them and the run's start; with *steps* = ``(file, total, unit)``, the
    bench appends ``done`` counts to *file* and the run shows them out of *total*.
    """
    if sim not in SIMULATORS:
        raise UsageError(f"unknown simulator {sim!r}: choose 'icarus' or 'verilator'")
    ensure_simulators_on_path()
    check_simulator(sim)

    build_dir = Path(build_dir).resolve()
    if sim == "verilator" and " " in str(build_dir):
        raise UsageError(f"{build_dir}: Verilator's make cannot build in a path with spaces")
    build_dir.mkdir(parents=True, exist_ok=True)
    for source in map(Path, sources):
        if source.suffix == ".mem" and source.resolve() != build_dir / source.name:
            if not source.is_file():
                raise UsageError(f"{source}: no such ROM contents file")
            shutil.copyfile(source, build_dir / source.name)
    build_log = build_dir / "build.log"
    test_log = build_dir / "test.log"
    results_xml = build_dir / "results.xml"

    runner = get_runner(sim)
    stage(progress, f"build: {sim}")
    try:
        with follow(build_log, _build_phases(progress)):
            runner.build(
                sources=[Path(source).resolve() for source in hdl_sources(sources)],
                hdl_toplevel=toplevel,
                build_args=VERILATOR_BUILD_ARGS if sim == "verilator" else [],
                build_dir=build_dir,
                always=True,
                timescale=TIMESCALE,
                waves=waves,
                log_file=build_log,
            )
    except RuntimeError as exc:
        _raise_with_log(f"{sim} build of {toplevel} failed ({exc})", build_log)

    # Under pytest, Runner.test() itself sys.exit()s on failed tests, and it raises
    # RuntimeError when the simulator exits non-zero; either way results.xml, if
    # written, is the account of what ran.
    simulator_error: str | None = None
    stage(progress, f"run: {sim}")
    try:
        with ExitStack() as watch:
            if steps is not None:
                steps_file, total, unit = steps
                steps_file.unlink(missing_ok=True)
                update = watch.enter_context(progress_steps(progress, "simulate", total, unit))
                watch.enter_context(follow(steps_file, _counts(update)))
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                testcase=testcase,
                extra_env=env or {},
                waves=waves,
                build_dir=build_dir,
                test_dir=build_dir,
                results_xml=str(results_xml),
                timescale=TIMESCALE,
                log_file=test_log,
            )
    except RuntimeError as exc:
        simulator_error = str(exc)
    except SystemExit:
        pass

    if not results_xml.is_file():
        _raise_with_log(f"{sim} run of {test_module} wrote no results", test_log)
    tests_run, tests_failed = get_results(results_xml)
    if tests_run == 0:
        _raise_with_log(f"{sim} run of {test_module} ran no test (testcase={testcase!r})", test_log)
    if simulator_error is not None and tests_failed == 0:
        _raise_with_log(f"{sim} exited with an error after the tests passed ({simulator_error})", test_log)
    return tests_run, tests_failed


def _build_phases(progress):
    """A build-log callback that tells ``progress`` when Verilator's C++ compile and link start (None without
    a progress)."""
    if progress is None:
        return None
    seen = set()

    def on_line(line: str) -> None:
        if line.startswith("- V e r i l a t i o n   R e p o r t"):
            phase = "build: verilated"
        elif line.startswith("make: Entering directory"):
            phase = "build: compile C++ (make)"
        elif line.startswith("c++ ") and " -o " in line:
            phase = "build: link"
        else:
            return
        if phase not in seen:
            seen.add(phase)
            progress.stage(phase)
    return on_line


def _counts(update):
    """A progress-file callback: each line is the count done so far."""
    def on_line(line: str) -> None:
        if line.strip().isdigit():
            update(int(line))
    return on_line


def _raise_with_log(message: str, log: Path) -> NoReturn:
    """Copy the tail of *log* to stderr and raise :class:`ToolError` with *message*."""
    if log.is_file():
        tail = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        print(f"--- last lines of {log} ---", *tail, sep="\n", file=sys.stderr)
    raise ToolError(f"{message}; see {log}")
