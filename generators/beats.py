"""Beats of vector elements on the streams, and the adapters between them and groups of values.

A layer computes its ``h`` in groups (a pass's cell lanes, or one value at a
time) while its streams carry beats of ``io_lanes`` elements. When a group
divides a beat, :class:`BeatPacker` packs whole groups into beats; when a beat
divides a group, :class:`WordQueue` stores each group and hands it out a beat at a time.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fifo_buffer import BufferedFIFO
from .fixed import check_count, counter_shape, equals

__all__ = ["STEP_FLAGS", "PORT_FLAGS", "flags_layout", "check_flags", "kept_flags", "element_layout", "values_layout",
           "group_layout", "word_layout", "beat_layout", "BeatPacker", "WordQueue"]


#: A timestep's flags, on its last beat: ``first``, it starts from zero state (``h = c = 0``); ``last``, it
#: ends a sequence (its ``h`` goes out where only sequences' last steps' do); ``tlast``, it ends a transfer
#: (``m_axis_tlast`` comes with its last output beat). See :class:`~.framer.Framer`.
STEP_FLAGS = data.StructLayout({"first": 1, "last": 1, "tlast": 1})
_FLAG_NAMES = [name for name, _ in STEP_FLAGS]


def flags_layout(names) -> data.StructLayout:
    """The step flags ``names`` (a subset of :data:`STEP_FLAGS`' fields), in its order: what a stream
    carries where its consumers need only those."""
    names = set(names)
    if not names <= set(_FLAG_NAMES):
        raise ValueError(f"step flags are {', '.join(_FLAG_NAMES)}, not {sorted(names)}")
    return data.StructLayout({name: 1 for name in _FLAG_NAMES if name in names})


#: The flags the core's output port needs: ``tlast`` alone (the head's streams, and the last layer's
#: output, carry only these).
PORT_FLAGS = flags_layout({"tlast"})


def kept_flags(flags, layout: data.StructLayout):
    """The fields of ``layout`` out of ``flags`` (a :data:`STEP_FLAGS` view), as a value of ``layout``'s shape."""
    return Cat(flags[name] for name, _ in layout)


def element_layout(shape, lanes: int = 1, *, flags: data.StructLayout | None = STEP_FLAGS) -> data.StructLayout:
    """A beat of vector elements on a stream: ``lanes`` values and the timestep's ``flags``.

    Each timestep's elements fill beats in order, ``data[0]`` first; its last
    beat may be partial, with the unused lanes zero. The flags
    (:data:`STEP_FLAGS`, or a subset such as :data:`PORT_FLAGS`) are the
    step's on its last beat and zero on the others. With ``flags = None``,
    the values alone.
    """
    return data.StructLayout({"data": data.ArrayLayout(shape, lanes),
                              **({"flags": flags} if flags is not None else {})})


def values_layout(shape, count: int) -> data.StructLayout:
    """``count`` values computed together (a pass's cell lanes): ``data`` and, with several, ``ok``.

    Bit ``e`` of ``ok`` is high when lane ``e`` holds a value; those lanes are
    a prefix, lane 0 always among them. One value has no ``ok``.
    """
    return data.StructLayout(_values_fields(shape, count))


def group_layout(shape, count: int, flags: data.StructLayout = STEP_FLAGS) -> data.StructLayout:
    """A group of :func:`values_layout` on its way out: ``end`` on a step's last group, and the step's
    ``flags`` with each of its groups."""
    return data.StructLayout({**_values_fields(shape, count), "end": 1, "flags": flags})


def check_flags(flags):
    """``flags``, a layout of step flags: :data:`STEP_FLAGS` or a subset of its fields."""
    if not (isinstance(flags, data.StructLayout) and {name for name, _ in flags} <= set(_FLAG_NAMES)):
        raise TypeError(f"flags must be a StructLayout of STEP_FLAGS fields, not {flags!r}")
    return flags


def _values_fields(shape, count: int) -> dict:
    return {"data": data.ArrayLayout(shape, count), **({"ok": count} if count > 1 else {})}


def word_layout(shape, count: int, per: int, *, flags: data.StructLayout | None,
                ok: bool = False) -> data.StructLayout:
    """A stored group, handed out ``per`` values a beat: ``data`` (zero past its real values), ``final``
    (the index of its last beat), with ``ok`` the group's ``ok`` and, unless ``flags`` is None, the ``flags``
    its last beat carries."""
    return data.StructLayout({"data": data.ArrayLayout(shape, count), "final": counter_shape(count // per),
                              **({"ok": count} if ok else {}), **({"flags": flags} if flags is not None else {})})


def beat_layout(shape, per: int, *, flags: data.StructLayout | None, ok: bool) -> data.StructLayout:
    """A beat out of a :class:`WordQueue`: :func:`element_layout`, or with ``ok`` :func:`values_layout` and
    the flags."""
    if not ok:
        return element_layout(shape, per, flags=flags)
    return data.StructLayout({**_values_fields(shape, per), **({"flags": flags} if flags is not None else {})})


def _check_lanes(name: str, value, divisor_name: str, divisor: int):
    if not isinstance(value, int) or value < 1 or value % divisor:
        raise ValueError(f"{name} must be a positive multiple of {divisor_name} = {divisor}, got {value!r}")


class BeatPacker(wiring.Component):
    """Groups of values packed into beats, ``lanes / group`` groups a beat, a step's last group closing its beat.

    Each group on ``i`` takes the next ``group`` lanes of the beat being
    built, padding lanes (``ok`` low) as zero. The beat leaves on ``o`` with
    the group that fills it, or with one marked ``end`` (its later lanes
    zero), and the next group starts a new beat. ``o.payload.flags`` are
    that group's flags if it is marked ``end``, else zero.

    Latency 0: a beat leaves combinationally with its last group (the earlier
    groups of the beat wait in registers). Throughput: a group per cycle.
    There is no backpressure: ``i`` is always ready, and ``o`` must be (the
    output FIFO's credit guarantees it).

    Parameters
    ----------
    shape : ShapeLike
        Shape of a value.
    lanes : int
        Values per beat, a multiple of ``group``.
    group : int
        Values per group.
    flags : StructLayout
        The step flags the groups and beats carry.

    Members
    -------
    i : In(stream.Signature(group_layout(shape, group, flags), always_ready=True))
    o : Out(stream.Signature(element_layout(shape, lanes, flags=flags), always_ready=True))
    """

    def __init__(self, *, shape, lanes: int, group: int, flags: data.StructLayout = STEP_FLAGS):
        check_count("group", group)
        _check_lanes("lanes", lanes, "group", group)
        self._lanes, self._group = lanes, group
        super().__init__({
            "i": In(stream.Signature(group_layout(shape, group, check_flags(flags)), always_ready=True)),
            "o": Out(stream.Signature(element_layout(shape, lanes, flags=flags), always_ready=True)),
        })

    @property
    def latency(self) -> int:
        """Cycles from a beat's last group on ``i`` to the beat on ``o``."""
        return 0

    def elaborate(self, platform):
        m = Module()
        lanes, group = self._lanes, self._group
        chunks = lanes // group
        g, beat = self.i.payload, self.o.payload.data
        vals = [Mux(g.ok[e], g.data[e], 0) for e in range(group)] if group > 1 else [g.data[0]]
        if chunks == 1:
            m.d.comb += [beat[e].eq(vals[e]) for e in range(lanes)]
            full = Const(1)
        else:
            pos = Signal(counter_shape(chunks))     # the group's place in the beat
            held = [Signal.like(beat[e], name=f"held{e}") for e in range(lanes - group)]
            full = pos == chunks - 1
            for c in range(chunks):   # groups already held, this one, zeros after it
                for e in range(group):
                    later = 0 if c == chunks - 1 else Mux(pos > c, held[c * group + e], 0)
                    m.d.comb += beat[c * group + e].eq(Mux(equals(pos, c), vals[e], later))
            with m.If(self.i.valid):
                m.d.sync += pos.eq(Mux(full | g.end, 0, pos + 1))
                for c in range(chunks - 1):
                    with m.If(equals(pos, c)):
                        m.d.sync += [held[c * group + e].eq(vals[e]) for e in range(group)]
        m.d.comb += [self.o.valid.eq(self.i.valid & (full | g.end)), self.o.payload.flags.eq(Mux(g.end, g.flags, 0))]
        return m


class WordQueue(wiring.Component):
    """Groups of values through a FIFO, each handed out ``per`` values a beat: the ones its ``ok`` marks, in order.

    Each group on ``i`` goes into the FIFO (a :class:`BufferedFIFO`) as one
    word: its values (padding lanes zero), the index of its last beat
    holding a value and, with ``flags``, the group's flags if it is marked
    ``end`` (else zero). The word at the head leaves on ``o`` a beat at a
    time up to that one, which carries those flags; ``taken`` is high as the word leaves the FIFO,
    with that beat.

    With ``ok`` each beat also says which of its lanes hold values (its
    part of the group's ``ok``), for a user that must tell padding lanes
    from values that are zero.

    With ``hold`` the head word waits in a register of its own, so the read
    side's handshake starts at local registers, not at the FIFO memory's read
    data (a block RAM's clock-to-out is long); the register is one word more
    of room, and :attr:`latency` a cycle more.

    Latency: :attr:`latency` cycles from a group to its first beat, with the
    FIFO empty and ``o`` ready. Throughput: a group per cycle in, a beat per
    cycle out. ``i`` has no backpressure: the user never sends more words
    than the FIFO holds. With ``always_ready``, neither has ``o``: its user
    takes a beat every cycle.

    Parameters
    ----------
    shape : ShapeLike
        Shape of a value.
    lanes : int
        Values per group, a multiple of ``per``, at least 2.
    per : int
        Values per beat.
    depth : int
        Words the FIFO holds (2 at least).
    flags : StructLayout or None
        The step flags the groups (with ``end``) and the beats carry: :data:`STEP_FLAGS` or a subset.
        None: neither carries any.
    always_ready : bool
        ``o`` has no ``ready``.
    hold : bool
        The head word in a register of its own.
    ok : bool
        The beats carry ``ok`` (with ``per > 1``).

    Members
    -------
    i : In(stream.Signature(group_layout(shape, lanes, flags) if flags is not None else values_layout(shape, lanes),
                            always_ready=True))
    o : Out(stream.Signature(beat_layout(shape, per, flags=flags, ok=ok), always_ready=always_ready))
    taken : Out(1)
    """

    def __init__(self, *, shape, lanes: int, per: int, depth: int, flags: data.StructLayout | None,
                 always_ready: bool = False, hold: bool = False, ok: bool = False):
        check_count("per", per)
        _check_lanes("lanes", lanes, "per", per)
        if lanes < 2:
            raise ValueError(f"lanes must be at least 2, got {lanes}")
        check_count("depth", depth)
        if flags is not None:
            check_flags(flags)
        for name, value in (("always_ready", always_ready), ("hold", hold), ("ok", ok)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, not {value!r}")
        self._shape, self._lanes, self._per, self._flags, self._hold = shape, lanes, per, flags, hold
        self._ok = ok and per > 1
        self._fifo = BufferedFIFO(shape=word_layout(shape, lanes, per, flags=flags, ok=self._ok), depth=max(2, depth))
        super().__init__({
            "i": In(stream.Signature(group_layout(shape, lanes, flags) if flags is not None
                                     else values_layout(shape, lanes), always_ready=True)),
            "o": Out(stream.Signature(beat_layout(shape, per, flags=flags, ok=self._ok), always_ready=always_ready)),
            "taken": Out(1),
        })

    @property
    def depth(self) -> int:
        """Words the FIFO holds."""
        return self._fifo.depth

    @property
    def hold(self) -> bool:
        """The head word waits in a register of its own (``hold``)."""
        return self._hold

    @property
    def word(self):
        """The layout of a FIFO word: a group's values, the index of its last beat and its flags."""
        return self._fifo.shape

    @property
    def latency(self) -> int:
        """Cycles from a group on ``i`` to its first beat on ``o``: the FIFO's write to read, and the head
        word's register with ``hold``."""
        return self._fifo.latency + self._hold

    def elaborate(self, platform):
        m = Module()
        lanes, per = self._lanes, self._per
        places = lanes // per
        m.submodules.fifo = queue = self._fifo
        # The word holds its real values, zeros after them, and the index of its last beat, so the
        # read side's test for that beat is one small compare.
        g, w_word = self.i.payload, queue.w.payload
        m.d.comb += [w_word.data[e].eq(Mux(g.ok[e], g.data[e], 0)) for e in range(lanes)]
        if self._ok:
            m.d.comb += w_word.ok.eq(g.ok)
        for c in range(1, places):   # the last beat holding a real value (lane 0 always is one)
            with m.If(g.ok[c * per]):
                m.d.comb += w_word.final.eq(c)
        if self._hold:
            word, pop = Signal.like(queue.r.payload, name="head"), Signal()   # pop: the head's last beat leaves
            m.d.comb += [queue.w.valid.eq(self.i.valid), queue.r.ready.eq(~self.o.valid | pop), self.taken.eq(pop)]
            with m.If(queue.r.valid & queue.r.ready):
                m.d.sync += [word.eq(queue.r.payload), self.o.valid.eq(1)]
            with m.Elif(pop):
                m.d.sync += self.o.valid.eq(0)
        else:
            word, pop = queue.r.payload, queue.r.ready
            m.d.comb += [queue.w.valid.eq(self.i.valid), self.o.valid.eq(queue.r.valid),
                         self.taken.eq(queue.r.valid & queue.r.ready)]

        idx = Signal(counter_shape(places))
        end = idx == word.final
        with m.Switch(idx):  # a case, not a wide shift as ``word.data[idx]`` would emit
            for c in range(places):
                with (m.Case(c) if c < places - 1 else m.Default()):
                    m.d.comb += [self.o.payload.data[e].eq(word.data[c * per + e]) for e in range(per)]
                    if self._ok:
                        m.d.comb += self.o.payload.ok.eq(word.ok[c * per:(c + 1) * per])
        if self._flags is not None:
            m.d.comb += [w_word.flags.eq(Mux(g.end, g.flags, 0)),
                         self.o.payload.flags.eq(Mux(end, word.flags, 0))]
        with m.If(self.o.valid & self.o.ready):
            with m.If(end):
                m.d.sync += idx.eq(0)
                m.d.comb += pop.eq(1)
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
        return m
