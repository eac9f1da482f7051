"""The loader: a stage's input vectors, beat by beat, into the free half of its double-buffered vector store."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import STEP_FLAGS, check_flags, element_layout
from ..model.design import LayerPlan
from .mvm import group_slot, last_beat_lanes, vector_cursor, vector_write_layout
from .mvm_vector import sequence_slot

__all__ = ["halves_signature", "VectorLoader"]

def halves_signature(flags: data.StructLayout = STEP_FLAGS) -> wiring.Signature:
    """The two halves of the vector store, as the loader shows them: bit ``n`` of ``full``, half ``n`` holds
    a whole vector; ``flags[n]``, its step's ``flags``. A ``free`` transfer empties half ``payload``."""
    return wiring.Signature({"full": Out(2), "flags": Out(data.ArrayLayout(flags, 2)),
                             "free": In(stream.Signature(1, always_ready=True))})


class VectorLoader(wiring.Component):
    """A stream of vectors into the halves of a :class:`SparseMatVec`'s vector store, one half each, in turn.

    Element ``j`` of a vector (``plan.input_size`` elements, ``lanes`` a
    beat) goes to column ``j`` (:func:`vector_address`) of the half being
    filled (with ``plan.interleave`` sequences taking turns, in the slot of
    the vector's sequence: vector ``v`` is sequence ``v mod interleave``'s,
    on half ``(v // interleave) mod 2``), lane ``e`` of a beat through write
    port ``e``. The half is marked full (``halves``) with the vector's last beat, with that beat's
    flags, until a ``halves.free`` transfer names it; ``i`` waits while the
    half to fill is full, and while ``hold`` is high (another writer has the
    ports this cycle).

    Latency: a beat's writes go out in the cycle it is taken (the store
    registers them); ``halves.full`` rises the cycle after a vector's last
    beat. Throughput: a beat per cycle.

    Parameters
    ----------
    plan : LayerPlan
        The stage's plan: its vector length ``input_size`` and the store's banks.
    shape : ShapeLike
        Shape of an element.
    lanes : int
        Elements per beat, at most ``plan.banks`` (a beat's go into different banks).
    flags : StructLayout
        The step flags the beats carry (:data:`~.beats.STEP_FLAGS` or a subset).

    Members
    -------
    i : In(stream.Signature(element_layout(shape, lanes, flags=flags)))
    wr : Out(stream.Signature(vector_write_layout(plan, shape), always_ready=True)).array(lanes)
    hold : In(1)
    halves : Out(halves_signature(flags))
    """

    def __init__(self, *, plan: LayerPlan, shape, lanes: int, flags: data.StructLayout = STEP_FLAGS):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        if not isinstance(lanes, int) or not 1 <= lanes <= plan.banks:
            raise ValueError(f"lanes must be an integer from 1 to banks = {plan.banks}, got {lanes!r}")
        self._plan, self._lanes = plan, lanes
        super().__init__({
            "i": In(stream.Signature(element_layout(shape, lanes, flags=check_flags(flags)))),
            "wr": Out(stream.Signature(vector_write_layout(plan, shape), always_ready=True)).array(lanes),
            "hold": In(1),
            "halves": Out(halves_signature(flags)),
        })

    def elaborate(self, platform):
        m = Module()
        p, lanes, length = self._plan, self._lanes, self._plan.input_size
        full, flags, free = self.halves.full, self.halves.flags, self.halves.free
        loading = Signal()
        buf, bank, addr, end = vector_cursor(m, loading, length=length, plan=p, lanes=lanes)
        # Interleaved sequences take turns, each with its own pair of halves (the slot's upper bits).
        slot = sequence_slot(m, loading & end, p.interleave) if p.interleave > 1 else buf
        in_last_lanes = last_beat_lanes(length, lanes)
        m.d.comb += [
            self.i.ready.eq(~Mux(buf, full[1], full[0]) & ~self.hold),
            loading.eq(self.i.valid & self.i.ready),
        ]
        for e, port in enumerate(self.wr):
            port_bank, port_addr = group_slot(p, bank, addr, e)
            m.d.comb += [
                port.valid.eq(loading & (Const(1) if e < in_last_lanes else ~end)),
                port.payload.buf.eq(slot),
                port.payload.bank.eq(port_bank),
                port.payload.addr.eq(port_addr),
                port.payload.data.eq(self.i.payload.data[e]),
            ]
        for half in range(2):
            with m.If(loading & end & (buf == half)):
                m.d.sync += [full[half].eq(1), flags[half].eq(self.i.payload.flags)]
            with m.Elif(free.valid & (free.payload == half)):
                m.d.sync += full[half].eq(0)
        return m
