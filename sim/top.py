"""Run the generated top under a simulator against the golden model (used by the CLI and tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..design import Design
from ..emit import design_files, write_files
from ..errors import LstmHwError
from ..golden import run_golden
from .runner import run_cocotb

__all__ = ["SimResult", "simulate_top"]


@dataclass(frozen=True)
class SimResult:
    output: np.ndarray          # output codes (N, T', H) as the hardware produced them
    expected: np.ndarray        # golden codes, same shape
    mismatches: int
    failed_checks: int          # cocotb tests that failed (mismatches, tlast placement, ...)
    input_cycles: list[int]     # cycle of every input handshake
    output_cycles: list[int]    # cycle of every output handshake
    meta: dict

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and self.failed_checks == 0


def simulate_top(design: Design, x_codes, *, sim: str, build_dir: str | Path, seed: int = 1,
                 idle: float = 0.0, backpressure: float = 0.0, waves: bool = False) -> SimResult:
    """Generate the design into ``build_dir``, stream ``x_codes`` ``(N, T, I)`` through it, compare."""
    build_dir = Path(build_dir)
    x = np.asarray(x_codes, dtype=np.int64)
    if x.ndim == 2:
        x = x[None]
    expected = run_golden(design, x)
    files = design_files(design)
    rtl = build_dir / "rtl"
    write_files(rtl, files, force=True)
    name = design.config.hardware.top
    meta = json.loads(files[f"{name}.json"])
    np.save(build_dir / "x.npy", x)
    np.save(build_dir / "expected.npy", expected)
    result_path = build_dir / "result.json"
    result_path.unlink(missing_ok=True)
    env = {
        "LSTM_HW_META": str(rtl / f"{name}.json"), "LSTM_HW_X": str(build_dir / "x.npy"),
        "LSTM_HW_EXPECTED": str(build_dir / "expected.npy"), "LSTM_HW_RESULT": str(result_path),
        "LSTM_HW_SEED": str(seed), "LSTM_HW_IDLE": str(idle), "LSTM_HW_BACKPRESSURE": str(backpressure),
    }
    _, failed = run_cocotb(sim=sim, sources=[rtl / src for src in meta["sources"]], toplevel=name,
               test_module="lstm_hw.sim.tb_top", build_dir=build_dir / sim, env=env, waves=waves)
    if not result_path.exists():
        raise LstmHwError(f"simulation under {sim} produced no result (see {build_dir / sim / 'test.log'})")
    res = json.loads(result_path.read_text())
    return SimResult(output=np.array(res["output"], dtype=np.int64).reshape(expected.shape), expected=expected,
                     mismatches=res["mismatches"], failed_checks=failed, input_cycles=res["input_cycles"],
                     output_cycles=res["output_cycles"], meta=meta)
