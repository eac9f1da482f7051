"""Measurements shared by the benchmark scripts: generation, RTL simulation and the golden model, timed.

- :func:`generate_timed` runs ``lstm-hw generate`` in a child process: its
  wall time, and its peak resident memory as the child's own ``VmHWM``
  (``ru_maxrss`` would not do: Linux keeps it across ``execve``, so a child
  forked from a large benchmark process reports the parent's size).
- :func:`simulate_timed` runs :func:`lstm_hw.sim.top.simulate_top` and splits
  its time into the simulator build and the simulation itself (from the build
  log's and cocotb's ``results.xml`` figures).
- :func:`steady_cycles_per_step` turns handshake cycle stamps into the
  steady-state cycles per timestep.
- :func:`golden_speed` times the batched golden model on one core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lstm_hw.model.design import Design
from lstm_hw.model.golden import run_golden
from lstm_hw.sim.top import simulate_top

#: Clock period of the cocotb bench of the top (sim/tb_top.py), in ns.
BENCH_CLOCK_NS = 10


def random_codes(design: Design, n: int, steps: int, seed: int = 2026) -> np.ndarray:
    """Input codes ``(n, steps, I)``, uniform over half the activation format's range."""
    fmt = design.config.quant.activation
    rng = np.random.default_rng(seed)
    return rng.integers(fmt.min_int // 2, fmt.max_int // 2 + 1, (n, steps, design.config.model.input_size))


def steady_cycles_per_step(stamps, beats_per_step: int, steps: int) -> float:
    """Mean cycles between the first beats of consecutive timesteps, after the first step.

    *stamps* are the cycles of the handshakes of one sequence's beats,
    *beats_per_step* of them per timestep. The first interval is left out when
    there are more than two steps: before it the pipeline is still filling.
    """
    if steps < 2:
        raise ValueError("steady state needs at least 2 timesteps")
    firsts = np.asarray(stamps[::beats_per_step][:steps], dtype=np.int64)
    if len(firsts) < steps:
        raise ValueError(f"{len(stamps)} stamps for {steps} steps of {beats_per_step} beats")
    gaps = np.diff(firsts[1:]) if steps > 2 else np.diff(firsts)
    return float(gaps.mean())


#: Runs the CLI, then reports the process's peak resident memory (kB) from /proc on stderr.
_GENERATE = """
import atexit, sys
def _peak():
    with open("/proc/self/status") as f:
        kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    sys.stderr.write("\\nLSTM_HW_VMHWM_KB " + kb + "\\n")
atexit.register(_peak)
from lstm_hw.cli import main
sys.argv[0] = "lstm-hw"
main()
"""


def generate_timed(config_path: Path, out_dir: Path) -> dict:
    """Run ``lstm-hw generate CONFIG -o OUT --force`` as a child; its wall seconds and peak RSS in MiB.

    The time includes the interpreter's start and imports (about a second):
    it is what a user of the command waits.
    """
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _GENERATE, "generate", str(config_path), "-o", str(out_dir),
                           "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lstm-hw generate {config_path} failed: {proc.stderr.strip()}")
    kb = int(proc.stderr.rsplit("LSTM_HW_VMHWM_KB ", 1)[1].split()[0])
    return {"generation_s": round(seconds, 2), "generation_peak_rss_mib": round(kb / 1024)}


def _results_xml(path: Path) -> tuple[float, float]:
    """Real seconds and simulated ns of all test cases in a cocotb ``results.xml``."""
    real = sim_ns = 0.0
    scale = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        real += float(case.get("time", 0))
        sim_ns += float(props.get("sim_time_duration", 0)) * scale[props.get("sim_time_unit", "ns")]
    return real, sim_ns


def simulate_timed(design: Design, x_codes, *, build_dir: Path, sim: str = "verilator") -> dict:
    """Simulate *x_codes* against the golden model; the result and where the time went.

    ``build_s`` is the simulator's cold build (Verilator: verilate and compile), from
    the RTL written to the build log's last write; ``run_s`` and the simulated
    cycles are cocotb's own account of the test. The result's cycle stamps are
    returned under ``result``.
    """
    build_dir = Path(build_dir)
    shutil.rmtree(build_dir / sim, ignore_errors=True)   # a cold build: make would reuse old objects
    t0 = time.perf_counter()
    res = simulate_top(design, x_codes, sim=sim, build_dir=build_dir)
    total = time.perf_counter() - t0
    top = design.config.hardware.top
    rtl_written = (build_dir / "rtl" / f"{top}.json").stat().st_mtime
    build_s = (build_dir / sim / "build.log").stat().st_mtime - rtl_written
    run_s, sim_ns = _results_xml(build_dir / sim / "results.xml")
    cycles = sim_ns / BENCH_CLOCK_NS
    return {"result": res, "passed": bool(res.passed), "mismatches": int(res.mismatches), "total_s": round(total, 1),
            "build_s": round(build_s, 1), "run_s": round(run_s, 2), "simulated_cycles": int(cycles),
            "cycles_per_s": round(cycles / run_s) if run_s > 0 else None}


@contextmanager
def one_core():
    """Pin this process to one CPU (the first it may use) for the duration."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def golden_speed(design: Design, *, batch: int, steps: int, min_seconds: float = 1.0) -> dict:
    """Timesteps and sequences per second of :func:`run_golden` on a batch, on one core, best of the runs.

    Runs the batch ``(batch, steps, I)`` until *min_seconds* have passed (at
    least twice) and keeps the fastest run: the machine is shared, and the
    fastest run is the one least disturbed.
    """
    x = random_codes(design, batch, steps, seed=7)
    best = float("inf")
    runs = 0
    with one_core():
        start = time.perf_counter()
        while runs < 2 or time.perf_counter() - start < min_seconds:
            t0 = time.perf_counter()
            run_golden(design, x)
            best = min(best, time.perf_counter() - t0)
            runs += 1
    return {"golden_batch": batch, "golden_steps": steps, "golden_runs": runs,
            "golden_timesteps_per_s": round(batch * steps / best),
            "golden_sequences_per_s": round(batch / best, 1)}
