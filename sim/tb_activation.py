"""cocotb bench for activation units side by side (run by tests/generators/test_activation.py).

The top holds one or more always-ready activation units, each with the ports
``<name>__i__payload``, ``<name>__i__valid``, ``<name>__o__payload`` and
``<name>__o__valid``, plus ``clk`` and ``rst`` (active high). Every unit gets
the same input codes, one per cycle, back to back; each output stream must
equal its expected codes and finish within its latency of the last input.

``TB_SPEC`` is JSON::

    {"stimulus": "x.npy",                        input codes
     "units": {"<name>": {"expected": "y.npy",   expected output codes
                          "out_bits": 16,        width of the signed output
                          "latency": 8}}}        cycles from input to output

The helpers :func:`start` and :func:`check_codes` also serve ``tb_cell``.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase

from lstm_hw.sim.axis import AMARANTH_STREAM, StreamDriver, StreamMonitor, reset

CLOCK_NS = 10
#: Mismatches listed in a failure message.
SHOWN_MISMATCHES = 10
#: Port names of an always-ready ``amaranth.lib.stream`` member.
ALWAYS_READY = {**AMARANTH_STREAM, "ready": None}


def spec() -> dict:
    return json.loads(os.environ["TB_SPEC"])


async def start(dut: SimHandleBase) -> None:
    """Start the clock and reset the design."""
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await reset(dut, dut.clk, "rst", active_low=False, cycles=2)


def check_codes(name: str, got, expected, stimulus: dict[str, np.ndarray]) -> None:
    """Assert ``got == expected``; the message lists the first mismatches with their inputs."""
    got, expected = np.asarray(got, dtype=np.int64), np.asarray(expected, dtype=np.int64)
    bad = np.flatnonzero(got != expected)
    shown = "; ".join(
        f"{', '.join(f'{key}={int(codes[k])}' for key, codes in stimulus.items())}: "
        f"got {int(got[k])}, expected {int(expected[k])}" for k in bad[:SHOWN_MISMATCHES])
    assert bad.size == 0, f"{name}: {bad.size} of {got.size} outputs differ; first: {shown}"


@cocotb.test()
async def every_code(dut):
    """Each unit returns its expected code for every input, at one code per cycle."""
    s = spec()
    codes = np.load(s["stimulus"])
    await start(dut)
    monitors = {name: StreamMonitor(dut, dut.clk, f"{name}__o", signed_width=unit["out_bits"], **ALWAYS_READY)
                for name, unit in s["units"].items()}
    drivers = [cocotb.start_soon(StreamDriver(dut, dut.clk, f"{name}__i", **ALWAYS_READY).send(codes.tolist()))
               for name in s["units"]]
    for driver in drivers:
        await driver
    for name, unit in s["units"].items():
        items = await monitors[name].wait_for(len(codes), timeout_cycles=unit["latency"] + 1)
        check_codes(name, [value for value, _ in items], np.load(unit["expected"]), {"x": codes})
