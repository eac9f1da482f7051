"""The weight loader: an image (:mod:`.image`) from the ``s_axis_weights`` stream into the weight memories,
between transfers of the data stream, never leaving the core to compute on a half-loaded model."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import counter_shape, equals
from .image import HEADER_WORDS, WORD_BITS, LoadableMemory

__all__ = ["PENDING_TRANSFERS", "LOAD_OVERHEAD_CYCLES", "word_layout", "write_layout", "field_data", "WeightLoader"]

#: Transfers the data stream may have in the core at once, counted to know when it has drained: far
#: more than the core holds, so the bound never stalls it.
PENDING_TRANSFERS = 255


#: Cycles a load takes besides its words, with the core idle and the words back to back: from the first
#: word offered, one to hold the data stream and one to see it drained; ``ok`` rises after the last word.
LOAD_OVERHEAD_CYCLES = 2


def word_layout() -> data.StructLayout:
    """An image word as the port carries it, with ``last`` (``s_axis_weights_tlast``)."""
    return data.StructLayout({"data": WORD_BITS, "last": 1})


def write_layout(memories) -> data.StructLayout:
    """The loader's writes: an address, the data bus and a write enable per field of every memory.

    A field of ``n`` words takes its bits from the top ``n`` words of ``data`` (:func:`field_data`).
    """
    memories = tuple(memories)
    return data.StructLayout({
        "addr": counter_shape(max(mem.depth for mem in memories)),
        "data": WORD_BITS * max(w for mem in memories for w in mem.field_words),
        "en": sum(len(mem.fields) for mem in memories),
    })


def field_data(bus, bits: int):
    """A field's data on a write bus (``write.data``): its ``bits`` low bits of the bus's top ``ceil(bits / 32)`` words,
    which hold the field's words as its last one is written."""
    lo = len(bus) - -(-bits // WORD_BITS) * WORD_BITS
    return bus[lo:lo + bits]


class WeightLoader(wiring.Component):
    """Loads images between the data stream's transfers.

    Idle, it lets the data stream run (``run``) while ``ok``. When an image
    word is offered it holds the data stream at the end of the transfer under
    way, waits until every transfer taken has left the output port (``done``),
    then pulses ``clear`` (a stateful design's state to zero), drops ``ok`` and
    takes the image, a word per cycle, to its ``last``. The header must be
    ``header`` word for word and the image exactly as long; then ``ok`` rises
    and the data stream runs on the new contents. A rejected image (a header
    word that differs, ``last`` early or late) is taken to its ``last`` and
    leaves ``ok`` low, so the data stream waits for a good one. Contents are
    written only after a good header.

    ``ok`` is not reset: it starts high (the memories hold the generate-time
    contents) and only a load changes it, so a reset keeps a loaded model; a
    reset during a load leaves it low.

    Latency: a field is written the cycle after its last word; with the core
    idle, ``ok`` rises :data:`LOAD_OVERHEAD_CYCLES` plus the image's words
    cycles after its first word is offered. Throughput: a word per cycle.

    Parameters
    ----------
    memories : sequence of LoadableMemory
        In image order.
    header : sequence of int
        The :data:`~.image.HEADER_WORDS` words every image must start with.

    Members
    -------
    i : In(stream.Signature(word_layout()))
    write : Out(write_layout(memories))
    ok : Out(1)
        ``weights_ok``: the memories hold a complete, accepted image (or the generate-time contents).
    run : Out(1)
        The data stream may take a beat.
    beat : In(stream.Signature({"last": 1}))
        A beat taken by the data stream's input (``valid`` the handshake), with its ``tlast``.
    done : In(1)
        A transfer's last beat left the output port.
    clear : Out(1)
        A load starts: the stream state (a stateful design's ``h`` and ``c``) back to zero.
    """

    def __init__(self, *, memories, header):
        self._memories = tuple(memories)
        if not self._memories or not all(isinstance(mem, LoadableMemory) for mem in self._memories):
            raise TypeError("memories must be a non-empty sequence of LoadableMemory")
        self._header = tuple(int(w) for w in header)
        if len(self._header) != HEADER_WORDS or not all(0 <= w < 1 << WORD_BITS for w in self._header):
            raise ValueError(f"header must be {HEADER_WORDS} words of {WORD_BITS} bits")
        super().__init__({
            "i": In(stream.Signature(word_layout())),
            "write": Out(write_layout(self._memories)),
            "ok": Out(1, init=1),
            "run": Out(1),
            "beat": In(stream.Signature(data.StructLayout({"last": 1}), always_ready=True)),
            "done": In(1),
            "clear": Out(1),
        })

    @property
    def memories(self) -> tuple[LoadableMemory, ...]:
        return self._memories

    @property
    def latency(self) -> int:
        """Cycles from a field's last word to its write."""
        return 1

    def elaborate(self, platform):
        m = Module()
        mems, word = self._memories, self.i.payload.data
        take = self.i.valid & self.i.ready
        ok = Signal(init=1, reset_less=True)     # configuration loads the generate-time contents
        m.d.comb += self.ok.eq(ok)

        # The data stream: transfers taken and not yet out; hold at a transfer's end.
        in_transfer = Signal()
        pending = Signal(range(PENDING_TRANSFERS + 1))
        with m.If(self.beat.valid):
            m.d.sync += in_transfer.eq(~self.beat.payload.last)
        m.d.sync += pending.eq(pending + (self.beat.valid & self.beat.payload.last) - self.done)
        drained = ~in_transfer & equals(pending, 0)

        # The image: header words, then each memory's entries, field by field.
        hdr = Signal(counter_shape(HEADER_WORDS + 1))     # header words taken (HEADER_WORDS: in the contents)
        mem = Signal(counter_shape(len(mems)))
        addr = Signal(self.write.addr.shape())
        sub = Signal(counter_shape(max(x.entry_words for x in mems)))
        bad = Signal()                # a header word differed, or a word came after the last entry
        full = Signal()               # every entry taken
        in_header = hdr < HEADER_WORDS
        expected = Array(Const(w, WORD_BITS) for w in self._header)[hdr]
        last_sub = Array(Const(x.entry_words - 1, sub.shape()) for x in mems)[mem]
        last_addr = Array(Const(x.depth - 1, addr.shape()) for x in mems)[mem]
        end_sub, end_addr, end_mem = sub == last_sub, addr == last_addr, equals(mem, len(mems) - 1)
        content = take & ~in_header & ~full
        word_bad = Signal()
        m.d.comb += word_bad.eq(Mux(in_header, word != expected, full))
        last_word = Signal()         # this word is the last entry's last
        m.d.comb += last_word.eq(end_sub & end_addr & end_mem)

        with m.FSM():
            with m.State("RUN"):
                m.d.comb += self.run.eq(ok & (pending != PENDING_TRANSFERS) | in_transfer)
                with m.If(self.i.valid):
                    m.next = "HOLD"
            with m.State("HOLD"):
                m.d.comb += self.run.eq(in_transfer)
                with m.If(drained):
                    m.d.comb += self.clear.eq(1)
                    m.d.sync += [ok.eq(0), hdr.eq(0), mem.eq(0), addr.eq(0), sub.eq(0), bad.eq(0), full.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    with m.If(in_header):
                        m.d.sync += hdr.eq(hdr + 1)
                    with m.If(word_bad):
                        m.d.sync += bad.eq(1)
                    with m.If(content):
                        m.d.sync += sub.eq(sub + 1)
                        with m.If(end_sub):
                            m.d.sync += [sub.eq(0), addr.eq(addr + 1)]
                            with m.If(end_addr):
                                m.d.sync += [addr.eq(0), mem.eq(mem + 1)]
                                with m.If(end_mem):
                                    m.d.sync += full.eq(1)
                    with m.If(self.i.payload.last):
                        m.d.sync += ok.eq(~bad & ~word_bad & (full | (content & last_word)))
                        m.next = "RUN"

        # Writes: the bus shifts each content word in at the top; a field is written, from the bus's top
        # words, the cycle after its last word, unless the header was bad.
        bus = self.write.data
        with m.If(content):
            m.d.sync += bus.eq(word if bus.shape().width == WORD_BITS else Cat(bus[WORD_BITS:], word))
        m.d.sync += self.write.addr.eq(addr)
        write = content & ~bad
        enables = []
        for index, x in enumerate(mems):
            here = mem == index
            end = 0
            for words in x.field_words:
                end += words
                enables.append(write & here & (sub == end - 1))
        m.d.sync += self.write.en.eq(Cat(*enables))
        return m

