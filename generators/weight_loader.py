"""The weight loader: an image (:mod:`.image`) from the ``s_axis_weights`` stream into the weight memories,
between transfers of the data stream, never leaving the core to compute on a half-loaded model."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import counter_shape, equals
from .image import HEADER_WORDS, WORD_BITS, LoadableMemory

__all__ = ["PENDING_TRANSFERS", "LOAD_OVERHEAD_CYCLES", "word_layout", "load_layout", "WeightLoader"]

#: Transfers the data stream may have in the core at once, counted to know when it has drained: far
#: more than the core holds, so the bound never stalls it.
PENDING_TRANSFERS = 255


#: Cycles a load takes besides its words, with the core idle and the words back to back: from the first
#: word offered, one to hold the data stream and one to see it drained; after the last word, one to judge
#: the image, then ``ok`` rises.
LOAD_OVERHEAD_CYCLES = 3


def word_layout() -> data.StructLayout:
    """An image word as the port carries it, with ``last`` (``s_axis_weights_tlast``)."""
    return data.StructLayout({"data": WORD_BITS, "last": 1})


def load_layout(memories) -> data.StructLayout:
    """Writes into ``memories``: an address, the data of each field width (``bits<n>``), a write enable per
    field of every memory, in order, and ``held``: the core is held for a load (``weights_ok`` low), so nothing
    reads the memories and a memory may be read at the write address. The loader's ``write`` has this layout,
    and so has the ``load`` port of each unit holding some of the memories (with those memories)."""
    memories = tuple(memories)
    widths = sorted({bits for mem in memories for bits in mem.fields})
    return data.StructLayout({
        "addr": counter_shape(max(mem.depth for mem in memories)),
        "data": data.StructLayout({f"bits{bits}": bits for bits in widths}),
        "en": sum(len(mem.fields) for mem in memories),
        "held": 1,
    })


def lookup(index, values):
    """``values[index]`` (constants), as a chain of multiplexers: Amaranth writes an ``Array`` lookup as a
    combinational block, which Icarus never runs while ``index`` keeps its initial value."""
    out = Const(values[0])
    for n, value in enumerate(values[1:], 1):
        out = Mux(equals(index, n), value, out)
    return out


def table_bit(index, bits):
    """``bits[index]`` (0 past the end), a multiplexer per bit of ``index`` with constant leaves: one LUT's
    function of ``index``, which a shift of a constant table would also be, but with a width Verilator warns of."""
    index = Value.cast(index)
    bits = list(bits) + [0] * ((1 << len(index)) - len(bits))
    for level in range(len(index)):
        bits = [Mux(index[level], hi, lo) for lo, hi in zip(bits[::2], bits[1::2])]
    return Value.cast(bits[0])


class WeightLoader(wiring.Component):
    """Loads images between the data stream's transfers.

    Idle, it lets the data stream run (``run``) while ``ok``. When an image
    word is offered it holds the data stream at the end of the transfer under
    way, waits until every transfer taken has left the output port (``done``),
    then pulses ``clear`` (``stateful``: the state to zero), drops ``ok`` and
    takes the image, a word per cycle, to its ``last``. The header must be
    ``header`` word for word and the image exactly as long; then ``ok`` rises
    and the data stream runs on the new contents. A rejected image (a header
    word that differs, ``last`` early or late) is taken to its ``last`` and
    leaves ``ok`` low, so the data stream waits for a good one. Contents are
    written only after a good header.

    ``ok`` is not reset: it starts high (the memories hold the generate-time
    contents) and only a load changes it, so a reset keeps a loaded model; a
    reset during a load leaves it low.

    Latency: a field is written in the cycle its last word is taken; with the
    core idle, ``ok`` rises :data:`LOAD_OVERHEAD_CYCLES` plus the image's
    words cycles after its first word is offered, and ``run`` a cycle later.
    The count of transfers in flight, and so the end of a drain, lags a
    cycle. Throughput: a word per cycle.

    Parameters
    ----------
    memories : sequence of LoadableMemory
        In image order.
    header : sequence of int
        The :data:`~.image.HEADER_WORDS` words every image must start with.
    stateful : bool
        The core keeps a stream state across transfers: ``clear`` is there.

    Members
    -------
    i : In(stream.Signature(word_layout()))
    write : Out(load_layout(memories))
    ok : Out(1)
        ``weights_ok``: the memories hold a complete, accepted image (or the generate-time contents).
    run : Out(1)
        The data stream may take a beat.
    beat : In(stream.Signature({"last": 1}))
        A beat taken by the data stream's input (``valid`` the handshake), with its ``tlast``.
    done : In(1)
        A transfer's last beat left the output port.
    clear : Out(1)
        Only ``stateful``: a load starts, the stream state (``h`` and ``c``) back to zero.
    """

    def __init__(self, *, memories, header, stateful: bool = False):
        self._memories = tuple(memories)
        if not self._memories or not all(isinstance(mem, LoadableMemory) for mem in self._memories):
            raise TypeError("memories must be a non-empty sequence of LoadableMemory")
        self._header = tuple(int(w) for w in header)
        if len(self._header) != HEADER_WORDS or not all(0 <= w < 1 << WORD_BITS for w in self._header):
            raise ValueError(f"header must be {HEADER_WORDS} words of {WORD_BITS} bits")
        super().__init__({
            "i": In(stream.Signature(word_layout())),
            "write": Out(load_layout(self._memories)),
            "ok": Out(1, init=1),
            "run": Out(1),
            "beat": In(stream.Signature(data.StructLayout({"last": 1}), always_ready=True)),
            "done": In(1),
            **({"clear": Out(1)} if stateful else {}),
        })

    @property
    def memories(self) -> tuple[LoadableMemory, ...]:
        return self._memories

    @property
    def latency(self) -> int:
        """Cycles from a field's last word to its write: it is written in the cycle its last word is taken."""
        return 0

    def elaborate(self, platform):
        m = Module()
        mems, word = self._memories, self.i.payload.data
        take = self.i.valid & self.i.ready
        ok = Signal(init=1, reset_less=True)     # configuration loads the generate-time contents
        m.d.comb += self.ok.eq(ok)

        # The data stream: transfers taken and not yet out (counted a cycle late, from registers, so that no
        # long path from the ports reaches the counter); hold at a transfer's end.
        in_transfer = Signal()
        in_transfer_next = Mux(self.beat.valid, ~self.beat.payload.last, in_transfer)
        m.d.sync += in_transfer.eq(in_transfer_next)
        ended, done = Signal(), Signal()
        m.d.sync += [ended.eq(self.beat.valid & self.beat.payload.last), done.eq(self.done)]
        pending = Signal(range(PENDING_TRANSFERS + 1))
        with m.If(ended & ~done):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(done & ~ended):
            m.d.sync += pending.eq(pending - 1)
        drained = ~in_transfer & ~ended & ~done & equals(pending, 0)

        # The image: header words, then each memory's entries, field by field.
        hdr = Signal(counter_shape(HEADER_WORDS + 1))     # header words taken (HEADER_WORDS: in the contents)
        mem = Signal(counter_shape(len(mems)))
        addr = Signal(self.write.addr.shape())
        sub = Signal(counter_shape(max(x.entry_words for x in mems)))
        bad = Signal()                # a header word differed, or a word came after the last entry
        full = Signal()               # every entry taken
        in_header = hdr < HEADER_WORDS
        # The expected header word, bit by bit a table of the header words' bits indexed by hdr: each bit of the
        # compare is one LUT's function of hdr and the port's bit.
        expected = Cat(table_bit(hdr, [w >> bit & 1 for w in self._header]) for bit in range(WORD_BITS))
        # Whether the word is its entry's last (end_sub) and the entry its memory's last (end_addr), in
        # registers set a word ahead: the counters' enables are a register deep. Set from the memory's
        # next-to-last word and address (``penult_*``, registers loaded as each memory starts), or at once
        # for entries of one word and memories of one entry.
        end_sub, end_addr, end_mem = Signal(), Signal(), equals(mem, len(mems) - 1)
        penult_sub = Signal(range(-1, max(x.entry_words for x in mems) - 1))
        penult_addr = Signal(range(-1, max(x.depth for x in mems) - 1))

        def start_memory(n):
            """The registers of a memory's first word, its number ``n`` (a value, or an index into mems)."""
            values = [(x.entry_words - 2, x.depth - 2, x.entry_words == 1, x.depth == 1) for x in mems]
            if isinstance(n, int):
                psub, paddr, one_word, one_entry = values[n]
            else:
                psub, paddr, one_word, one_entry = (lookup(n, [v[k] for v in values]) for k in range(4))
            return [penult_sub.eq(psub), penult_addr.eq(paddr), end_sub.eq(one_word), end_addr.eq(one_entry)]
        content = take & ~in_header & ~full
        # A header word that differs, registered: the port's word meets only an equality with the expected
        # word (a constant per header word) on its way to this register. It keeps the word after it from
        # being written and is in bad from the cycle after that.
        mismatch = Signal()
        m.d.sync += mismatch.eq(take & in_header & (word != expected))

        # The states: the data stream runs; it is held until drained; the image is taken; its end is judged
        # (a cycle after its last word, from registers only). The outputs are plain expressions of the state:
        # Icarus never runs a combinational block whose inputs keep their initial values, so one assigned
        # inside a state would stay X.
        state = Signal(range(4))
        running, holding, loading, ending = (equals(state, n) for n in range(4))
        with m.If(running):
            with m.If(self.i.valid):
                m.d.sync += state.eq(1)
        with m.Elif(holding):
            with m.If(drained):
                m.d.sync += [state.eq(2), ok.eq(0), hdr.eq(0), mem.eq(0), addr.eq(0), sub.eq(0), bad.eq(0),
                             full.eq(0), *start_memory(0)]
        with m.Elif(take):
            with m.If(in_header):
                m.d.sync += hdr.eq(hdr + 1)
            with m.If(~in_header & full):
                m.d.sync += bad.eq(1)
            with m.If(content):
                m.d.sync += [sub.eq(sub + 1), end_sub.eq(sub == penult_sub)]
                with m.If(end_sub):
                    m.d.sync += [sub.eq(0), addr.eq(addr + 1), end_sub.eq(equals(penult_sub, -1)),
                                 end_addr.eq(addr == penult_addr)]
                    with m.If(end_addr):
                        m.d.sync += [addr.eq(0), mem.eq(mem + 1), *start_memory(mem + 1)]
                        with m.If(end_mem):
                            m.d.sync += full.eq(1)
            with m.If(self.i.payload.last):
                m.d.sync += state.eq(3)
        with m.Elif(ending):          # the last word's checks are in bad, mismatch and full now
            m.d.sync += [ok.eq(~bad & ~mismatch & full), state.eq(0)]
        with m.If(mismatch):
            m.d.sync += bad.eq(1)
        # run is a register, a cycle ahead: high in a transfer, or while running with good weights, no image
        # offered and room in the count. The count grows by one a cycle at most and sees a transfer's end two
        # cycles late, so room is three short of full.
        run = Signal()
        m.d.sync += run.eq(in_transfer_next | running & ~self.i.valid & ok & (pending < PENDING_TRANSFERS - 2))
        m.d.comb += [
            self.run.eq(run),
            *([self.clear.eq(holding & drained)] if "clear" in self.signature.members else []),
            self.i.ready.eq(loading),
        ]

        # Writes, in the cycle a field's last word is taken: the words before it come from a shift register,
        # the newest word at the top, so a field of n words is the low bits of the top n words of
        # Cat(earlier words, this word). Nothing is written after a bad header.
        words = max(w for x in mems for w in x.field_words)
        bus = word
        if words > 1:
            earlier = Signal((words - 1) * WORD_BITS)
            with m.If(content):
                m.d.sync += earlier.eq(Cat(earlier[WORD_BITS:], word) if words > 2 else word)
            bus = Cat(earlier, word)
        for name, shape in self.write.data.shape():
            n = -(-shape.width // WORD_BITS)
            m.d.comb += self.write.data[name].eq(bus[(words - n) * WORD_BITS:][:shape.width])
        m.d.comb += [self.write.addr.eq(addr), self.write.held.eq(~ok)]
        write = content & ~bad & ~mismatch
        enables = []
        for index, x in enumerate(mems):
            here = equals(mem, index)
            end = 0
            for field_words in x.field_words:
                end += field_words
                enables.append(write & here & equals(sub, end - 1))
        m.d.comb += self.write.en.eq(Cat(*enables))
        return m
