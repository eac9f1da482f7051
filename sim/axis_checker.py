"""An AXI4-Stream protocol checker for cocotb benches: it watches one stream and records violations.

cocotb's AXI helpers do not check the stream protocol (a source that changes
``tdata`` while stalled passes their sink silently), so every stream port of
an end-to-end bench gets one of these::

    checker = AxiStreamChecker(dut, dut.aclk, "m_axis", rst=dut.aresetn)
    ...                        # start it before reset, run the test
    checker.check()            # AssertionError listing the first violations

It only watches: it drives nothing. Signals are found by name as in
:mod:`lstm_hw.sim.axis` (``prefix + sep + suffix``), and they are sampled right
after ``await RisingEdge(clk)``, i.e. the values the design's flip-flops take at
that edge (see that module for why this holds under Icarus and Verilator).
Edges are numbered from 1, the first edge the checker sees.

What it flags (:class:`Kind`), per edge:

- ``valid_dropped``: tvalid was 1 with tready 0 at the previous edge, and is 0 now;
- ``data_changed`` / ``last_changed``: tvalid was 1 with tready 0 at the previous
  edge, tvalid is still 1, and tdata / tlast differ;
- ``valid_in_reset``: tvalid is 1 at an edge where reset is asserted, or at the
  first edge after it is released (the AXI4-Stream rule: a source may raise
  tvalid only *after* the first edge at which reset is seen released);
- ``unresolved``: X or Z on tvalid or tready, or on tdata or tlast while tvalid
  is 1. Only 4-state simulators (Icarus) show X or Z; under Verilator every
  value resolves and this check never fires.

Before reset is first seen asserted nothing is checked (the state is undefined
until then); a reset signal that is X or Z counts as asserted. The stall checks
skip a previous edge at which reset was asserted: a reset may drop tvalid. With
``rst=None`` the stream has no reset and every check runs from the first edge.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import RisingEdge
from cocotb.types import Logic, LogicArray

from lstm_hw.sim.axis import stream_signals

__all__ = ["AxiStreamChecker", "Kind", "Violation"]


class Kind(StrEnum):
    """The kind of a protocol violation."""

    VALID_DROPPED = "valid_dropped"
    DATA_CHANGED = "data_changed"
    LAST_CHANGED = "last_changed"
    VALID_IN_RESET = "valid_in_reset"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class Violation:
    """One violation: its kind, the edge (numbered from 1) where it was seen, and what was seen."""

    kind: Kind
    cycle: int
    detail: str

    def __str__(self) -> str:
        return f"cycle {self.cycle}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class _Sample:
    """What the checker saw at one edge; valid/ready are None when X or Z."""

    in_reset: bool
    valid: int | None
    ready: int | None
    data: object
    last: object


def _bit(value: Logic | LogicArray) -> int | None:
    """Return a 1-bit signal's value as 0 or 1, or None when it is X or Z."""
    if not value.is_resolvable:
        return None
    return int(value) if isinstance(value, Logic) else value.to_unsigned()


