"""cocotb bench of the generated top's edge cases: resets mid-sequence, length 1, long, back to back, extremes.

One build runs every test here in one simulation; each test resets the
design first. The sequences and their golden outputs come from the caller
(``tests/sim/test_edge_cases.py``) through environment variables:

``LSTM_HW_META``        the generated ``<top>.json``
``LSTM_HW_CASES``       ``.npz``: sequence k of scenario S as ``S.k.x`` (input codes ``(T, I)``)
                        and ``S.k.y`` (golden output codes ``(T', O)``); a reset case's
                        sequence cut by reset as ``S.cut``
``LSTM_HW_PLAN``        ``.json``: ``{"resets": [{"name", "when", "count", "hold", "mode"}, ...]}``
``LSTM_HW_RESULT_DIR``  each test writes ``<test>.json`` here: what it saw and checked
``LSTM_HW_SEED``        the seed of every random idle and backpressure cycle

A reset case streams its cut sequence, asserts ``aresetn`` at an edge chosen
by ``when`` for ``hold`` edges, and then streams its following sequences,
which must be bit-exact; what came out of the cut sequence is discarded.
``when`` is ``inputs`` (right after ``count`` input handshakes),
``input_stalled`` (at an edge where s_axis waits: tvalid high, tready low,
after ``count`` handshakes) or ``output_stalled`` (after ``count`` outputs,
the sink holds tready low; reset lands once m_axis has waited three edges
with tvalid high). The driver drops tvalid while reset is held and raises it
again one edge after the release; the sink keeps its mode's backpressure.

Protocol checkers watch both ports throughout; every test fails on any
violation, mismatch, misplaced tlast, or output beyond the expected ones.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from lstm_hw.sim.axis import StreamDriver, StreamMonitor
from lstm_hw.sim.bench import CycleStamps, score, sequence_items, start_top
from lstm_hw.sim.flow import RandomFlags, flow_modes, mode_rng

MODES = {mode.name: mode for mode in flow_modes(idle=0.3, backpressure=0.4)}
#: Edges m_axis must wait, tvalid high and tready low, before an ``output_stalled`` reset.
STALL_EDGES = 3


class EdgeBench:
    """Clock, reset, checkers, driver, monitor and handshake stamps of one test; a scoreboard per scenario."""

    def __init__(self, dut, name):
        self.dut, self.name = dut, name
        self.meta = json.loads(open(os.environ["LSTM_HW_META"]).read())
        self.cases = np.load(os.environ["LSTM_HW_CASES"])
        self.seed = int(os.environ.get("LSTM_HW_SEED", "1"))
        self.record = {"seed": self.seed}
        self.failures = []
        self._draws = 0
        dut._log.info("%s: seed %d (replay: LSTM_HW_SEED=%d)", name, self.seed, self.seed)

    async def start(self):
        dut = self.dut
        self.checkers = await start_top(dut)
        self.in_stamps = CycleStamps(dut.aclk, dut.s_axis_tvalid, dut.s_axis_tready)
        self.idle, self.stall = RandomFlags(), RandomFlags()
        self.monitor = StreamMonitor(dut, dut.aclk, "m_axis", signed_width=self.meta["output"]["bits"],
                                     backpressure=self.stall)
        self.driver = StreamDriver(dut, dut.aclk, "s_axis", idle=self.idle)

    def sequences(self, scenario):
        """The inputs and golden outputs of a scenario's sequences, in order."""
        xs, ys, k = [], [], 0
        while f"{scenario}.{k}.x" in self.cases:
            xs.append(self.cases[f"{scenario}.{k}.x"])
            ys.append(self.cases[f"{scenario}.{k}.y"])
            k += 1
        assert xs, f"no sequences for scenario {scenario}"
        return xs, ys

    def set_mode(self, name):
        """Switch driver idle and sink backpressure to mode *name*, from fresh seeded generators."""
        mode = MODES[name]
        self._draws += 1
        self.idle.set(mode.idle, mode_rng(self.seed, self._draws, 0))
        self.stall.set(mode.backpressure, mode_rng(self.seed, self._draws, 1))

    def budget(self, xs):
        steps = sum(len(x) for x in xs)
        return 64 * (self.meta["cycles_per_group"] + self.meta["latency_cycles"]) * max(1, steps) + 10_000

    async def stream(self, label, xs, ys, mode):
        """Send sequences *xs* back to back under *mode*, wait for their outputs, score them against *ys*."""
        self.set_mode(mode)
        first = len(self.monitor.items)
        await self.driver.send(sequence_items(xs))
        n = sum(y.size for y in ys)
        got = (await self.monitor.wait_for(first + n, timeout_cycles=self.budget(xs)))[first:]
        result = score(got, ys)
        for k, (t, h), have, want in result.mismatches[:10]:
            self.dut._log.error("%s: mismatch at sequence %d, (t, h) = (%d, %d): got %d, expected %d",
                                label, k, t, h, have, want)
        if result.mismatches:
            self.failures.append(f"{label}: {len(result.mismatches)} of {n} outputs differ from the golden model")
        if not result.last_ok:
            self.failures.append(f"{label}: m_axis_tlast is not exactly on each sequence's last element")
        return {"sequences": len(xs), "steps": sum(len(x) for x in xs), "outputs": n,
                "mismatches": len(result.mismatches), "last_ok": result.last_ok}

    async def finish(self, expected_outputs):
        """No output beyond *expected_outputs* after a drain; write the record; fail on anything seen."""
        await ClockCycles(self.dut.aclk, 2 * (self.meta["cycles_per_group"] + self.meta["latency_cycles"]) + 16)
        stray = len(self.monitor.items) - expected_outputs
        if stray:
            self.failures.append(f"{stray} outputs beyond the expected {expected_outputs}")
        self.record["stray_outputs"] = stray
        self.record["protocol_violations"] = sum(c.total for c in self.checkers)
        self.failures += [c.report() for c in self.checkers if c.total]
        with open(os.path.join(os.environ["LSTM_HW_RESULT_DIR"], f"{self.name}.json"), "w") as f:
            json.dump(self.record, f)
        for failure in self.failures:
            self.dut._log.error("%s", failure)
        assert not self.failures, f"{self.name}, seed {self.seed}:\n" + "\n".join(self.failures)


