"""Activation units: pipelined hardware for the tables of :mod:`lstm_hw.numerics.activations`.

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

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .fixed import delay, round_shift
from ..numerics.activations import PolyTable
from ..numerics.fixed import signed_bits

__all__ = ["PolyActivation", "activation_unit"]

# Input codes evaluated at once when sizing the Horner registers.
_CHUNK = 1 << 20


class PolyActivation(wiring.Component):
    """Piecewise-polynomial sigmoid or tanh, bit-exact with :meth:`PolyTable.eval`.

    One unit serves every method: ``lut`` (degree 0, no multiplier), ``pwl``
    (1), ``quadratic`` (2) and ``taylor`` (its order, 1 to 3), folded or not.

    Pipeline, for degree ``d`` (one register after each stage; "depth" is the
    longest combinational path into that register)::

        1        u = |x| (folded) or x + range (unfolded);   one negation or adder;
                 neg, inside, below                          constant compares
        2        ROM[u >> seg_shift] (synchronous),          address is a wire;
                 t = (u mod 2**seg_shift) - centre           one constant subtractor
        per Horner step j = d .. 1 (three stages, a DSP48E1 A/B, M, P pipeline):
          +1     operands acc (coefs[d] first), t            none (A/B registers)
          +2     product = acc * t                           multiplier (M register)
          +3     acc = round_shift(product, shifts[j-1])     one adder (P register): the
                       + coefs[j-1]                          coefficient is pre-shifted and
                                                             the rounding constant sits in
                                                             its zero low bits
        3d+3     yc = inside ? clamp(round_shift(acc, out_shift)) : tail value
                                                             rounding adder beside constant
                                                             compares on acc, then muxes
        3d+4     y = neg ? k - yc : yc                       one subtractor and a mux

    ``k`` is ``one`` for sigmoid (``sigmoid(-x) = 1 - sigmoid(x)``) and 0 for
    tanh; unfolded, ``neg`` is always low. Stage ``3d+3`` clamps to
    ``[lo, one]`` intersected with the codes whose signed-restored value fits
    ``out_fmt``, which is the golden model's clamp followed by its final
    saturation, so the saturation costs no stage of its own. The compares are
    made on ``acc`` against thresholds moved through ``round_shift``, which is
    monotone, so they run in parallel with the rounding adder.

    The coefficients of each segment sit side by side in one
    :class:`~amaranth.lib.memory.Memory` with a synchronous read port, so that
    Vivado maps it to block RAM, distributed RAM or logic by its size; its
    depth is padded to a power of two, at least 2 (no zero-width address).
    Every product and accumulator register is exactly as wide as the extreme
    values it takes over the input codes inside the range
    (:meth:`PolyTable.horner`); codes outside the range use the tail value,
    whatever the datapath computed for them.

    Latency is ``3 * degree + 4`` cycles (4 lut, 7 pwl, 10 quadratic, 7/10/13
    taylor of order 1/2/3); throughput is one result per cycle. There is no
    backpressure: both ports are always ready and ``valid`` only travels down
    the pipeline.

    Parameters
    ----------
    table : PolyTable
        The table to implement; its formats give the port shapes.

    Members
    -------
    i : ``In(stream.Signature(table.in_fmt.shape(), always_ready=True))``
        Input codes.
    o : ``Out(stream.Signature(table.out_fmt.shape(), always_ready=True))``
        Output codes, ``latency`` cycles after their inputs.
    """

    def __init__(self, *, table: PolyTable):
        if not isinstance(table, PolyTable):
            raise TypeError(f"table must be a PolyTable, not {table!r}")
        self._table = table
        super().__init__({
            "i": In(stream.Signature(table.in_fmt.shape(), always_ready=True)),
            "o": Out(stream.Signature(table.out_fmt.shape(), always_ready=True)),
        })

    @property
    def table(self) -> PolyTable:
        """The implemented table."""
        return self._table

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output valid."""
        return 3 * self._table.degree + 4

    def elaborate(self, platform):
        t = self._table
        fmt, d = t.out_fmt, t.degree
        k = t.mirror
        steps = horner_ranges(t)
        m = Module()

        # Stage 1: fold (or offset) and classify.
        x = self.i.payload
        abits = ceil_log2(t.segments)
        width = t.seg_shift + abits
        # u holds bits [lo, width) of the folded (or offset) input: the segment address and,
        # for a polynomial, the offset dx within the segment. A larger |x| takes the tail
        # (`inside` is 0), so no bit above `width` is kept.
        lo = 0 if d else t.seg_shift
        u = Signal(unsigned(width - lo), name="u") if width > lo else None
        if t.fold:
            if u is not None:
                m.d.sync += u.eq(abs(x)[lo:])
            neg = delay(m, x < 0, 1, name="neg")
            inside = delay(m, (x > -t.range_codes) & (x < t.range_codes), 1, name="inside")
            below = None
        else:
            if u is not None:
                m.d.sync += u.eq((x + t.range_codes)[lo:])
            neg = None
            below = delay(m, x < -t.range_codes, 1, name="below")
            inside = delay(m, (x >= -t.range_codes) & (x < t.range_codes), 1, name="inside")

        # Stage 2: coefficient read; t = dx - centre.
        columns = {f"c{j}": signed(w) for j, w in enumerate(t.coef_widths)}
        m.submodules.rom = rom = Memory(
            shape=data.StructLayout(columns), depth=max(2, 1 << abits),
            init=[{f"c{j}": int(c) for j, c in enumerate(row)} for row in t.coefs])
        read = rom.read_port(domain="sync")
        m.d.comb += read.addr.eq(u[t.seg_shift - lo:] if abits else 0)
        if d:
            tv = Signal(signed(signed_bits(-t.centre, (1 << t.seg_shift) - 1 - t.centre)), name="t")
            dx = u[:t.seg_shift] if t.seg_shift else Const(0, 1)
            m.d.sync += tv.eq(dx - t.centre)

        # Horner steps: operands, product, round_shift + add.
        acc = read.data[f"c{d}"]
        for n, (j, (p_lo, p_hi, a_lo, a_hi)) in enumerate(zip(range(d, 0, -1), steps)):
            a = delay(m, acc, 1, name=f"a{j}")
            b = delay(m, tv, 3 * n + 1, name=f"t{j}")
            product = Signal(signed(signed_bits(p_lo, p_hi)), name=f"product{j}")
            m.d.sync += product.eq(a * b)
            coef = delay(m, read.data[f"c{j - 1}"], 3 * n + 1, name=f"c{j - 1}")
            acc = Signal(signed(signed_bits(a_lo, a_hi)), name=f"acc{j}")
            m.d.sync += acc.eq(_round_shift_add(m, product, coef, t.shifts[j - 1], t.rounding, name=f"addend{j - 1}"))

        # Stage 3d+3: final rounding, tail value, clamp (with the output saturation folded in).
        inside = delay(m, inside, 3 * d + 1, name="inside")
        rounded = round_shift(acc, t.out_shift, t.rounding)

        def clamped(lo, hi):
            below_lo, above_hi = _rounded_bounds(lo, hi, t.out_shift, t.rounding)
            return Mux(acc < below_lo, lo, Mux(acc > above_hi, hi, rounded))

        def bounds(sign_restored):
            if sign_restored:
                return max(t.lo, k - fmt.max_int), min(t.one, k - fmt.min_int)
            return max(t.lo, fmt.min_int), min(t.one, fmt.max_int)

        def tail(lo, hi):
            hi_value = min(max(t.sat_hi, lo), hi)
            if below is None:
                return hi_value
            return Mux(delay(m, below, 3 * d + 1, name="below"), min(max(t.sat_lo, lo), hi), hi_value)

        limits = [bounds(False)] + ([bounds(True)] if t.fold else [])
        yc = Signal(signed(signed_bits(min(lo for lo, _ in limits), max(hi for _, hi in limits))), name="yc")
        if t.fold:
            neg = delay(m, neg, 3 * d + 1, name="neg")
            m.d.sync += yc.eq(Mux(neg,
                                  Mux(inside, clamped(*bounds(True)), tail(*bounds(True))),
                                  Mux(inside, clamped(*bounds(False)), tail(*bounds(False)))))
        else:
            m.d.sync += yc.eq(Mux(inside, clamped(*bounds(False)), tail(*bounds(False))))

        # Stage 3d+4: sign restore.
        if t.fold:
            neg = delay(m, neg, 1, name="neg")
            m.d.sync += self.o.payload.eq(Mux(neg, k - yc, yc))
        else:
            m.d.sync += self.o.payload.eq(yc)
        m.d.comb += self.o.valid.eq(delay(m, self.i.valid, self.latency, name="valid"))
        return m