class AxiStreamChecker:
    """Watches the stream ``prefix`` of *dut* at every rising edge of *clk* and records violations.

    Starts at construction (call it inside a cocotb test, before reset if the
    reset checks should see it).

    Parameters
    ----------
    dut, clk, prefix, sep, data, valid, ready, last
        The stream's signals, named as in :class:`lstm_hw.sim.axis.StreamDriver`.
        *ready* = None: a stream without ready (always ready; no stall checks).
        *last* = None: a stream without last.
    rst
        The reset signal's handle, or None for a stream without reset.
    rst_active_low
        True if *rst* is asserted at 0 (``aresetn``).
    max_recorded
        At most this many violations are kept in :attr:`violations`; all are counted.

    Members
    -------
    violations : list[Violation]
        The first *max_recorded* violations, in order.
    counts : Counter[Kind]
        The number of violations of each kind.
    cycle : int
        The number of rising edges seen so far.
    """

    def __init__(
        self,
        dut: SimHandleBase,
        clk: SimHandleBase,
        prefix: str,
        *,
        rst: SimHandleBase | None,
        rst_active_low: bool = True,
        sep: str = "_",
        data: str = "tdata",
        valid: str = "tvalid",
        ready: str | None = "tready",
        last: str | None = "tlast",
        max_recorded: int = 1000,
    ) -> None:
        if max_recorded < 1:
            raise ValueError(f"max_recorded must be at least 1, not {max_recorded}")
        self._name = f"{prefix}{sep}*"
        self._clk = clk
        self._rst = rst
        self._rst_released = 1 if rst_active_low else 0
        self._data, self._valid, self._ready, self._last = stream_signals(
            dut, prefix, sep=sep, data=data, valid=valid, ready=ready, last=last)
        self._max_recorded = max_recorded
        self.violations: list[Violation] = []
        self.counts: Counter[Kind] = Counter()
        self.cycle = 0
        cocotb.start_soon(self._run())

    @property
    def total(self) -> int:
        """The number of violations seen, recorded or not."""
        return self.counts.total()

    def report(self, show: int = 10) -> str:
        """Return a listing of the violations (the first *show*, and a count), or "" if none."""
        if not self.total:
            return ""
        lines = [f"  {v}" for v in self.violations[:show]]
        more = self.total - len(lines)
        if more:
            lines.append(f"  ... and {more} more")
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        return f"AXI4-Stream protocol violations on {self._name} ({summary}):\n" + "\n".join(lines)

    def check(self, show: int = 10) -> None:
        """Raise AssertionError with :meth:`report` if there were violations."""
        if self.total:
            raise AssertionError(self.report(show))

    def _flag(self, kind: Kind, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.violations) < self._max_recorded:
            self.violations.append(Violation(kind, self.cycle, detail))

    def _sample(self) -> _Sample:
        if self._rst is None:
            in_reset = False
        else:
            in_reset = _bit(self._rst.value) != self._rst_released
        return _Sample(
            in_reset=in_reset,
            valid=_bit(self._valid.value),
            ready=1 if self._ready is None else _bit(self._ready.value),
            data=self._data.value,
            last=self._last.value if self._last is not None else None,
        )

    async def _run(self) -> None:
        prev: _Sample | None = None
        reset_seen = self._rst is None
        while True:
            await RisingEdge(self._clk)
            self.cycle += 1
            now = self._sample()
            if now.in_reset:
                reset_seen = True
                if now.valid == 1:
                    self._flag(Kind.VALID_IN_RESET, "tvalid is 1 while reset is asserted")
            elif reset_seen:
                if prev is not None and prev.in_reset and now.valid == 1:
                    self._flag(Kind.VALID_IN_RESET, "tvalid is 1 at the first edge after reset")
                self._check_values(now)
                if prev is not None and not prev.in_reset:
                    self._check_stall(prev, now)
            prev = now

    def _check_values(self, now: _Sample) -> None:
        """X or Z on the handshake signals, or on the payload while tvalid is 1."""
        bad = []
        if now.valid is None:
            bad.append(f"tvalid={self._valid.value}")
        if now.ready is None:
            bad.append(f"tready={self._ready.value}")
        if now.valid == 1:
            if not now.data.is_resolvable:
                bad.append(f"tdata={now.data}")
            if now.last is not None and not now.last.is_resolvable:
                bad.append(f"tlast={now.last}")
        if bad:
            self._flag(Kind.UNRESOLVED, ", ".join(bad))

    def _check_stall(self, prev: _Sample, now: _Sample) -> None:
        """A source that waited at the previous edge must still wait with the same payload."""
        if prev.valid != 1 or prev.ready != 0:
            return
        if now.valid == 0:
            self._flag(Kind.VALID_DROPPED, "tvalid fell to 0 while the item waited for tready")
        elif now.valid == 1:
            # X payloads are reported by _check_values; comparing them would only repeat that.
            if prev.data.is_resolvable and now.data.is_resolvable and prev.data != now.data:
                self._flag(Kind.DATA_CHANGED, f"tdata {prev.data} -> {now.data} while stalled")
            if (now.last is not None and prev.last.is_resolvable and now.last.is_resolvable
                    and prev.last != now.last):
                self._flag(Kind.LAST_CHANGED, f"tlast {prev.last} -> {now.last} while stalled")
