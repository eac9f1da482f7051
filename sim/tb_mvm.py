"""cocotb bench for SparseMatVec units side by side (run by tests/generators/test_mvm.py).

The top holds one or more ``SparseMatVec`` units, each with the ports
``<name>__wr__payload``, ``<name>__wr__valid`` (always ready),
``<name>__cmd__payload``, ``<name>__cmd__valid``, ``<name>__cmd__ready``,
``<name>__o__payload`` and ``<name>__o__valid`` (always ready), and with a
recurrent phase ``<name>__h_ready`` (held high here) and ``<name>__h_go``,
plus ``clk`` and ``rst`` (active high). Each unit runs its steps as the layer does: write a
step's vector into its buffer half one element per cycle, issue the command,
and go straight on to the next step's writes into the other half while the
command runs. Every output word (pass number and pre-activations, packed)
must equal the expected word, in order.

``TB_SPEC`` is JSON; payloads are packed unsigned words::

    {"units": {"<name>": {"writes": [[w, ...], ...],    per step: vector writes
                          "cmds": [c, ...],             per step: the command
                          "expected": [o, ...],         every output word, in order
                          "timeout": 500}}}             cycles allowed after the last command
"""

from __future__ import annotations

import cocotb

from lstm_hw.sim.axis import AMARANTH_STREAM, StreamDriver, StreamMonitor
from lstm_hw.sim.tb_activation import ALWAYS_READY, spec, start


async def drive(dut, name: str, unit: dict) -> None:
    """One unit's steps: writes, then command, back to back."""
    if hasattr(dut, f"{name}__h_ready"):
        getattr(dut, f"{name}__h_ready").value = 1
    writes = StreamDriver(dut, dut.clk, f"{name}__wr", **ALWAYS_READY)
    cmds = StreamDriver(dut, dut.clk, f"{name}__cmd", **AMARANTH_STREAM)
    for step_writes, cmd in zip(unit["writes"], unit["cmds"]):
        await writes.send(step_writes)
        await cmds.send([cmd])


@cocotb.test()
async def steps(dut):
    """Each unit's output words equal the golden pre-activations, pass by pass."""
    s = spec()
    await start(dut)
    monitors = {name: StreamMonitor(dut, dut.clk, f"{name}__o", **ALWAYS_READY) for name in s["units"]}
    drivers = [cocotb.start_soon(drive(dut, name, unit)) for name, unit in s["units"].items()]
    for driver in drivers:
        await driver
    for name, unit in s["units"].items():
        items = await monitors[name].wait_for(len(unit["expected"]), timeout_cycles=unit["timeout"])
        # Words can be wider than 64 bits: compare them as Python integers.
        bad = [(n, hex(got), hex(want)) for n, ((got, _), want) in enumerate(zip(items, unit["expected"]))
               if got != want]
        assert not bad, f"{name}: {len(bad)} of {len(items)} output words differ; first (index, got, expected): {bad[:3]}"
