"""The elementwise LSTM cell update in hardware, bit-exact with :func:`lstm_hw.numerics.cell.cell_update`."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .activation import activation_unit
from .fixed import delay, round_shift, saturate
from ..numerics.cell import ActivationTables, CellMath
from ..numerics.fixed import ROUNDING_MODES, rounding_offset

__all__ = ["CellUpdate"]


class CellUpdate(wiring.Component):
    """One LSTM cell update per cycle: ``(z_i, z_f, z_g, z_o, c_prev) -> (c_t, h_t)``.

    The previous cell state comes late, on its own port: ``c_prev`` carries
    the ``c_{t-1}`` of the update that entered on ``i`` exactly :attr:`c_lag`
    cycles earlier, the cycle it is multiplied. Its source (the layer's
    cell-state memory) is then read in the shadow of the gate units, with no
    delay line for it here.

    Pipeline, in cycles after the input (one register after each stage;
    "depth" is the longest combinational path into that register)::

        gate units      sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o) in
                        parallel; a faster unit's output is delayed to the
                        slowest one, whose output register is the multipliers'
                        operand register (a DSP48E1 A/B register), as is
                        c_prev's, which arrives then (c_lag)
        +1  products    f * c_prev + r, i * g       multipliers (f*c's P register adds
                                                    the rounding offset r; M register)
        +2  sum         aligned by fc_shift, ig_shift   one adder (a DSP48E1 post-adder)
        +3  c_t         rounded (bits drop: r is in) and saturated to the cell
                        format                      a LUT test of the top bits, a mux
        cell tanh unit  tanh(c_t); its output register is the operand
                        register of the product below; z_o's gate is delayed to meet it
        +1  product     o * tanh(c_t) + r'          multiplier and post-adder (P register)
        +2  h_t         rounded (bits drop) and saturated to the activation format

    ``c_t`` is delayed to leave in the same beat as ``h_t``. Latency is
    ``gate + 3 + cell_tanh + 2`` cycles (19 with the default configuration's
    activation units); throughput is one update per cycle. (Should the offset
    ``r`` not be a whole multiple of ``2**fc_shift``, which needs
    ``nonlin.frac < 1``, the sum is rounded in a stage of its own.) There is no
    backpressure: both ports are always ready and ``valid`` only travels down
    the pipeline.

    Parameters
    ----------
    tables : ActivationTables
        The gate sigmoid, gate tanh and cell tanh tables. Each output format
        must be ``math.nonlin``; the cell tanh input format must be ``math.cell``.
    math : CellMath
        Formats, alignment and rounding of the update.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout({"i", "f", "g", "o": preact}), always_ready=True))``
        Pre-activations of the four gates, in their tables' input formats.
    c_prev : ``In(cell)``
        The previous cell state of the update that entered on ``i`` :attr:`c_lag` cycles earlier.
    o : ``Out(stream.Signature(data.StructLayout({"c": cell, "h": activation}), always_ready=True))``
        The new cell state and hidden output, ``latency`` cycles after their input.
    """

    # Stages after the gate units up to c_t, and after the cell tanh unit up to h_t.
    _C_STAGES = 3
    _H_STAGES = 2

    def __init__(self, *, tables: ActivationTables, math: CellMath):
        if not isinstance(tables, ActivationTables):
            raise TypeError(f"tables must be an ActivationTables, not {tables!r}")
        if not isinstance(math, CellMath):
            raise TypeError(f"math must be a CellMath, not {math!r}")
        if math.rounding not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {math.rounding!r}; expected one of {ROUNDING_MODES}")
        for name in ("sigmoid", "tanh_gate", "tanh_cell"):
            if getattr(tables, name).out_fmt != math.nonlin:
                raise ValueError(f"the {name} table outputs {getattr(tables, name).out_fmt}, "
                                 f"not the nonlin format {math.nonlin}")
        if tables.tanh_cell.in_fmt != math.cell:
            raise ValueError(f"the tanh_cell table reads {tables.tanh_cell.in_fmt}, "
                             f"not the cell format {math.cell}")
        self._tables = tables
        self._math = math
        self._gates = {"i": activation_unit(tables.sigmoid), "f": activation_unit(tables.sigmoid),
                       "g": activation_unit(tables.tanh_gate), "o": activation_unit(tables.sigmoid)}
        self._tanh = activation_unit(tables.tanh_cell)
        layout = {name: unit.i.payload.shape() for name, unit in self._gates.items()}
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(layout), always_ready=True)),
            "c_prev": In(math.cell.shape()),
            "o": Out(stream.Signature(data.StructLayout({"c": math.cell.shape(), "h": math.activation.shape()}),
                                      always_ready=True)),
        })

    @property
    def tables(self) -> ActivationTables:
        """The activation tables."""
        return self._tables

    @property
    def math(self) -> CellMath:
        """The formats and alignment of the update."""
        return self._math

    @property
    def tanh_cell(self) -> wiring.Component:
        """The cell tanh unit, ``tanh(c_t)`` (:func:`activation_unit` of ``tables.tanh_cell``)."""
        return self._tanh

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output valid."""
        return self._gate_latency + self._c_stages + self._tanh.latency + self._H_STAGES

    @property
    def c_lag(self) -> int:
        """Cycles from an input transfer on ``i`` to its ``c_prev``: the gate units' latency."""
        return self._gate_latency

    @property
    def _c_stages(self) -> int:
        """Stages after the gate units up to c_t: one more when the rounding offset cannot be folded."""
        return self._C_STAGES + (0 if self._offset_folds else 1)

    @property
    def _sum_rounding(self) -> tuple[int, int]:
        """``(shift, offset)``: the fraction bits rounding drops from the sum into c_t, and its rounding constant."""
        cm = self._math
        return cm.c_shift, rounding_offset(cm.c_shift, cm.rounding)

    @property
    def _offset_folds(self) -> bool:
        """The sum's rounding offset is a whole multiple of ``2**fc_shift`` (true when ``nonlin.frac >= 1``)."""
        return self._sum_rounding[1] % (1 << self._math.fc_shift) == 0

    @property
    def _gate_latency(self) -> int:
        return max(unit.latency for unit in self._gates.values())

    def elaborate(self, platform):
        cm = self._math
        m = Module()

        gate, valid = {}, []
        for name, unit in self._gates.items():
            m.submodules[f"{name}_gate"] = unit
            m.d.comb += [unit.i.payload.eq(self.i.payload[name]), unit.i.valid.eq(self.i.valid)]
            gate[name] = delay(m, unit.o.payload, self._gate_latency - unit.latency, name=name)
            valid.append(delay(m, unit.o.valid, self._gate_latency - unit.latency, name=f"{name}_valid"))
        # Every gate's valid, aligned: they are equal, and synthesis merges the copies.
        gates_valid = Cat(*valid).all()

        # The gate units' output registers, and c_prev's source register, are the operand registers.
        f, i, g, c_prev = gate["f"], gate["i"], gate["g"], self.c_prev
        # The rounding offset rides in the f*c product's post-adder (a DSP48E1 C
        # input), so rounding the sum is a plain bit drop: no carry chain.
        # (Exact while shift - fc_shift = nonlin.frac >= 1; otherwise round after the sum.)
        shift, offset = self._sum_rounding
        folded = self._offset_folds
        fc = delay(m, f * c_prev + (offset >> cm.fc_shift if folded else 0), 1, name="fc")
        ig = delay(m, i * g, 1, name="ig")
        total = (fc << cm.fc_shift) + (ig << cm.ig_shift)
        if folded:  # only the bits above the rounding point are registered
            total = delay(m, round_shift(total, shift, "truncate"), 1, name="total")
        else:
            total = delay(m, round_shift(delay(m, total, 1, name="total"), shift, cm.rounding), 1,
                          name="total_rounded")
        c_t = Signal(cm.cell.shape())
        m.d.sync += c_t.eq(saturate(total, cm.cell))

        m.submodules.tanh_cell = tanh = self._tanh
        m.d.comb += [tanh.i.payload.eq(c_t),
                     tanh.i.valid.eq(delay(m, gates_valid, self._c_stages, name="valid_c"))]

        o = delay(m, gate["o"], self._c_stages + tanh.latency, name="o_op")
        t = tanh.o.payload
        # The rounding offset again rides in the post-adder (the DSP48E1 drops its M register).
        # All of o*t + offset is registered: only a full-width register packs into the
        # DSP48E1's P register (the bits below the rounding point are not read).
        oh_p = delay(m, o * t + rounding_offset(cm.h_shift, cm.rounding), 1, name="oh_p")
        h = round_shift(oh_p, cm.h_shift, "truncate")
        m.d.sync += [self.o.payload.h.eq(saturate(h, cm.activation)),
                     self.o.payload.c.eq(delay(m, c_t, tanh.latency + self._H_STAGES - 1, name="c_t"))]
        m.d.comb += self.o.valid.eq(delay(m, tanh.o.valid, self._H_STAGES, name="valid_h"))
        return m
