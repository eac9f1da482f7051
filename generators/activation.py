"""Activation units: pipelined hardware for the tables of :mod:`lstm_hw.activations`.

Every activation unit, whatever its method, honours one interface so that the
datapath can instantiate any of them through :func:`activation_unit`:

* it is a :class:`~amaranth.lib.wiring.Component` built from one table object,
  the single source of its formats and its contents;
* its signature is ``i: In(stream.Signature(table.in_fmt.shape(), always_ready=True))``
  and ``o: Out(stream.Signature(table.out_fmt.shape(), always_ready=True))``;
* it has no backpressure: both ports are always ready, a transfer happens
  whenever ``valid`` is high, and ``valid`` only travels down the pipeline;
* it accepts one input per cycle and returns each result exactly
  :attr:`latency` cycles after its input (input valid in cycle ``t``, output
  valid in cycle ``t + latency``), in order;
* its output equals ``table.eval`` of its input, bit for bit.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..activations import PWLTable
from ..numerics import bits_for
from .fixed import delay, round_shift

__all__ = ["PWLActivation", "activation_unit"]


class PWLActivation(wiring.Component):
    """Folded piecewise-linear sigmoid or tanh, bit-exact with :meth:`PWLTable.eval`.

    Pipeline (one register after each stage; "depth" is the longest
    combinational path into that register)::

        1  ax = |x|, neg = x < 0                  one negation (carry chain)
        2  ROM[ax >> seg_shift] (synchronous),    address is a wire;
           dx = low bits of ax, inside = ax < range   one constant compare
        3  multiplier operands slope, dx          none (DSP48E1 A/B registers)
        4  product = slope * dx                   multiplier (DSP48E1 M register)
        5  round_shift(product, slope_shift)      one constant add (DSP48E1 P register)
        6  yp = rounded + intercept               one adder
        7  yc = clamp(inside ? yp : sat_value)    constant compares, then muxes
        8  y = neg ? k - yc : yc                  one subtractor and a mux

    ``k`` is ``one`` for sigmoid (``sigmoid(-x) = 1 - sigmoid(x)``) and 0 for
    tanh. Stage 7 clamps to ``[0, one]`` intersected with the codes whose
    unfolded value fits ``out_fmt``, which is the golden model's clamp followed
    by its final saturation, so the saturation costs no stage of its own.

    The slope and intercept of each segment sit side by side in one
    :class:`~amaranth.lib.memory.Memory` with a synchronous read port (rather
    than a case statement), so that Vivado maps it to block RAM, distributed
    RAM or logic by its size. Its depth is padded to a power of two so that
    every address is defined; the entries read for codes beyond the range are
    never used.

    The folded magnitude of the most negative code, ``2**(bits-1)``, fits the
    ``bits``-wide unsigned ``ax``; a range of exactly ``2**(bits-1)`` codes
    therefore works, and that code reads the saturation value.

    Latency is 8 cycles; throughput is one result per cycle. There is no
    backpressure: both ports are always ready and ``valid`` only travels down
    the pipeline.

    Parameters
    ----------
    table : PWLTable
        The table to implement; its formats give the port shapes.

    Members
    -------
    i : ``In(stream.Signature(table.in_fmt.shape(), always_ready=True))``
        Input codes.
    o : ``Out(stream.Signature(table.out_fmt.shape(), always_ready=True))``
        Output codes, ``latency`` cycles after their inputs.
    """

    _LATENCY = 8

    def __init__(self, *, table: PWLTable):
        if not isinstance(table, PWLTable):
            raise TypeError(f"table must be a PWLTable, not {table!r}")
        self._table = table
        super().__init__({
            "i": In(stream.Signature(table.in_fmt.shape(), always_ready=True)),
            "o": Out(stream.Signature(table.out_fmt.shape(), always_ready=True)),
        })

    @property
    def table(self) -> PWLTable:
        """The implemented table."""
        return self._table

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output valid."""
        return self._LATENCY

    def elaborate(self, platform):
        t = self._table
        fmt = t.out_fmt
        k = t.one if t.fn == "sigmoid" else 0
        m = Module()

        x = self.i.payload
        neg = delay(m, x < 0, 1, name="neg")
        ax = delay(m, abs(x), 1, name="ax")

        coef = data.StructLayout({"slope": t.slope_fmt.shape(), "intercept": fmt.shape()})
        m.submodules.rom = rom = Memory(
            shape=coef, depth=1 << ceil_log2(t.segments),
            init=[{"slope": int(a), "intercept": int(b)} for a, b in zip(t.slope, t.intercept)])
        read = rom.read_port(domain="sync")
        m.d.comb += read.addr.eq(ax[t.seg_shift:])
        dx = delay(m, ax[:t.seg_shift], 1, name="dx")
        inside = delay(m, ax < t.range_codes, 1, name="inside")

        slope = delay(m, read.data.slope, 1, name="slope")
        dx = delay(m, dx, 1, name="dx")
        product = delay(m, slope * dx, 1, name="product")
        rounded = delay(m, round_shift(product, t.slope_shift, t.rounding), 1, name="rounded")
        yp = delay(m, rounded + delay(m, read.data.intercept, 3, name="intercept"), 1, name="yp")

        # The flags wait for yp.
        inside = delay(m, inside, 4, name="inside")
        neg = delay(m, neg, 5, name="neg")

        def clamped(lo, hi):
            return Mux(inside, _clamp(yp, lo, hi), min(max(t.sat_value, lo), hi))

        yc = Signal(unsigned(bits_for(t.one)))
        m.d.sync += yc.eq(Mux(neg,
                              clamped(max(0, k - fmt.max_int), min(t.one, k - fmt.min_int)),
                              clamped(max(0, fmt.min_int), min(t.one, fmt.max_int))))

        neg = delay(m, neg, 1, name="neg")
        m.d.sync += self.o.payload.eq(Mux(neg, k - yc, yc))
        m.d.comb += self.o.valid.eq(delay(m, self.i.valid, self._LATENCY, name="valid"))
        return m


def _clamp(value, lo: int, hi: int):
    return Mux(value < lo, lo, Mux(value > hi, hi, value))


def activation_unit(table) -> wiring.Component:
    """Build the activation unit for ``table``, chosen by the table's method.

    Every unit follows the interface contract in the module docstring.
    """
    if isinstance(table, PWLTable):
        return PWLActivation(table=table)
    raise TypeError(f"no activation unit implements {type(table).__name__}")
