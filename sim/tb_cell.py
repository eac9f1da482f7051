"""cocotb bench for CellUpdate (run by tests/generators/test_cell.py).

The top is a ``CellUpdate`` behind ``CellBench`` (in the test), which takes
``c_prev`` in the input payload and delays it to the cell's ``c_lag``. Its
ports are ``i__payload``, ``i__valid``,
``o__payload`` and ``o__valid`` (struct payloads flattened, first field in the
low bits), plus ``clk`` and ``rst`` (active high). The input vectors go in one
per cycle, back to back; the ``(c, h)`` outputs must equal the expected codes
and finish within the latency of the last input.

``TB_SPEC`` is JSON::

    {"latency": 25,                                   cycles from input to output
     "in_layout": {"i": [offset, width], ...},        fields of i__payload (signed)
     "out_layout": {"c": [offset, width], ...},       fields of o__payload (signed)
     "stimulus": {"i": "i.npy", ...},                 input codes per field
     "expected": {"c": "c.npy", "h": "h.npy"}}        expected codes per field
"""

from __future__ import annotations

import cocotb
import numpy as np

from lstm_hw.sim.axis import StreamDriver, StreamMonitor
from lstm_hw.sim.tb_activation import ALWAYS_READY, check_codes, spec, start


def pack(layout: dict[str, list[int]], fields: dict[str, int]) -> int:
    """One payload word from signed field codes."""
    return sum((fields[name] & ((1 << width) - 1)) << offset for name, (offset, width) in layout.items())


def unpack(offset: int, width: int, word: int) -> int:
    """The signed code of one field of a payload word."""
    code = (word >> offset) & ((1 << width) - 1)
    return code - (1 << width) if code >> (width - 1) else code


@cocotb.test()
async def random_vectors(dut):
    """Every vector's (c, h) equals the expected codes, at one vector per cycle."""
    s = spec()
    stimulus = {name: np.load(path) for name, path in s["stimulus"].items()}
    count = len(next(iter(stimulus.values())))
    words = [pack(s["in_layout"], {name: int(codes[n]) for name, codes in stimulus.items()}) for n in range(count)]
    await start(dut)
    monitor = StreamMonitor(dut, dut.clk, "o", **ALWAYS_READY)
    await StreamDriver(dut, dut.clk, "i", **ALWAYS_READY).send(words)
    items = await monitor.wait_for(count, timeout_cycles=s["latency"] + 1)
    for name, path in s["expected"].items():
        got = [unpack(*s["out_layout"][name], word) for word, _ in items]
        check_codes(name, got, np.load(path), stimulus)
