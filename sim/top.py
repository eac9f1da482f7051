"""Run the generated top under a simulator against the golden model (used by the CLI and tests)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..emit.files import design_files, write_files
from ..errors import SimulationMismatch, ToolError
from .flow import FlowMode, modes_to_json
from ..model.design import Design
from ..model.golden import interleave_steps, run_golden, split_steps
from ..progress import stage
from .runner import run_cocotb
from .tools import check_simulator, ensure_simulators_on_path

__all__ = ["ModeResult", "SimResult", "emit_rtl", "simulate_top"]


@dataclass(frozen=True)
class ModeResult:
    """What one flow mode of a run gave."""

    mode: FlowMode
    output: np.ndarray          # output codes (N, T', H) as the hardware produced them
    mismatches: int
    last_ok: bool               # m_axis_tlast exactly on each sequence's last output
    input_cycles: list[int]     # cycle of every input handshake of this mode
    output_cycles: list[int]    # cycle of every output handshake of this mode

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and self.last_ok


@dataclass(frozen=True)
class SimResult:
    """A run of :func:`simulate_top`: per flow mode, and what the whole run saw.

    ``output``, ``input_cycles`` and ``output_cycles`` are those of the first mode.
    """

    sim: str
    seed: int
    expected: np.ndarray        # golden codes (N, T', H)
    modes: tuple[ModeResult, ...]
    failed_checks: int          # cocotb tests that failed (mismatches, tlast, protocol, timeout, ...)
    protocol_violations: int    # on s_axis and m_axis together
    stray_outputs: int          # output beats beyond the expected ones
    meta: dict

    @property
    def output(self) -> np.ndarray:
        return self.modes[0].output

    @property
    def input_cycles(self) -> list[int]:
        return self.modes[0].input_cycles

    @property
    def output_cycles(self) -> list[int]:
        return self.modes[0].output_cycles

    @property
    def mismatches(self) -> int:
        return sum(mode.mismatches for mode in self.modes)

    @property
    def passed(self) -> bool:
        return (self.failed_checks == 0 and self.protocol_violations == 0 and self.stray_outputs == 0
                and all(mode.passed for mode in self.modes))

    def summary(self) -> str:
        """One line per mode and the run's seed, for an assertion message: enough to replay the run."""
        lines = [f"{self.sim}, seed {self.seed} (replay: the same seed and modes): "
                 f"{self.failed_checks} failed checks, {self.protocol_violations} protocol violations, "
                 f"{self.stray_outputs} stray outputs"]
        for m in self.modes:
            lines.append(f"  mode {m.mode}: {m.mismatches} mismatches, tlast {'ok' if m.last_ok else 'WRONG'}")
        return "\n".join(lines)


def emit_rtl(design: Design, build_dir: Path) -> tuple[Path, dict]:
    """Write the design's files into ``build_dir/rtl``; return that folder and the metadata."""
    files = design_files(design)
    rtl = Path(build_dir) / "rtl"
    write_files(rtl, files, force=True)
    return rtl, json.loads(files[f"{design.config.hardware.top}.json"])


def simulate_top(design: Design, x_codes, *, sim: str, build_dir: str | Path, seed: int = 1,
                 idle: float = 0.0, backpressure: float = 0.0, modes: Sequence[FlowMode] | None = None,
                 waves: bool = False, progress=None) -> SimResult:
    """Generate the design into ``build_dir``, stream ``x_codes`` ``(N, T, I)`` through it, compare.

    Each sequence goes as a transfer; with ``hardware.interleave = n > 1``, each group of ``n`` (``N``
    a multiple of ``n``), their timesteps taking turns (:func:`~lstm_hw.model.golden.interleave_steps`).

    The sequences stream once per flow mode, in one simulation. *modes* = None
    runs one mode, ``given``, with *idle* and *backpressure*; with *modes*,
    those two must stay 0 (use :func:`lstm_hw.sim.flow.flow_modes` for the four
    standard modes). *seed* seeds every random cycle. A run that produced no
    result raises :class:`~lstm_hw.errors.ToolError`, and one in which a mode
    did not get all its outputs :class:`~lstm_hw.errors.SimulationMismatch`,
    each naming the seed. *progress* (:mod:`lstm_hw.progress`) shows the
    stages, the build's phases and the output timesteps simulated.
    """
    if modes is None:
        modes = (FlowMode("given", idle=idle, backpressure=backpressure),)
    elif idle or backpressure:
        raise ValueError("give either modes or idle/backpressure, not both")
    modes = tuple(modes)
    ensure_simulators_on_path()
    check_simulator(sim)  # a missing or unknown simulator is said before the slow part
    build_dir = Path(build_dir).resolve()  # the bench runs in its own folder: every path it gets is absolute
    x = np.asarray(x_codes, dtype=np.int64)
    if x.ndim == 2:
        x = x[None]
    stage(progress, "golden model")
    expected = run_golden(design, x)
    # Interleaved sequences go in, and come out, a group a transfer, their timesteps taking turns.
    n = design.config.hardware.interleave
    x_sent, expected_got = (interleave_steps(x, n), interleave_steps(expected, n)) if n > 1 else (x, expected)
    stage(progress, "generate RTL")
    rtl, meta = emit_rtl(design, build_dir)
    name = design.config.hardware.top
    np.save(build_dir / "x.npy", x_sent)
    np.save(build_dir / "expected.npy", expected_got)
    result_path, progress_path = build_dir / "result.json", build_dir / "progress.txt"
    result_path.unlink(missing_ok=True)
    env = {
        "LSTM_HW_META": str(rtl / f"{name}.json"), "LSTM_HW_X": str(build_dir / "x.npy"),
        "LSTM_HW_EXPECTED": str(build_dir / "expected.npy"), "LSTM_HW_RESULT": str(result_path),
        "LSTM_HW_SEED": str(seed), "LSTM_HW_MODES": modes_to_json(modes),
        "LSTM_HW_PROGRESS": str(progress_path),
    }
    steps = len(modes) * expected.shape[0] * expected.shape[1]   # output timesteps of every mode
    _, failed = run_cocotb(sim=sim, sources=[rtl / src for src in meta["sources"]], toplevel=name,
                           test_module="lstm_hw.sim.tb_top", build_dir=build_dir / sim, env=env, waves=waves,
                           progress=progress, steps=(progress_path, steps, "timestep"))
    if not result_path.exists():
        raise ToolError(f"simulation under {sim} (seed {seed}) produced no result "
                          f"(see {build_dir / sim / 'test.log'})")
    res = json.loads(result_path.read_text())
    for item in res["modes"]:
        if item["timeout"]:
            raise SimulationMismatch(f"simulation under {sim} (seed {seed}), mode {item['mode']}: only {item['received']} "
                              f"of {item['wanted']} output beats arrived (see {build_dir / sim / 'test.log'})")
    def outputs(item):
        got = np.array(item["output"], dtype=np.int64).reshape(expected_got.shape)
        return split_steps(got, n) if n > 1 else got

    results = tuple(ModeResult(mode=mode, output=outputs(item),
                               mismatches=item["mismatches"], last_ok=item["last_ok"],
                               input_cycles=item["input_cycles"], output_cycles=item["output_cycles"])
                    for mode, item in zip(modes, res["modes"], strict=True))
    return SimResult(sim=sim, seed=seed, expected=expected, modes=results, failed_checks=failed,
                     protocol_violations=res["protocol_violations"], stray_outputs=res["stray_outputs"], meta=meta)
