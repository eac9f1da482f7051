"""The banked, double-buffered vector store of :class:`~lstm_hw.generators.mvm.SparseMatVec`, and how to fill it."""

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count, counter_shape, delay, delay_taps, equals
from ..model.design import LayerPlan, slot_bits

__all__ = ["vector_write_layout", "vector_address", "vector_cursor", "sequence_slot", "last_beat_lanes",
           "group_slot",
           "write_members", "write_ports", "VectorStore"]


def vector_write_layout(plan: LayerPlan, elem_shape) -> data.StructLayout:
    """One write into the banked vector store: ``buf`` (its slot: the ping-pong half and, with interleaved
    sequences, the sequence; :attr:`~lstm_hw.model.design.LayerPlan.slot_bits`), ``bank``, ``addr``, ``data``."""
    return data.StructLayout({
        "buf": plan.slot_bits,
        "bank": counter_shape(plan.banks),
        "addr": unsigned(plan.index_bits),
        "data": elem_shape,
    })


def vector_address(plan: LayerPlan, column: int) -> tuple[int, int]:
    """``(bank, entry)`` of column ``column`` of ``[x; h]`` in the banked vector store.

    ``x_i`` is entry ``i // banks`` of bank ``i % banks``; ``h_j`` is entry
    ``x_width + j // banks`` of bank ``j % banks`` (see :mod:`lstm_hw.model.design`).
    """
    if column < plan.input_size:
        return column % plan.banks, column // plan.banks
    j = column - plan.input_size
    return j % plan.banks, plan.x_width + j // plan.banks