async def _streamed(dut, name, runs):
    """A test that streams scenarios back to back: *runs* is a list of (scenario, mode)."""
    bench = EdgeBench(dut, name)
    await bench.start()
    total = 0
    for scenario, mode in runs:
        xs, ys = bench.sequences(scenario)
        bench.record[f"{scenario}/{mode}"] = await bench.stream(f"{scenario} ({mode})", xs, ys, mode)
        total += sum(y.size for y in ys)
    return bench, total


@cocotb.test()
async def length_one(dut):
    """Sequences of a single timestep, back to back, without and with random idle and backpressure."""
    bench, total = await _streamed(dut, "length_one", [("length_one", "steady"), ("length_one", "both")])
    await bench.finish(total)


@cocotb.test()
async def extremes(dut):
    """Inputs at the format's limits: all max, all min, alternating, and the codes next to them."""
    bench, total = await _streamed(dut, "extremes", [("extremes", "steady"), ("extremes", "both")])
    await bench.finish(total)


@cocotb.test()
async def long_saturating(dut):
    """A long sequence that saturates the cell state, then a short one that must start from c = 0 again."""
    bench, total = await _streamed(dut, "long_saturating", [("long_saturating", "steady"),
                                                            ("long_saturating", "both")])
    await bench.finish(total)


