"""The AXI4-Stream protocol checker catches each injected fault, under Icarus and Verilator.

One Verilog module (``lstm_hw.sim.tb_checker.VERILOG``) holds a correct source
and one broken port per fault, so each simulator builds once.
"""

from pathlib import Path

import pytest

from lstm_hw.sim.runner import run_cocotb
from lstm_hw.sim.tb_checker import TOPLEVEL, VERILOG


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_checker_catches_each_fault(sim: str, tmp_path: Path) -> None:
    source = tmp_path / f"{TOPLEVEL}.v"
    source.write_text(VERILOG)
    result = run_cocotb(sim=sim, sources=[source], toplevel=TOPLEVEL,
                        test_module="lstm_hw.sim.tb_checker", build_dir=tmp_path / "build")
    assert result == (1, 0), f"see {tmp_path / 'build' / 'test.log'}"
