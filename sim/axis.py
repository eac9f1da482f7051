"""cocotb helpers for valid/ready streams: a driver, a monitor and a reset sequence.

Signals are found by name: ``prefix + sep + suffix``. The defaults fit AXI-Stream
names (``s_axis_tdata``, ``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tlast``);
``AMARANTH_STREAM`` fits the ports Amaranth emits for an ``amaranth.lib.stream``
member (``i__payload``, ``i__valid``, ``i__ready``)::

    driver = StreamDriver(dut, dut.clk, "i", **AMARANTH_STREAM)
    monitor = StreamMonitor(dut, dut.clk, "o", signed_width=8, **AMARANTH_STREAM)

Timing, the same in Icarus and Verilator: the rising clock edge is the only
point of reference. Everything is *sampled* right after ``await RisingEdge(clk)``,
where cocotb shows the settled values from before the edge, i.e. exactly what the
design's flip-flops sample (Icarus resumes cocotb before its nonblocking
updates; cocotb's Verilator main loop resumes it after writing the clock and
before ``eval``). Everything is *driven* right after that same await: cocotb
applies those writes only after the design has processed the edge (Icarus: in
the ReadWrite phase; Verilator: as inertial writes after ``eval``), so the design
sees them at the next edge and no write races a flip-flop. Several coroutines
sampling and driving at the same edge are thus independent of their order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import RisingEdge

#: Keyword arguments for the port names of an ``amaranth.lib.stream`` member.
AMARANTH_STREAM = {"sep": "__", "data": "payload", "valid": "valid", "ready": "ready", "last": None}


def _signal(dut: SimHandleBase, prefix: str, sep: str, suffix: str | None) -> SimHandleBase | None:
    """Return the handle of ``prefix + sep + suffix`` in *dut*, or None when *suffix* is None."""
    if suffix is None:
        return None
    name = f"{prefix}{sep}{suffix}"
    try:
        return getattr(dut, name)
    except AttributeError:
        raise AttributeError(f"{dut._name} has no signal {name!r}") from None


def stream_signals(dut: SimHandleBase, prefix: str, *, sep: str, data: str, valid: str,
                   ready: str | None, last: str | None) -> tuple:
    """The handles ``(data, valid, ready, last)`` of one stream; ``ready``/``last`` are None when absent."""
    return tuple(_signal(dut, prefix, sep, suffix) for suffix in (data, valid, ready, last))


def _flags(flags: Iterable[bool] | None) -> Iterator[bool]:
    """Turn an optional iterable of bools into an iterator that yields False once exhausted."""
    return itertools.chain(flags if flags is not None else (), itertools.repeat(False))


class StreamDriver:
    """Drives the source side of a valid/ready stream (data, valid, optional last).

    *idle* is an optional iterable of bools consulted before each item: every True
    inserts one cycle with valid low first (random idle cycles come from e.g.
    ``(rng.random() < 0.3 for _ in itertools.count())``). Once valid is high it
    stays high, with data and last stable, until the handshake. *ready* = None
    drives a sink that is always ready: every cycle with valid high is a transfer.
    """

    def __init__(
        self,
        dut: SimHandleBase,
        clk: SimHandleBase,
        prefix: str,
        *,
        sep: str = "_",
        data: str = "tdata",
        valid: str = "tvalid",
        ready: str | None = "tready",
        last: str | None = "tlast",
        idle: Iterable[bool] | None = None,
    ) -> None:
        self._clk = clk
        self._data, self._valid, self._ready, self._last = stream_signals(
            dut, prefix, sep=sep, data=data, valid=valid, ready=ready, last=last)
        self._idle = _flags(idle)
        self._valid.value = 0
        if self._last is not None:
            self._last.value = 0

    async def send(self, items: Iterable[int | tuple[int, bool]]) -> None:
        """Transfer *items* in order and return after the last handshake, leaving valid low.

        An item is ``data`` or ``(data, last)``; data may be negative (two's
        complement of the data signal's width). Call it right after a rising edge
        or between edges, never from a ReadOnly phase.
        """
        width = len(self._data)
        for item in items:
            value, last = item if isinstance(item, tuple) else (item, False)
            if not -(1 << (width - 1)) <= value < (1 << width):
                raise ValueError(f"{value} does not fit the {width}-bit data signal")
            if last and self._last is None:
                raise ValueError("an item has last set but the stream has no last signal")
            while next(self._idle):
                self._valid.value = 0
                await RisingEdge(self._clk)
            self._data.value = value & ((1 << width) - 1)
            if self._last is not None:
                self._last.value = int(last)
            self._valid.value = 1
            await RisingEdge(self._clk)
            while self._ready is not None and self._ready.value != 1:
                await RisingEdge(self._clk)
        self._valid.value = 0

    def abort(self) -> None:
        """Drop valid (and last) from now on, as a source must while reset is asserted.

        Cancel the task running :meth:`send` first: the items it has not yet
        transferred are dropped. A later :meth:`send` starts afresh.
        """
        self._valid.value = 0
        if self._last is not None:
            self._last.value = 0


class StreamMonitor:
    """Drives ready on the sink side of a stream and records every handshake.

    Starts at construction (call it inside a cocotb test). *backpressure* is an
    optional iterable of bools, one per cycle: True deasserts ready for that cycle.
    *ready* = None watches a stream without ready (always ready): every cycle with
    valid high is a transfer. ``items`` collects ``(value, last)`` in order;
    *value* is unsigned, or with *signed_width* the two's-complement value of the
    data signal's low *signed_width* bits (``.to_signed()`` when it is the full
    width); *last* is False for a stream without last. Data with X or Z bits at a
    handshake fails the test.
    """

    def __init__(
        self,
        dut: SimHandleBase,
        clk: SimHandleBase,
        prefix: str,
        *,
        sep: str = "_",
        data: str = "tdata",
        valid: str = "tvalid",
        ready: str | None = "tready",
        last: str | None = "tlast",
        signed_width: int | None = None,
        backpressure: Iterable[bool] | None = None,
    ) -> None:
        self._clk = clk
        self._data, self._valid, self._ready, self._last = stream_signals(
            dut, prefix, sep=sep, data=data, valid=valid, ready=ready, last=last)
        if signed_width is not None and not 0 < signed_width <= len(self._data):
            raise ValueError(f"signed_width {signed_width} is not in 1..{len(self._data)}")
        self._signed_width = signed_width
        self._backpressure = _flags(backpressure)
        self.items: list[tuple[int, bool]] = []
        cocotb.start_soon(self._run())

    def _value(self) -> int:
        """Return the data signal's current value as this monitor interprets it."""
        raw = self._data.value.to_unsigned()
        if self._signed_width is None:
            return raw
        raw &= (1 << self._signed_width) - 1
        return raw - (1 << self._signed_width) if raw >> (self._signed_width - 1) else raw

    async def _run(self) -> None:
        """Each cycle: drive ready, then record the transfer, if any, at the rising edge."""
        while True:
            if self._ready is not None:
                self._ready.value = 0 if next(self._backpressure) else 1
            await RisingEdge(self._clk)
            if self._valid.value == 1 and (self._ready is None or self._ready.value == 1):
                last = self._last is not None and self._last.value == 1
                self.items.append((self._value(), last))

    async def wait_for(self, n: int, timeout_cycles: int) -> list[tuple[int, bool]]:
        """Wait until at least *n* items arrived and return the first *n*.

        Fails the test with AssertionError if they have not arrived within
        *timeout_cycles* rising edges.
        """
        for _ in range(timeout_cycles):
            if len(self.items) >= n:
                break
            await RisingEdge(self._clk)
        assert len(self.items) >= n, (
            f"got {len(self.items)} of {n} items within {timeout_cycles} cycles"
        )
        return self.items[:n]


async def reset(
    dut: SimHandleBase, clk: SimHandleBase, rst_signal_name: str, active_low: bool, cycles: int = 16
) -> None:
    """Assert the reset signal named *rst_signal_name* for *cycles* rising edges of *clk*.

    Returns right after the edge at which reset is released; the design leaves
    reset at the next edge. *active_low* selects the asserted level (0 if True).
    """
    rst = getattr(dut, rst_signal_name)
    rst.value = 0 if active_low else 1
    for _ in range(cycles):
        await RisingEdge(clk)
    rst.value = 1 if active_low else 0