@cocotb.test()
async def back_to_back(dut):
    """No idle and no backpressure: each sequence's first beat is offered in the edge after the tlast handshake."""
    bench = EdgeBench(dut, "back_to_back")
    await bench.start()
    xs, ys = bench.sequences("back_to_back")
    edges = []

    async def watch():  # s_axis (tvalid, tready) at every edge
        while True:
            await RisingEdge(dut.aclk)
            edges.append((int(dut.s_axis_tvalid.value), int(dut.s_axis_tready.value)))

    watcher = cocotb.start_soon(watch())
    bench.record["back_to_back"] = await bench.stream("back_to_back", xs, ys, "steady")
    watcher.cancel()
    stamps = [e for e, (valid, ready) in enumerate(edges) if valid and ready]
    held = [valid for valid, _ in edges[stamps[0]:stamps[-1] + 1]]
    lasts = np.cumsum([x.size for x in xs])[:-1] - 1  # the tlast handshakes but the final one
    gaps = [stamps[i + 1] - stamps[i] for i in lasts]
    bench.record["back_to_back"].update(handshakes=len(stamps), valid_edges=len(held), valid_continuous=all(held),
                                        boundaries=len(gaps), boundary_handshake_gaps=gaps)
    if len(stamps) != sum(x.size for x in xs) or not all(held):
        bench.failures.append("s_axis_tvalid fell between the first and the last input handshake")
    await bench.finish(sum(y.size for y in ys))


@cocotb.test()
async def resets(dut):
    """aresetn in the middle of sequences (inputs taken, input stalled, output stalled): the next ones are exact."""
    bench = EdgeBench(dut, "resets")
    await bench.start()
    plan = json.loads(open(os.environ["LSTM_HW_PLAN"]).read())["resets"]
    expected_outputs = 0
    for case in plan:
        name, when, count = case["name"], case["when"], case["count"]
        cut = bench.cases[f"{name}.cut"]
        bench.set_mode(case["mode"])
        out0 = len(bench.monitor.items)
        task = cocotb.start_soon(bench.driver.send(sequence_items([cut])))
        taken, waited, seen = 0, 0, None
        for _ in range(bench.budget([cut])):
            await RisingEdge(dut.aclk)
            # Sampled here, not taken from the stamps or monitor, which may update after this task at an edge.
            s = (int(dut.s_axis_tvalid.value), int(dut.s_axis_tready.value))
            m = (int(dut.m_axis_tvalid.value), int(dut.m_axis_tready.value))
            taken += s == (1, 1)
            if when == "inputs" and taken >= count:
                seen = {"inputs_taken": taken}
            elif when == "input_stalled" and taken >= count and s == (1, 0):
                seen = {"inputs_taken": taken, "s_axis_stalled": True}
            elif when == "output_stalled" and len(bench.monitor.items) - out0 >= count:
                bench.stall.set(1.0)  # from here on the sink holds tready low; random stalls before do not count
                waited = waited + 1 if m == (1, 0) else 0
                if waited >= STALL_EDGES:
                    seen = {"inputs_taken": taken, "m_axis_stalled_edges": waited}
            if seen is not None:
                break
        if seen is None:
            bench.failures.append(f"{name}: the reset condition {when} ({count}) never occurred")
            break
        # Reset lands at the next edge: the source drops tvalid with it, the cut sequence is gone.
        task.cancel()
        bench.driver.abort()
        dut.aresetn.value = 0
        await ClockCycles(dut.aclk, case["hold"])
        dut.aresetn.value = 1
        await RisingEdge(dut.aclk)
        discarded = len(bench.monitor.items) - out0
        seen.update(outputs_before_reset=discarded, cut_steps=len(cut), cut_inputs=cut.size,
                    s_axis=list(s), m_axis=list(m))
        xs, ys = bench.sequences(name)
        seen.update(await bench.stream(f"{name} (after reset)", xs, ys, case["mode"]))
        bench.record[name] = seen
        expected_outputs += discarded + sum(y.size for y in ys)
    await bench.finish(expected_outputs)
