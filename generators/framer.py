"""The framer: the input port's beats into timesteps, each with the flags that say where sequences and
transfers begin and end."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import STEP_FLAGS, check_flags, element_layout
from .fixed import check_count, counter_shape, equals

__all__ = ["port_layout", "Framer"]


def port_layout(shape, lanes: int) -> data.StructLayout:
    """A beat as the input port carries it: ``lanes`` elements and ``last`` (``s_axis_tlast``)."""
    return data.StructLayout({"data": data.ArrayLayout(shape, lanes), "last": 1})


class Framer(wiring.Component):
    """Beats of the input port into timesteps of ``elements`` elements, each with its step flags.

    A timestep takes ``ceil(elements / lanes)`` beats. Its flags
    (:data:`~.beats.STEP_FLAGS`, on its last beat, zero on the others) say:

    - ``tlast``: the step ends a transfer (its beats ended with ``i.last``);
    - ``last``: it ends a sequence: it ends a transfer, or, with
      ``sequence_length = T > 0``, it is the ``T``-th step of its sequence;
    - ``first``: it starts from zero state. Without ``stateful``, so does
      every sequence (the step after a ``last`` one, and the first after
      reset). With ``stateful``, the state carries across sequences and
      transfers: only the first step after reset does, and the first step
      whose first beat comes after ``state_rst`` was high (for a cycle or
      more; a step under way when it rises keeps its state).

    A transfer that ends inside a timestep (``i.last`` before the step's last
    beat) is completed with beats of zero elements, during which ``i`` waits,
    so every step is whole, and the step ends the transfer and its sequence.

    With ``interleave = N > 1`` the steps come in groups, timestep ``t`` of
    sequences ``0 .. N - 1`` in turn: the group's steps share their flags'
    meaning (all ``N`` start from zero state after a sequence's end; with
    ``sequence_length = T`` the ``N`` steps of each ``T``-th timestep are
    ``last``), a transfer ends only with a group (``tlast`` and, without a
    ``sequence_length``, ``last`` only on its last step; a transfer that ends
    inside a group is completed with zero steps as above).

    Latency 0: a beat leaves combinationally as it comes. Throughput: a beat
    per cycle.

    Parameters
    ----------
    shape : ShapeLike
        Shape of an element.
    lanes : int
        Elements per beat.
    elements : int
        Elements per timestep.
    sequence_length : int
        Steps per sequence, or 0: a sequence ends only with a transfer.
    stateful : bool
        The state carries across sequences; ``state_rst`` clears it (only with ``interleave = 1``).
    flags : StructLayout
        The flags ``o`` carries, those its consumer needs (:data:`~.beats.STEP_FLAGS` or a subset).
    interleave : int
        Sequences whose timesteps take turns.

    Members
    -------
    i : In(stream.Signature(port_layout(shape, lanes)))
    state_rst : In(1)
    o : Out(stream.Signature(element_layout(shape, lanes, flags=flags)))
    """

    def __init__(self, *, shape, lanes: int, elements: int, sequence_length: int, stateful: bool,
                 flags: data.StructLayout = STEP_FLAGS, interleave: int = 1):
        check_count("lanes", lanes)
        check_count("elements", elements)
        check_count("sequence_length", sequence_length, least=0)
        check_count("interleave", interleave)
        if not isinstance(stateful, bool):
            raise TypeError(f"stateful must be a bool, not {stateful!r}")
        if stateful and sequence_length:
            raise ValueError("a stateful framer has no sequence_length: its sequences end with transfers")
        if stateful and interleave > 1:
            raise ValueError("a stateful framer has one sequence: interleave must be 1")
        self._beats = -(-elements // lanes)
        self._length, self._stateful, self._interleave = sequence_length, stateful, interleave
        super().__init__({
            "i": In(stream.Signature(port_layout(shape, lanes))),
            "state_rst": In(1),
            "o": Out(stream.Signature(element_layout(shape, lanes, flags=check_flags(flags)))),
        })

    @property
    def beats(self) -> int:
        """Beats a timestep."""
        return self._beats

    @property
    def latency(self) -> int:
        """Cycles from a beat on ``i`` to the beat on ``o``."""
        return 0

    def elaborate(self, platform):
        m = Module()
        beats, length, n = self._beats, self._length, self._interleave
        fresh = Signal(init=1)       # the next step to begin starts from zero state
        if beats == 1 and n == 1:    # every beat starts and ends its step; none is cut short
            start = final = Const(1)
            pad, step_first = Const(0), fresh
        else:
            if beats == 1:
                start = final = Const(1)
            else:
                beat = Signal(counter_shape(beats))
                start, final = equals(beat, 0), equals(beat, beats - 1)
            pad = Signal()           # completing a step (or, interleaved, a group) that a transfer's end cut short
            first = Signal()         # the step under way starts from zero state (kept from its first beat)
            step_first = Mux(start, fresh, first)
        # The group's last step (the step itself without interleaving): a transfer ends only with it.
        group_start, group_final, tlast = start, final, pad | self.i.payload.last
        if n > 1:
            seq = Signal(counter_shape(n))       # the step's sequence in its group
            group_end = equals(seq, n - 1)
            group_start, group_final, tlast = start & group_end, final & group_end, tlast & group_end
        seq_end = tlast
        if length > 1:
            count = Signal(counter_shape(length))    # the step's place in its sequence
            seq_end = tlast | equals(count, length - 1)
        elif length == 1:
            seq_end = Const(1)
        out = self.o.payload.flags
        m.d.comb += [
            self.o.valid.eq(pad | self.i.valid),
            self.i.ready.eq(~pad & self.o.ready),
            self.o.payload.data.eq(Mux(pad, 0, self.i.payload.data)),
        ]
        values = {"first": step_first, "last": seq_end, "tlast": tlast}
        m.d.comb += [out[name].eq(final & values[name]) for name, _ in out.shape()]
        with m.If(self.o.valid & self.o.ready):
            with m.If(group_start):
                m.d.sync += fresh.eq(0)
            if beats > 1 or n > 1:
                with m.If(start):
                    m.d.sync += first.eq(fresh)
            if beats > 1:
                m.d.sync += beat.eq(Mux(final, 0, beat + 1))
            if n > 1:
                with m.If(final):
                    m.d.sync += seq.eq(Mux(group_end, 0, seq + 1))
            if beats > 1 or n > 1:
                with m.If(~group_final & self.i.payload.last & ~pad):
                    m.d.sync += pad.eq(1)
                with m.If(group_final):
                    m.d.sync += pad.eq(0)
            with m.If(group_final):
                if length > 1:
                    m.d.sync += count.eq(Mux(seq_end, 0, count + 1))
                if not self._stateful:
                    m.d.sync += fresh.eq(seq_end)
        if self._stateful:
            with m.If(self.state_rst):
                m.d.sync += fresh.eq(1)
        return m
