"""From a layer's pre-activations to its ``h``: whole hidden units gathered, and the cell-update lanes with
their cell-state memories."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import values_layout
from .cell import CellUpdate
from .fixed import counter_shape, delay_taps, equals
from ..model.design import Design, LayerPlan
from ..numerics.cell import CellMath

__all__ = ["GATES", "cell_slots", "units_layout", "GateGather", "CellLanes"]

#: A hidden unit's four gates, in PyTorch's order (its rows ``j``, ``H + j``, ``2H + j``, ``3H + j`` of ``W``).
GATES = ("i", "f", "g", "o")


def cell_slots(plan: LayerPlan) -> int:
    """Units per cell lane, each with its entry in the lane's cell-state memory: ``ceil(H / lanes)``."""
    return -(-plan.hidden // plan.units_per_pass)


def units_layout(gates: data.StructLayout, lanes: int, slots: int) -> data.StructLayout:
    """The units of a pass on their way to the cell lanes: lane ``u``'s gates; with several lanes, ``ok``
    (bit ``u``: lane ``u`` has a unit; lane 0 always has); with several units a lane, ``slot``, their
    entry in the lanes' cell-state memories."""
    return data.StructLayout({"gates": data.ArrayLayout(gates, lanes), **({"ok": lanes} if lanes > 1 else {}),
                              **({"slot": counter_shape(slots)} if slots > 1 else {})})


class GateGather(wiring.Component):
    """The matrix unit's pre-activations regrouped into whole hidden units, the four gates of each.

    With ``rows >= 4`` row lanes, a pass holds units ``pass x lanes + u``
    (rows ``4u .. 4u + 3``), unit ``u`` of the pass for cell lane ``u``,
    marked ``ok`` where the unit exists (the last pass may have padding).
    With fewer rows a unit takes ``4 / rows`` passes: its earlier gates wait
    in a register for the pass with its last ones, and it goes to the one
    lane then. ``slot`` is the units' entry in the cell-state memories: the
    pass, or the unit.

    Latency 0: no register between the matrix unit's output register and
    the cell lanes' gate units. Throughput: a pass per cycle; there is no
    backpressure.

    Parameters
    ----------
    plan : LayerPlan
        The layer.
    gates : data.StructLayout
        One unit's gates, fields ``i``, ``f``, ``g``, ``o`` (a :class:`CellUpdate`'s ``i`` payload).
    results : stream.Signature
        The matrix unit's result stream (:class:`SparseMatVec`'s ``o``): ``pass`` and ``z``.

    Members
    -------
    i : In(results)
    o : Out(stream.Signature(units_layout(gates, plan.units_per_pass, cell_slots(plan)), always_ready=True))
    """

    def __init__(self, *, plan: LayerPlan, gates: data.StructLayout, results: stream.Signature):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        if not isinstance(gates, data.StructLayout) or tuple(name for name, _ in gates) != GATES:
            raise TypeError(f"gates must be a StructLayout with fields {GATES}, not {gates!r}")
        if not isinstance(results, stream.Signature):
            raise TypeError(f"results must be a stream.Signature, not {results!r}")
        self._plan, self._slots = plan, cell_slots(plan)
        units = units_layout(gates, plan.units_per_pass, self._slots)
        super().__init__({"i": In(results), "o": Out(stream.Signature(units, always_ready=True))})

    @property
    def latency(self) -> int:
        """Cycles from a unit's last pass on ``i`` to the unit on ``o``."""
        return 0

    def elaborate(self, platform):
        m = Module()
        p, valid, units = self._plan, self.i.valid, self.o.payload
        z, pas = self.i.payload.z, self.i.payload["pass"]
        if p.rows >= 4:
            slot, lanes = pas, p.units_per_pass
            for u in range(lanes):
                # Unit pas * lanes + u exists: a compare with a constant, not a multiply
                # (which synthesis maps to a DSP48E1 in front of the compare); a constant
                # where the compare would be (lint flags those).
                bound = -(-(p.hidden - u) // lanes)
                exists = Const(0) if bound <= 0 else Const(1) if bound >= 1 << len(pas) else pas < bound
                m.d.comb += [units.gates[u][name].eq(z[4 * u + n]) for n, name in enumerate(GATES)]
                if u == 0:
                    m.d.comb += self.o.valid.eq(valid & exists)
                if lanes > 1:
                    m.d.comb += units.ok[u].eq(exists)
        else:
            per_unit = 4 // p.rows
            held = Signal(data.ArrayLayout(z.shape().elem_shape, 4 - p.rows))
            sub = pas[:per_unit.bit_length() - 1]
            slot = pas[per_unit.bit_length() - 1:]
            with m.If(valid):
                for s in range(per_unit - 1):
                    with m.If(equals(sub, s)):
                        m.d.sync += [held[s * p.rows + r].eq(z[r]) for r in range(p.rows)]
            m.d.comb += self.o.valid.eq(valid & (sub == per_unit - 1))
            m.d.comb += [units.gates[0][name].eq(held[n] if n < 4 - p.rows else z[n - (4 - p.rows)])
                         for n, name in enumerate(GATES)]
        if self._slots > 1:
            m.d.comb += units.slot.eq(slot)
        return m


class CellLanes(wiring.Component):
    """The cell-update lanes of a layer, a :class:`CellUpdate` each, with each lane's cell-state memory.

    Lane ``u`` updates the units of ``i.gates[u]`` (where ``ok[u]``); a unit's
    ``c_{t-1}`` is read from the lane's memory at ``slot`` so that it
    reaches the cell ``c_lag`` cycles after the gates, through a register
    (the multiplier's operand register), and is zero while ``first`` (the
    running step starts a sequence); its ``c_t`` goes back to the same entry
    as it leaves the cell. ``o`` carries the lanes' ``h`` together, valid
    with lane 0's (which has a unit on every pass), ``ok`` marking the lanes
    that had one.

    With ``plan.interleave`` > 1 sequences taking turns, each lane's memory
    holds every sequence's cell states (entry ``slot`` of sequence ``seq``),
    and ``first`` and ``seq`` come with each pass's units on ``i`` (the
    steps of several sequences may be in the lanes at once).

    Latency: :attr:`latency` cycles, the cell update's. Throughput: a pass
    per cycle; there is no backpressure.

    Parameters
    ----------
    design : Design
        Activation tables and the cell's formats.
    plan : LayerPlan
        The layer: its units and cell lanes (``plan.units_per_pass``).

    Members
    -------
    i : In(stream.Signature(units_layout(gates, lanes, cell_slots(plan)), always_ready=True))
    first : In(1)
    seq : In(slot_bits - 1)
        Only with ``plan.interleave`` > 1: the sequence of the units on ``i``.
    o : Out(stream.Signature(values_layout(activation, lanes), always_ready=True))
    """

    def __init__(self, *, design: Design, plan: LayerPlan):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {design!r}")
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        self._math = design.cell
        self._slots = cell_slots(plan)
        self._interleave = plan.interleave
        self._seq_bits = plan.slot_bits - 1
        self._cells = [CellUpdate(tables=design.tables, math=design.cell) for _ in range(plan.units_per_pass)]
        super().__init__({
            "i": In(stream.Signature(units_layout(self.gates, len(self._cells), self._slots), always_ready=True)),
            "first": In(1),
            **({"seq": In(self._seq_bits)} if self._interleave > 1 else {}),
            "o": Out(stream.Signature(values_layout(design.cell.activation.shape(), len(self._cells)),
                                      always_ready=True)),
        })

    @property
    def math(self) -> CellMath:
        """The formats and alignment of the cell update (``design.cell``)."""
        return self._math

    @property
    def slots(self) -> int:
        """Entries of each lane's cell-state memory (:func:`cell_slots`)."""
        return self._slots

    @property
    def cells(self) -> tuple[CellUpdate, ...]:
        """The lanes' cell updates, one per lane (``plan.units_per_pass``)."""
        return tuple(self._cells)

    @property
    def gates(self) -> data.StructLayout:
        """One unit's gates: a :class:`CellUpdate`'s input."""
        return self._cells[0].i.payload.shape()

    @property
    def latency(self) -> int:
        """Cycles from a unit's gates on ``i`` to its ``h`` on ``o``."""
        return self._cells[0].latency

    def elaborate(self, platform):
        m = Module()
        cell_shape = self._math.cell.shape()
        c_lag, first = self._cells[0].c_lag, self.first
        # The memory entry of a pass's units: its slot, and with interleaved sequences their sequence.
        # (A one-entry memory has no address to carry along.)
        entry = self.i.payload.slot if self._slots > 1 else None
        if self._interleave > 1:
            entry = self.seq if entry is None else Cat(entry, self.seq)
            first = delay_taps(m, self.first, [c_lag - 1], name="first")[0]   # meets the memory's read data
        if entry is not None:
            read_at, write_at = delay_taps(m, entry, [c_lag - 2, self.latency], name="slot")
        depth = 1 << len(entry) if self._interleave > 1 else self._slots
        units, several = self.i.payload, len(self._cells) > 1
        for u, cell in enumerate(self._cells):
            m.submodules[f"cell{u}"] = cell
            m.d.comb += [cell.i.valid.eq(self.i.valid & units.ok[u] if several else self.i.valid),
                         cell.i.payload.eq(units.gates[u])]
            m.submodules[f"cmem{u}"] = cmem = memory.Memory(shape=cell_shape, depth=depth, init=[])
            rd, wp = cmem.read_port(), cmem.write_port()
            c_prev = Signal(cell_shape, name=f"c_prev{u}")
            m.d.sync += c_prev.eq(Mux(first, 0, rd.data))
            m.d.comb += [cell.c_prev.eq(c_prev), wp.data.eq(cell.o.payload.c), wp.en.eq(cell.o.valid),
                         self.o.payload.data[u].eq(cell.o.payload.h)]
            if entry is not None:
                m.d.comb += [rd.addr.eq(read_at), wp.addr.eq(write_at)]
            if several:
                m.d.comb += self.o.payload.ok[u].eq(cell.o.valid)
        m.d.comb += self.o.valid.eq(self._cells[0].o.valid)
        return m
