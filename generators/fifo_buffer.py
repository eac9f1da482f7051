"""A synchronous FIFO with a registered output whose status flags are registers too."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count

__all__ = ["BufferedFIFO"]


class BufferedFIFO(wiring.Component):
    """A FIFO that behaves cycle for cycle as Amaranth's ``SyncFIFOBuffered``, its flags registered.

    ``depth - 1`` entries in a memory with a synchronous read port, and an
    output register in front of them, as in ``SyncFIFOBuffered``. Its
    memory's "empty" and "full" are registers here, updated with the level
    (their compares on the level lead into them, not into the level's
    update): no compare of a wide level lies on the path from the level back
    into it, which on a deep FIFO takes more logic levels than the timing
    goal.

    Latency: :attr:`latency` cycles from a write into the empty FIFO to its
    data on ``r``. Throughput: a write and a read per cycle.

    Parameters
    ----------
    shape : ShapeLike
        Shape of an entry.
    depth : int
        Entries it holds, at least 2.

    Members
    -------
    w : In(stream.Signature(shape))
        Writes; ``ready`` while the FIFO is not full.
    r : Out(stream.Signature(shape))
        The entry at the head, from a register.
    """

    def __init__(self, *, shape, depth: int):
        check_count("depth", depth, least=2)
        self._shape, self._depth = shape, depth
        super().__init__({"w": In(stream.Signature(shape)), "r": Out(stream.Signature(shape))})

    @property
    def shape(self):
        """Shape of an entry (``shape``), as given."""
        return self._shape

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def latency(self) -> int:
        """Cycles from a write into the empty FIFO to its entry on ``r``: the memory's write and its
        synchronous read into the output register."""
        return 2

    def elaborate(self, platform):
        m = Module()
        inner = self._depth - 1                       # entries in the memory
        level = Signal(range(inner + 1))
        empty, full = Signal(init=1), Signal()
        m.submodules.storage = storage = memory.Memory(shape=self._shape, depth=inner, init=[])
        w_port, r_port = storage.write_port(), storage.read_port()
        produce, consume = Signal(range(inner)), Signal(range(inner))

        write = self.w.valid & self.w.ready
        read = ~empty & (~self.r.valid | self.r.ready)  # into the output register
        m.d.comb += [
            self.w.ready.eq(~full),
            w_port.addr.eq(produce), w_port.data.eq(self.w.payload), w_port.en.eq(write),
            r_port.addr.eq(consume), r_port.en.eq(read), self.r.payload.eq(r_port.data),
        ]
        with m.If(write):
            m.d.sync += produce.eq(_next(produce, inner))
        with m.If(read):
            m.d.sync += consume.eq(_next(consume, inner))
        with m.If(write & ~read):
            m.d.sync += [level.eq(level + 1), empty.eq(0), full.eq(level == inner - 1)]
        with m.If(read & ~write):
            m.d.sync += [level.eq(level - 1), full.eq(0), empty.eq(level == 1)]
        with m.If(read):
            m.d.sync += self.r.valid.eq(1)
        with m.Elif(self.r.ready):
            m.d.sync += self.r.valid.eq(0)
        return m


def _next(pointer, depth: int):
    """``pointer + 1``, wrapping after ``depth - 1`` (a plain increment where the width wraps it)."""
    return pointer + 1 if depth == 1 << len(pointer) else Mux(pointer == depth - 1, 0, pointer + 1)
