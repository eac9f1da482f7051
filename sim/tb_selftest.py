"""cocotb self-test of lstm_hw.sim.axis and lstm_hw.sim.runner (run by tests/sim/test_runner.py).

The design under test is a registered stream stage that returns each signed
8-bit input item plus 1 (wrapping), in order, one item per cycle at full rate.
Its clock and reset are ``clk`` and ``rst`` (active high). Environment variables:

``SELFTEST_PORTS``
    ``amaranth`` (default): ``amaranth.lib.stream`` ports ``i`` and ``o``;
    ``axis``: AXI-Stream ports ``s_axis_*`` and ``m_axis_*`` with ``tlast``.
``SELFTEST_FAIL=1``
    Adds ``deliberate_failure``, whose check is wrong on purpose, to show that
    a failing test is reported.

Random data, idle cycles and backpressure come from ``cocotb.RANDOM_SEED``, which
cocotb derives per test from ``COCOTB_RANDOM_SEED`` and the test's name, so
setting ``COCOTB_RANDOM_SEED`` repeats a run; each test logs its seed.
"""

from __future__ import annotations

import itertools
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles

from lstm_hw.sim.axis import AMARANTH_STREAM, StreamDriver, StreamMonitor, reset

N_ITEMS = 300
CLOCK_NS = 10
#: Cycles the output may lag the last input: the stage's latency plus margin.
DRAIN_CYCLES = 20


def _ports() -> tuple[str, str, dict]:
    """Return the input prefix, output prefix and name keywords that SELFTEST_PORTS selects."""
    style = os.environ.get("SELFTEST_PORTS", "amaranth")
    if style == "amaranth":
        return "i", "o", AMARANTH_STREAM
    if style == "axis":
        return "s_axis", "m_axis", {}
    raise ValueError(f"SELFTEST_PORTS={style!r}: expected 'amaranth' or 'axis'")


async def _start(dut: SimHandleBase) -> tuple[random.Random, list[tuple[int, bool]]]:
    """Start the clock and reset the design; return a seeded generator and random items.

    The items are N_ITEMS signed 8-bit values, with last set on about a fifth of
    them when the ports have a last signal.
    """
    dut._log.info(
        "test seed %d (cocotb derives it from COCOTB_RANDOM_SEED and the test name)",
        cocotb.RANDOM_SEED,
    )
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await reset(dut, dut.clk, "rst", active_low=False, cycles=4)
    rng = random.Random(cocotb.RANDOM_SEED)
    has_last = _ports()[2].get("last", "tlast") is not None
    items = [(rng.randint(-128, 127), has_last and rng.random() < 0.2) for _ in range(N_ITEMS)]
    return rng, items


def _plus(items: list[tuple[int, bool]], offset: int) -> list[tuple[int, bool]]:
    """Return *items* with *offset* added to each value, wrapped to signed 8 bits."""
    return [((value + offset + 128) % 256 - 128, last) for value, last in items]


async def _check_under_random_flow(dut: SimHandleBase, offset: int) -> None:
    """Send random items with random idle cycles and backpressure; expect each + *offset*."""
    rng, items = await _start(dut)
    src, dst, names = _ports()
    driver = StreamDriver(
        dut, dut.clk, src, idle=(rng.random() < 0.3 for _ in itertools.count()), **names
    )
    monitor = StreamMonitor(
        dut, dut.clk, dst, signed_width=8,
        backpressure=(rng.random() < 0.4 for _ in itertools.count()), **names,
    )
    await driver.send(items)
    assert await monitor.wait_for(len(items), timeout_cycles=DRAIN_CYCLES) == _plus(items, offset)
    await ClockCycles(dut.clk, DRAIN_CYCLES)
    assert len(monitor.items) == len(items), f"{len(monitor.items) - len(items)} extra items"


@cocotb.test(timeout_time=200, timeout_unit="us")
async def plus_one_with_idle_and_backpressure(dut: SimHandleBase) -> None:
    """Every item comes out plus 1, in order, under random idle cycles and backpressure."""
    await _check_under_random_flow(dut, offset=1)


@cocotb.test(timeout_time=200, timeout_unit="us")
async def plus_one_always_ready(dut: SimHandleBase) -> None:
    """With the sink tied ready, driver and monitor work without ready, one item per cycle."""
    _, items = await _start(dut)
    src, dst, names = _ports()
    sink_ready = f"{dst}{names.get('sep', '_')}{names.get('ready', 'tready')}"
    getattr(dut, sink_ready).value = 1
    no_ready = {**names, "ready": None}
    monitor = StreamMonitor(dut, dut.clk, dst, signed_width=8, **no_ready)
    start_ns = get_sim_time("ns")
    await StreamDriver(dut, dut.clk, src, **no_ready).send(items)
    cycles = (get_sim_time("ns") - start_ns) / CLOCK_NS
    assert cycles == len(items), f"{len(items)} items took {cycles} cycles"
    assert await monitor.wait_for(len(items), timeout_cycles=DRAIN_CYCLES) == _plus(items, 1)


if os.environ.get("SELFTEST_FAIL") == "1":

    @cocotb.test(timeout_time=200, timeout_unit="us")
    async def deliberate_failure(dut: SimHandleBase) -> None:
        """Expects plus 2 from the plus-1 design, so it must fail."""
        await _check_under_random_flow(dut, offset=2)
