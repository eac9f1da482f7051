"""Pieces shared by the benches of the generated top: start-up, input beats, handshake stamps and the scoreboard.

The scoreboard works on sequences of any lengths: the expectation is a list
of golden output arrays ``(T'_k, O)``, one per sequence, and tlast belongs on
the last element of each.
"""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from .axis import reset
from .axis_checker import AxiStreamChecker

__all__ = ["CycleStamps", "Score", "score", "sequence_items", "start_top", "pulse_state_rst", "split_transfers"]


async def start_top(dut) -> list[AxiStreamChecker]:
    """Start a bench of the generated top: ``aclk`` at 100 MHz, every stream idle (and ``state_rst`` low,
    where the core has it), a protocol checker on ``s_axis``, on ``m_axis`` and, where the core has it, on
    ``s_axis_weights`` from before reset, and ``aresetn`` low for 16 edges. Returns the checkers one edge
    after the release: an AXI4-Stream source raises tvalid only after the first edge with aresetn high."""
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    ports = ["s_axis", "m_axis"]
    if hasattr(dut, "state_rst"):
        dut.state_rst.value = 0
    if hasattr(dut, "s_axis_weights_tvalid"):
        dut.s_axis_weights_tvalid.value = 0
        dut.s_axis_weights_tlast.value = 0
        ports.append("s_axis_weights")
    checkers = [AxiStreamChecker(dut, dut.aclk, port, rst=dut.aresetn) for port in ports]
    await reset(dut, dut.aclk, "aresetn", active_low=True, cycles=16)
    await RisingEdge(dut.aclk)
    return checkers


async def pulse_state_rst(dut) -> None:
    """``state_rst`` high for one edge, between transfers: the next timestep starts from zero state."""
    dut.state_rst.value = 1
    await RisingEdge(dut.aclk)
    dut.state_rst.value = 0


class CycleStamps:
    """Records the edge number (from 1) of every handshake on a valid/ready pair; starts at construction."""

    def __init__(self, clk, valid, ready):
        self.cycles: list[int] = []
        self.edge = 0
        self._clk, self._valid, self._ready = clk, valid, ready
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self._clk)
            self.edge += 1
            if self._valid.value == 1 and self._ready.value == 1:
                self.cycles.append(self.edge)


def split_transfers(items) -> tuple[list[list[tuple[int, bool]]], list[tuple[int, bool]]]:
    """Output beats ``(value, last)`` cut into transfers at each ``last``: ``(transfers, beats after the last
    tlast)``."""
    transfers, current = [], []
    for word, last in items:
        current.append((word, last))
        if last:
            transfers.append(current)
            current = []
    return transfers, current


def sequence_items(sequences) -> list[tuple[int, bool]]:
    """The input beats ``(code, last)`` of sequences ``(T_k, I)``: tlast on each sequence's last element."""
    return [(int(v), bool(t == len(seq) - 1 and i == len(row) - 1))
            for seq in sequences for t, row in enumerate(seq) for i, v in enumerate(row)]


@dataclass(frozen=True)
class Score:
    """The comparison of output beats with the golden model."""

    values: list[np.ndarray]           # per sequence, shaped like its expectation
    mismatches: list[tuple[int, tuple[int, int], int, int]]  # (sequence, (t, h), got, expected)
    last_ok: bool

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.last_ok


def score(got: list[tuple[int, bool]], expected: list[np.ndarray]) -> Score:
    """Compare output beats ``(value, last)`` with the golden arrays of consecutive sequences."""
    sizes = [e.size for e in expected]
    if len(got) != sum(sizes):
        raise ValueError(f"{len(got)} beats for {sum(sizes)} expected outputs")
    bounds = np.cumsum([0] + sizes)
    values, mismatches, last_ok = [], [], True
    for k, (want, lo, hi) in enumerate(zip(expected, bounds, bounds[1:])):
        beats = got[lo:hi]
        have = np.array([v for v, _ in beats], dtype=np.int64).reshape(want.shape)
        values.append(have)
        mismatches += [(k, tuple(int(i) for i in idx), int(have[tuple(idx)]), int(want[tuple(idx)]))
                       for idx in np.argwhere(have != want)]
        last_ok &= [last for _, last in beats] == [False] * (len(beats) - 1) + [True]
    return Score(values=values, mismatches=mismatches, last_ok=last_ok)
