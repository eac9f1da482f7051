"""A stand-in for the ``pynq`` module whose AXI DMAs drive the generated core in a cocotb simulation.

The generated ``<top>_driver.py`` runs unmodified on it, in a thread that
cocotb's :func:`~cocotb.task.bridge` started: every call the driver makes
into ``pynq`` (``transfer``, ``idle``, ``wait``, ``read``) blocks that thread
while the simulation runs on (:func:`~cocotb.task.resume`). What it models of
the AXI DMA in simple mode (PG021) and of PYNQ's ``DMA`` driver:

- ``sendchannel`` (MM2S) streams the buffer's bytes, little end first, into
  its stream port (``s_axis``; ``s_axis_weights`` for the weights DMA), as
  many bytes a beat as ``tdata`` holds (a length of part of a beat is
  refused: the core has no ``tkeep``), with ``tlast`` on the last beat of
  the transfer only, and idle cycles (``tvalid`` low) drawn from a seeded
  generator;
- ``recvchannel`` (S2MM) takes ``m_axis`` beats into the buffer while a
  transfer is armed, with ``tready`` low on random cycles, and ends the
  transfer at ``tlast``. More beats than the buffer holds is the DMA's
  internal error: the channel halts (``tready`` low, never idle again), and
  ``error`` tells it. A DMA built MM2S only has no ``recvchannel`` (None);
- ``transfer`` on a busy channel raises ``RuntimeError`` as PYNQ's does;
- ``allocate(shape, dtype)`` gives a zeroed NumPy array; ``Overlay(path)``
  exposes each IP under its block design name (the driver's ``DESIGN``);
- an AXI GPIO (PG144) with one output bit, whose ``write(0x0, value)``
  (``GPIO_DATA``) drives a pin (a stateful core's ``state_rst``) from the
  next clock edge on, and one with an input bit, whose ``read(0x0)`` samples
  a pin (a ``"ram"`` core's ``weights_ok``) at a clock edge.
"""

from __future__ import annotations

import itertools
import types

import cocotb
import numpy as np
from cocotb.task import resume
from cocotb.triggers import RisingEdge

from .axis import StreamDriver

__all__ = ["SimulatedDma", "SimulatedGpio", "SimulatedInputGpio", "pynq_module"]


class _Channel:
    """One DMA channel: ``transfer``, ``idle``, ``wait`` and ``error`` as PYNQ's ``_DMAChannel`` has them."""

    def __init__(self, clk):
        self._clk = clk
        self._task = None
        self.error = False
        self.transfers = 0

    def transfer(self, array):
        if self.error:
            raise RuntimeError("DMA channel halted by an error")
        if self._task is not None and not self._task.done():
            raise RuntimeError("DMA channel not idle")
        self.transfers += 1
        self._start(array)

    @resume
    async def _start(self, array):
        self._task = cocotb.start_soon(self._move(array))

    @property
    def idle(self) -> bool:
        return self._poll()

    @resume
    async def _poll(self) -> bool:
        await RisingEdge(self._clk)
        return self._task is not None and self._task.done() and not self.error

    def wait(self):
        if not self.idle:
            raise RuntimeError("wait() on a channel that is not idle")


class _Mm2s(_Channel):
    def __init__(self, dut, clk, port, idle):
        super().__init__(clk)
        self._driver = StreamDriver(dut, clk, port, idle=idle)
        self._beat_bytes = len(getattr(dut, f"{port}_tdata")) // 8
        self.beats = 0

    def transfer(self, array):
        size = np.asarray(array).nbytes
        if size == 0 or size % self._beat_bytes:
            raise ValueError(f"a transfer of {size} bytes is not whole {self._beat_bytes}-byte beats")
        super().transfer(array)

    async def _move(self, array):
        raw = np.ascontiguousarray(array).view(np.uint8).reshape(-1, self._beat_bytes)
        words = [int.from_bytes(row.tobytes(), "little") for row in raw]
        await self._driver.send([(w, i == len(words) - 1) for i, w in enumerate(words)])
        self.beats += len(words)