def vector_cursor(m: Module, advance, *, length: int, plan: LayerPlan, lanes: int = 1):
    """Where the next beat of a ``length``-element vector goes in the banked vector store, ``lanes`` per beat.

    Elements come in order, ``lanes`` per beat (the last beat of the vector
    may be partial): element ``j`` goes to bank ``j % banks``, address
    ``j // banks`` (the interleaved banks of :mod:`lstm_hw.numerics.sparsity`) of buffer
    half ``buf``, and ``buf`` flips after the last beat. The cursor moves on every cycle with
    ``advance`` high. Returns ``(buf, bank, addr, last)`` for the beat's first
    element (see :func:`group_slot` for the others); ``last`` is high while the
    cursor is on the vector's last beat. ``lanes`` must not exceed ``banks``.
    """
    assert 1 <= lanes <= plan.banks
    beats = -(-length // lanes)
    buf = Signal()
    e = Signal(counter_shape(beats))
    bank = Signal(counter_shape(plan.banks))
    addr = Signal(counter_shape(plan.bank_width))
    last = e == beats - 1
    with m.If(advance):
        with m.If(last):
            m.d.sync += [e.eq(0), bank.eq(0), addr.eq(0), buf.eq(~buf)]
        with m.Else():
            m.d.sync += e.eq(e + 1)
            # (With lanes = banks every move wraps; a constant, not a ">= 0" compare lint flags.)
            with m.If(Const(1) if lanes == plan.banks else bank >= plan.banks - lanes):
                m.d.sync += [bank.eq(bank + lanes - plan.banks), addr.eq(addr + 1)]
            with m.Else():
                m.d.sync += bank.eq(bank + lanes)
    return buf, bank, addr, last


def sequence_slot(m: Module, advance, interleave: int):
    """The vector-store slot of the next vector with ``interleave`` > 1 sequences taking turns: ``Cat(half,
    seq)``, vector ``v`` being sequence ``v mod interleave``'s, on half ``(v // interleave) mod 2``. It moves
    on to the next vector's on every cycle with ``advance`` high."""
    seq, half = Signal(slot_bits(interleave) - 1, name="seq"), Signal(name="half")
    last = equals(seq, interleave - 1)
    with m.If(advance):
        m.d.sync += seq.eq(Mux(last, 0, seq + 1))
        with m.If(last):
            m.d.sync += half.eq(~half)
    return Cat(half, seq)


def last_beat_lanes(length: int, lanes: int) -> int:
    """Elements in the last beat of a ``length``-element vector sent ``lanes`` per beat (:func:`vector_cursor`)."""
    return length - (-(-length // lanes) - 1) * lanes


def group_slot(plan: LayerPlan, bank, addr, offset: int):
    """``(bank, addr)`` of the element ``offset`` columns after the one at ``(bank, addr)``, ``offset < banks``."""
    if offset == 0:
        return bank, addr
    wrap = bank >= plan.banks - offset
    return Mux(wrap, bank + offset - plan.banks, bank + offset), Mux(wrap, addr + 1, addr)


def write_members(plan: LayerPlan, elem_shape, group_writes: int) -> dict:
    """The signature members of a vector store's write ports: ``wr`` and, if ``group_writes``, ``wr_group``."""
    write = stream.Signature(vector_write_layout(plan, elem_shape), always_ready=True)
    return {"wr": In(write), **({"wr_group": In(write).array(group_writes)} if group_writes else {})}


def write_ports(component) -> list:
    """``wr`` and the ``wr_group`` ports of ``component`` (:func:`write_members`), in that order."""
    return [component.wr, *getattr(component, "wr_group", [])]


class VectorStore(wiring.Component):
    """The vector ``[x; h]`` in banks, a copy of each bank per row lane, read at each PE's ROM index.

    PE ``(lane, bank)`` has its own copy of its bank (a memory of ``2 x
    2**index_bits`` elements: the two halves ``buf`` of a double buffer, and
    with ``plan.interleave`` sequences a pair of halves for each, slot
    ``buf``), so no two PEs ever contend for a port. Each cycle it reads the element at
    its index ``idx`` in half ``buf``. The write ports are registered, so the
    writer's address arithmetic and the bank decode are a cycle apart; a
    write goes to every copy of its bank. A bank at chain position ``j``
    (``positions``) reads ``j`` cycles behind position 0, so its writes land
    ``j`` cycles late too: every position sees the store as position 0 does.

    Latency: an element comes :attr:`latency` cycle after its ``idx``; a write
    is seen by the reads :attr:`write_latency` cycles after it is taken and later
    (position ``j``'s from ``j`` cycles later). Throughput: a read per PE and
    a write per port every cycle. Writes are always accepted.

    Parameters
    ----------
    plan : LayerPlan
        The scheduled layer: ``rows``, ``banks`` and ``index_bits``.
    element : ShapeLike
        Shape of an element.
    group_writes : int
        Extra write ports (``wr_group``), for a group of elements in different banks.
    positions : list of int
        Each bank's chain position.

    Members
    -------
    wr : In(stream.Signature(vector_write_layout(plan, element), always_ready=True))
        Element writes (:func:`vector_address`).
    wr_group : In(stream.Signature(vector_write_layout(plan, element), always_ready=True)).array(group_writes)
        Further writes in the same cycle (present when ``group_writes > 0``). Every
        memory has one write port: the valid writes of a cycle, ``wr`` included,
        must all go to different banks.
    buf : In(1)
        The half position 0 reads; the other positions' follow.
    idx : In(ArrayLayout(unsigned(index_bits), rows * banks))
        Each PE's index into its bank, PE ``(lane, bank)``'s at ``lane * banks + bank``.
    v : Out(ArrayLayout(element, rows * banks))
        Each PE's element.
    """

    def __init__(self, *, plan: LayerPlan, element, group_writes: int, positions: list[int]):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        if check_count("group_writes", group_writes, 0) >= plan.banks:
            raise ValueError(f"group_writes must be below banks = {plan.banks}, got {group_writes}")
        if len(positions) != plan.banks:
            raise ValueError(f"positions must give each of the {plan.banks} banks a position, got {positions!r}")
        for j in positions:
            check_count("positions", j, 0)
        self._plan, self._element, self._positions = plan, Shape.cast(element), list(positions)
        super().__init__({
            **write_members(plan, element, group_writes),
            "buf": In(plan.slot_bits),
            "idx": In(data.ArrayLayout(unsigned(plan.index_bits), plan.rows * plan.banks)),
            "v": Out(data.ArrayLayout(element, plan.rows * plan.banks)),
        })

    @property
    def plan(self) -> LayerPlan:
        """The scheduled layer (``plan``)."""
        return self._plan

    @property
    def element(self) -> Shape:
        """Shape of an element (``element``)."""
        return self._element

    @property
    def positions(self) -> tuple[int, ...]:
        """Each bank's chain position (``positions``)."""
        return tuple(self._positions)

    @property
    def latency(self) -> int:
        """Cycles from an index to its element: the memory's read register."""
        return 1

    @property
    def write_latency(self) -> int:
        """Cycles from a write to the first read (of position 0) that sees it: the port register, the write."""
        return 2

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        ports = [(delay(m, port.valid, 1, name=f"wr{e}_valid"), delay(m, port.payload, 1, name=f"wr{e}"))
                 for e, port in enumerate(write_ports(self))]
        buf_at = delay_taps(m, self.buf, range(max(self._positions) + 1), name="buf")
        reads = {}                                  # (lane, bank) -> its element
        for bank, j in enumerate(self._positions):
            # The write into the bank's copies (at most one port writes a bank in a cycle).
            en = Signal(name=f"vwr_en_b{bank}")
            waddr = Signal(p.index_bits + p.slot_bits, name=f"vwr_addr_b{bank}")
            wdata = Signal(self._element, name=f"vwr_data_b{bank}")
            if len(ports) == 1:
                (valid, payload), = ports
                with m.If(valid & equals(payload.bank, bank)):
                    m.d.comb += [en.eq(1), waddr.eq(Cat(payload.addr, payload.buf)), wdata.eq(payload.data)]
            else:
                # At most one port writes the bank: an AND-OR of the ports, not a chain of multiplexers
                # a logic level per port.
                hits = [valid & equals(payload.bank, bank) for valid, payload in ports]
                m.d.comb += [
                    en.eq(Cat(*hits).any()),
                    waddr.eq(reduce(operator.or_, (Mux(hit, Cat(payload.addr, payload.buf), 0)
                                                   for hit, (_, payload) in zip(hits, ports)))),
                    wdata.eq(reduce(operator.or_, (Mux(hit, Value.cast(payload.data), 0)
                                                   for hit, (_, payload) in zip(hits, ports)))),
                ]
            en, waddr, wdata = (delay(m, s, j, name=f"{s.name}_p") for s in (en, waddr, wdata))
            for lane in range(p.rows):
                vec = memory.Memory(shape=self._element, depth=1 << (p.index_bits + p.slot_bits), init=[])
                m.submodules[f"vec_l{lane}_b{bank}"] = vec
                wp = vec.write_port()
                rp = vec.read_port()
                m.d.comb += [wp.en.eq(en), wp.addr.eq(waddr), wp.data.eq(wdata),
                             rp.addr.eq(Cat(self.idx[lane * p.banks + bank], buf_at[j]))]
                reads[lane, bank] = rp.data
        # (One assignment: Amaranth checks the drivers of every bit of its target per assignment.)
        m.d.comb += self.v.eq(Cat(reads[lane, bank] for lane in range(p.rows) for bank in range(p.banks)))
        return m
