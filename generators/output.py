"""A stage's output FIFO, with a credit of the words its started steps will write."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import STEP_FLAGS, BeatPacker, WordQueue, check_flags, element_layout, group_layout
from .fifo_buffer import BufferedFIFO
from .fixed import check_count, delay

__all__ = ["CREDIT", "OutputFIFO"]

#: The credit handshake, as the unit that starts steps sees it: ``reserve`` (high for one cycle) takes
#: a step's words; ``room`` says that a further step's words fit.
CREDIT = wiring.Signature({"reserve": Out(1), "room": In(1)})


class OutputFIFO(wiring.Component):
    """Groups of values in, beats of ``lanes`` out through a FIFO that started steps reserve room in.

    Groups arrive on ``i`` (``groups`` a step, ``end`` on its last) and go
    into a :class:`BufferedFIFO` as beats of whole groups
    (:class:`BeatPacker`, when ``group`` divides ``lanes``) or as one word a
    group, handed out a beat at a time on the way out (:class:`WordQueue`,
    when ``lanes`` divides ``group``); either way a step takes :attr:`words`
    FIFO words.

    Credit: each ``credit.reserve`` cycle reserves a step's words, counted
    until they leave the FIFO, and ``credit.room`` is high while another
    step's words fit. A step started only with ``room`` never finds the
    FIFO full, so ``i`` has no backpressure and ``o`` may apply any.
    ``room`` shows a reservation :attr:`room_latency` cycles later and a
    word read :attr:`free_latency` cycles later (a late read only makes it
    cautious), so reservations must be at least :attr:`room_latency` cycles
    apart. With ``registered`` the reservation is counted a cycle late and
    ``room`` is a register (low in the first cycle), which keeps the count's
    adder off the paths from ``reserve`` and from ``room``.

    Latency: :attr:`latency` cycles from the group that completes a beat (or
    a word) to that beat (or its first) on ``o``, with ``o`` ready and the
    FIFO empty. Throughput: a group per cycle in, a beat per cycle out.

    Parameters
    ----------
    shape : ShapeLike
        Shape of a value.
    lanes : int
        Values per beat on ``o``.
    group : int
        Values per group on ``i``; it divides ``lanes`` or ``lanes`` divides it.
    groups : int
        Groups per step.
    steps : int
        Whole steps' words the FIFO holds.
    slack : int
        Words it holds beyond those.
    registered : bool
        Count a reservation a cycle late and register ``room``.
    flags : StructLayout
        The step flags the groups on ``i`` and the beats on ``o`` carry: :data:`~.beats.STEP_FLAGS` or a
        subset of them.

    Members
    -------
    i : In(stream.Signature(group_layout(shape, group, flags), always_ready=True))
    credit : In(CREDIT)
    o : Out(stream.Signature(element_layout(shape, lanes, flags=flags)))
    """

    def __init__(self, *, shape, lanes: int, group: int, groups: int, steps: int, slack: int = 0,
                 registered: bool, flags: data.StructLayout = STEP_FLAGS):
        for name, value in (("lanes", lanes), ("group", group), ("groups", groups), ("steps", steps)):
            check_count(name, value)
        if lanes % group and group % lanes:
            raise ValueError(f"group ({group}) must divide lanes ({lanes}) or be a multiple of it")
        check_count("slack", slack, least=0)
        if not isinstance(registered, bool):
            raise TypeError(f"registered must be a bool, not {registered!r}")
        self._shape, self._lanes, self._group, self._groups = shape, lanes, group, groups
        self._steps, self._slack, self._registered, self._flags = steps, slack, registered, check_flags(flags)
        if self.packs:   # beats packed on the way in, or words split into beats on the way out
            self._pack = BeatPacker(shape=shape, lanes=lanes, group=group, flags=flags)
            self._queue = BufferedFIFO(shape=element_layout(shape, lanes, flags=flags), depth=self.depth)
        else:
            self._queue = WordQueue(shape=shape, lanes=group, per=lanes, depth=self.depth, flags=flags, hold=True)
        super().__init__({
            "i": In(stream.Signature(group_layout(shape, group, flags), always_ready=True)),
            "credit": In(CREDIT),
            "o": Out(stream.Signature(element_layout(shape, lanes, flags=flags))),
        })

    @property
    def packs(self) -> bool:
        """The FIFO holds beats packed from whole groups (``group`` divides ``lanes``), else one word a group."""
        return self._lanes % self._group == 0

    @property
    def words(self) -> int:
        """FIFO words a step takes: its beats when :attr:`packs`, else its groups."""
        return -(-self._groups // (self._lanes // self._group)) if self.packs else self._groups

    @property
    def depth(self) -> int:
        """FIFO depth: ``steps`` steps' words and ``slack``."""
        return self._steps * self.words + self._slack

    @property
    def latency(self) -> int:
        """Cycles from the group that completes a FIFO word to its first beat on ``o`` (FIFO empty, ``o`` ready):
        the FIFO's write to read (the packer adds none)."""
        return self._queue.latency

    @property
    def room_latency(self) -> int:
        """Cycles from a ``credit.reserve`` to ``credit.room`` counting it."""
        return 3 if self._registered else 1

    @property
    def free_latency(self) -> int:
        """Cycles from a FIFO word's read to ``credit.room`` counting it free."""
        return 2 if self._registered else 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = self._queue
        if self.packs:
            m.submodules.pack = pack = self._pack
            wiring.connect(m, wiring.flipped(self.i), pack.i)
            # (The credit leaves the FIFO room for every word: its w.ready need not be asked.)
            m.d.comb += [queue.w.valid.eq(pack.o.valid), queue.w.payload.eq(pack.o.payload)]
            wiring.connect(m, queue.r, wiring.flipped(self.o))
            leaving = queue.r.valid & queue.r.ready
        else:
            wiring.connect(m, wiring.flipped(self.i), queue.i)
            wiring.connect(m, queue.o, wiring.flipped(self.o))
            leaving = queue.taken

        # `reserved` counts the words of the steps started and not yet read out, written or still to come.
        words, depth = self.words, self.depth
        reserved = Signal(range(depth + 1))
        taking = delay(m, self.credit.reserve, 1, name="taking") if self._registered else self.credit.reserve
        with m.If(taking):
            m.d.sync += reserved.eq(reserved + Mux(leaving, words - 1, words))
        with m.Elif(leaving):
            m.d.sync += reserved.eq(reserved - 1)
        fits = reserved <= depth - words
        if self._registered:
            m.d.sync += self.credit.room.eq(fits)
        else:
            m.d.comb += self.credit.room.eq(fits)
        return m
