"""Self-tests of the simulation tooling: run_cocotb, the stream helpers, the Verilator waiver.

Two tiny Amaranth designs, both a registered stage that adds 1 to each signed
8-bit stream item, one with ``amaranth.lib.stream`` ports and one with AXI-Stream
port names and tlast, are run against ``lstm_hw.sim.tb_selftest``.

No ``from __future__ import annotations`` here: Amaranth reads component ports
from evaluated class annotations.
"""

import importlib.resources
import os
import random
from pathlib import Path

import pytest
from amaranth import Module, signed
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lstm_hw.errors import LstmHwError, UsageError
from lstm_hw.sim.runner import run_cocotb
from lstm_hw.sim.tools import check_simulator, ensure_simulators_on_path, simulator_env, verilator_lint

SIMULATORS = ["icarus", "verilator"]
TB = "lstm_hw.sim.tb_selftest"
WAIVER = Path(str(importlib.resources.files("lstm_hw.constraints") / "amaranth.vlt"))


def _plus_one_stage(m: Module, src: dict, dst: dict) -> None:
    """Add a one-register stage from stream *src* to *dst* (dicts of data/valid/ready[/last]).

    The register loads whenever it is empty or being emptied, so the stage runs
    at one item per cycle and stalls only when *dst* is not ready.
    """
    m.d.comb += src["ready"].eq(dst["ready"] | ~dst["valid"])
    with m.If(src["ready"]):
        m.d.sync += [dst["valid"].eq(src["valid"]), dst["data"].eq(src["data"] + 1)]
        if "last" in src:
            m.d.sync += dst["last"].eq(src["last"])


class StreamPlusOne(wiring.Component):
    """Adds 1 to each signed 8-bit item, with ``amaranth.lib.stream`` ports ``i`` and ``o``."""

    i: In(stream.Signature(signed(8)))
    o: Out(stream.Signature(signed(8)))

    def elaborate(self, platform):
        m = Module()
        _plus_one_stage(
            m,
            {"data": self.i.payload, "valid": self.i.valid, "ready": self.i.ready},
            {"data": self.o.payload, "valid": self.o.valid, "ready": self.o.ready},
        )
        return m


class AxisPlusOne(wiring.Component):
    """Adds 1 to each signed 8-bit item, with AXI-Stream ports ``s_axis_*``/``m_axis_*``."""

    s_axis_tdata: In(signed(8))
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    s_axis_tlast: In(1)
    m_axis_tdata: Out(signed(8))
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)
    m_axis_tlast: Out(1)

    def elaborate(self, platform):
        m = Module()
        _plus_one_stage(
            m,
            {"data": self.s_axis_tdata, "valid": self.s_axis_tvalid,
             "ready": self.s_axis_tready, "last": self.s_axis_tlast},
            {"data": self.m_axis_tdata, "valid": self.m_axis_tvalid,
             "ready": self.m_axis_tready, "last": self.m_axis_tlast},
        )
        return m


DESIGNS = {"amaranth": (StreamPlusOne, "stream_plus_one"), "axis": (AxisPlusOne, "axis_plus_one")}


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Write each design's Verilog once; map port style to (Verilog file, top module name)."""
    out = tmp_path_factory.mktemp("verilog")
    written = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMARANTH_USE_YOSYS", "builtin")
        for style, (component, top) in DESIGNS.items():
            path = out / f"{top}.v"
            path.write_text(verilog.convert(component(), name=top, emit_src=False))
            written[style] = (path, top)
    return written


@pytest.fixture
def seed() -> int:
    """Return the cocotb seed: COCOTB_RANDOM_SEED if set, else a fresh one; print it."""
    value = int(os.environ.get("COCOTB_RANDOM_SEED", random.randrange(2**31)))
    print(f"COCOTB_RANDOM_SEED={value}")
    return value


@pytest.mark.cocotb
@pytest.mark.parametrize("style", DESIGNS)
@pytest.mark.parametrize("sim", SIMULATORS)
def test_stream_plus_one(sim, style, designs, seed, tmp_path):
    """Both self-tests pass: random flow with backpressure, and an always-ready sink."""
    source, top = designs[style]
    result = run_cocotb(
        sim=sim, sources=[source], toplevel=top, test_module=TB, build_dir=tmp_path,
        env={"SELFTEST_PORTS": style, "COCOTB_RANDOM_SEED": str(seed)},
    )
    assert result == (2, 0), f"see {tmp_path / 'test.log'}"


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_failing_check_is_reported(sim, designs, seed, tmp_path):
    """A cocotb test whose check fails is counted as failed, not passed."""
    source, top = designs["amaranth"]
    result = run_cocotb(
        sim=sim, sources=[source], toplevel=top, test_module=TB, build_dir=tmp_path,
        env={"SELFTEST_FAIL": "1", "COCOTB_RANDOM_SEED": str(seed)},
        testcase="deliberate_failure",
    )
    assert result == (1, 1)


@pytest.mark.cocotb
def test_run_without_tests_is_an_error(designs, tmp_path):
    """A testcase filter that matches nothing must not look like a passing run."""
    source, top = designs["amaranth"]
    with pytest.raises(LstmHwError, match="ran no test"):
        run_cocotb(
            sim="icarus", sources=[source], toplevel=top, test_module=TB, build_dir=tmp_path,
            testcase="no_such_test",
        )


def test_verilator_build_dir_with_space_is_a_usage_error(designs, tmp_path):
    source, top = designs["amaranth"]
    with pytest.raises(UsageError, match="path with spaces"):
        run_cocotb(
            sim="verilator", sources=[source], toplevel=top, test_module=TB,
            build_dir=tmp_path / "a b",
        )


def test_missing_mem_file_is_a_usage_error(designs, tmp_path):
    source, top = designs["amaranth"]
    with pytest.raises(UsageError, match="gone.mem: no such ROM contents file"):
        run_cocotb(sim="icarus", sources=[source, tmp_path / "gone.mem"], toplevel=top, test_module=TB,
                   build_dir=tmp_path / "build")


def test_unknown_simulator_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown simulator 'xsim'"):
        run_cocotb(sim="xsim", sources=[], toplevel="top", test_module=TB, build_dir=tmp_path)
    with pytest.raises(UsageError, match="unknown simulator 'xsim'"):
        check_simulator("xsim")


@pytest.mark.parametrize("sim", SIMULATORS)
def test_simulators_are_usable(sim):
    check_simulator(sim)


def test_ensure_simulators_on_path_is_idempotent():
    ensure_simulators_on_path()
    once = dict(os.environ)
    ensure_simulators_on_path()
    assert dict(os.environ) == once
    assert simulator_env() == {key: once[key] for key in simulator_env()}


@pytest.mark.parametrize("style", DESIGNS)
def test_lint_is_clean_with_waiver(style, designs):
    source, top = designs[style]
    assert verilator_lint([source], top, WAIVER) == []


def test_lint_without_waiver_reports_widthexpand(designs):
    source, top = designs["amaranth"]
    warnings = verilator_lint([source], top, None, wall=False)
    assert any(line.startswith("%Warning-WIDTHEXPAND") for line in warnings), warnings