def horner_ranges(table: PolyTable) -> list[tuple[int, int, int, int]]:
    """``(product_min, product_max, acc_min, acc_max)`` per Horner step, over every code inside the range."""
    fmt = table.in_fmt
    if table.fold:   # x = -u reaches every magnitude u, including that of the most negative code
        codes = -np.arange(min(table.span, -fmt.min_int + 1), dtype=np.int64)
    else:
        codes = np.arange(max(-table.range_codes, fmt.min_int), min(table.range_codes, fmt.max_int + 1),
                          dtype=np.int64)
    out = [[0, 0, 0, 0] for _ in range(table.degree)]
    for start in range(0, codes.size, _CHUNK):
        _, stages = table.horner(codes[start:start + _CHUNK])
        for n, (product, acc) in enumerate(stages):
            cur = [int(product.min()), int(product.max()), int(acc.min()), int(acc.max())]
            if start == 0:
                out[n] = cur
            else:
                out[n] = [min(out[n][0], cur[0]), max(out[n][1], cur[1]),
                          min(out[n][2], cur[2]), max(out[n][3], cur[3])]
    return [tuple(step) for step in out]


def _round_shift_add(m, product, coef, shift: int, mode: str, *, name: str):
    """``round_shift(product, shift, mode) + coef`` with one adder, the addend registered.

    For a positive shift, ``coef << shift`` has ``shift`` zero low bits, which
    hold the rounding constant; ``(product + addend) >> shift`` is then exact.
    ``coef`` must arrive one cycle before ``product``.
    """
    if shift <= 0:
        return round_shift(product, shift, mode) + delay(m, coef, 1, name=name)
    half = 1 << (shift - 1) if mode == "half_up" else 0
    addend = delay(m, Cat(Const(half, unsigned(shift)), coef).as_signed(), 1, name=name)
    return (product + addend) >> shift


def _rounded_bounds(lo: int, hi: int, shift: int, mode: str) -> tuple[int, int]:
    """``(a_lo, a_hi)`` with ``round_shift(a) < lo`` iff ``a < a_lo`` and ``round_shift(a) > hi`` iff ``a > a_hi``."""
    if shift <= 0:
        return -((-lo) >> -shift), hi >> -shift
    half = 1 << (shift - 1) if mode == "half_up" else 0
    return (lo << shift) - half, ((hi + 1) << shift) - half - 1


def activation_unit(table) -> wiring.Component:
    """Build the activation unit for ``table``.

    Every unit follows the interface contract in the module docstring.
    """
    if isinstance(table, PolyTable):
        return PolyActivation(table=table)
    raise TypeError(f"no activation unit implements {type(table).__name__}")