class _S2mm(_Channel):
    def __init__(self, dut, clk, backpressure):
        super().__init__(clk)
        self._dut = dut
        self._backpressure = backpressure
        self.received = 0
        dut.m_axis_tready.value = 0

    async def _move(self, array):
        dut, rows = self._dut, array.reshape(len(array), -1)
        width = rows.shape[1]
        n = 0
        while True:
            dut.m_axis_tready.value = 0 if next(self._backpressure) else 1
            await RisingEdge(self._clk)
            if not (dut.m_axis_tvalid.value == 1 and dut.m_axis_tready.value == 1):
                continue
            if n == len(rows):             # a beat the buffer cannot hold: DMAIntErr, the channel halts
                self.error = True
                dut.m_axis_tready.value = 0
                return
            rows[n] = np.frombuffer(dut.m_axis_tdata.value.to_unsigned().to_bytes(width, "little"), np.uint8)
            n += 1
            self.received += 1
            if dut.m_axis_tlast.value == 1:
                dut.m_axis_tready.value = 0
                return


class SimulatedDma:
    """An AXI DMA in simple mode between buffers in memory and the core's stream ports.

    Parameters
    ----------
    dut, clk :
        The core's cocotb handle and its clock.
    rng : numpy.random.Generator
        The source of the idle cycles on the MM2S stream and the stalls on the S2MM one.
    idle, backpressure : float
        Probability of an idle cycle before an MM2S beat, and of S2MM's ``tready`` low in a cycle.
    mm2s : str
        The core's stream port MM2S feeds: ``s_axis``, or ``s_axis_weights`` for the weights DMA.
    s2mm : bool
        Whether the DMA has an S2MM channel, fed by ``m_axis``; without it ``recvchannel`` is None.
    """

    def __init__(self, dut, clk, rng, *, idle: float = 0.3, backpressure: float = 0.3, mm2s: str = "s_axis",
                 s2mm: bool = True):
        def flags(p):
            return (bool(rng.random() < p) for _ in itertools.count())
        self.sendchannel = _Mm2s(dut, clk, mm2s, flags(idle))
        self.recvchannel = _S2mm(dut, clk, flags(backpressure)) if s2mm else None


class SimulatedGpio:
    """An AXI GPIO with one output bit on ``pin``: ``write(offset, value)`` as PYNQ's ``DefaultIP`` has it.

    ``writes`` counts the writes; each takes effect at the next rising edge of ``clk``.
    """

    GPIO_DATA = 0x0

    def __init__(self, pin, clk):
        self._pin, self._clk = pin, clk
        self._pin.value = 0
        self.writes = 0

    def write(self, offset, value):
        if offset != self.GPIO_DATA:
            raise ValueError(f"this GPIO has only its GPIO_DATA register (offset 0x0) to write, not {offset:#x}")
        self.writes += 1
        self._write(int(value) & 1)

    @resume
    async def _write(self, value):
        await RisingEdge(self._clk)
        self._pin.value = value
        await RisingEdge(self._clk)


class SimulatedInputGpio:
    """An AXI GPIO with one input bit on ``pin``: ``read(offset)`` as PYNQ's ``DefaultIP`` has it.

    ``reads`` counts the reads; each samples ``pin`` at the next rising edge of ``clk``.
    """

    GPIO_DATA = 0x0

    def __init__(self, pin, clk):
        self._pin, self._clk = pin, clk
        self.reads = 0

    def read(self, offset=0):
        if offset != self.GPIO_DATA:
            raise ValueError(f"this GPIO has only its GPIO_DATA register (offset 0x0) to read, not {offset:#x}")
        self.reads += 1
        return self._read()

    @resume
    async def _read(self):
        await RisingEdge(self._clk)
        return int(self._pin.value)


def pynq_module(ips: dict) -> types.ModuleType:
    """A module that stands in for ``pynq``: ``allocate`` and an ``Overlay`` holding each of ``ips`` (DMAs and
    GPIOs) under its block design name."""
    module = types.ModuleType("pynq")

    class Overlay:
        def __init__(self, bitfile):
            self.bitfile = bitfile
            for name, ip in ips.items():
                setattr(self, name, ip)

    def allocate(shape, dtype=np.uint32, **_):
        return np.zeros(shape, dtype=dtype)

    module.Overlay, module.allocate = Overlay, allocate
    return module
