"""A layer's recurrence: the step control around its :class:`SparseMatVec`, and the write-back of each step's ``h``."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import STEP_FLAGS, check_flags, flags_layout, group_layout, kept_flags, values_layout
from .fixed import check_count, counter_shape, equals
from .loader import halves_signature
from ..model.design import LayerPlan, slot_bits
from .mvm import group_slot, vector_write_layout
from .mvm_vector import sequence_slot
from .output import CREDIT

__all__ = ["step_signature", "HWriter", "StepControl"]

def step_signature(flags: data.StructLayout = STEP_FLAGS, slot_bits: int = 1) -> wiring.Signature:
    """The step whose ``h`` is being written, from the step control: ``buf``, the vector-store slot it reads
    (``slot_bits`` wide: the half, and the sequence above it); ``emit``, its ``h`` goes out; ``flags``, those
    of its step flags that go out with it."""
    return wiring.Signature({"buf": Out(slot_bits), "emit": Out(1), "flags": Out(flags)})


class HWriter(wiring.Component):
    """Each step's ``h`` into the vector store, for the next step, and on to the output.

    Groups of ``group`` values, hidden units ``j ..`` in order (consecutive
    units of a pass's cell lanes, or one unit), arrive on ``i``,
    :attr:`writes` a step; only a step's last group may have padding lanes. Unit ``j`` goes to column ``input_size + j``
    (:func:`vector_address`) of the half the step does not read (``step.buf``
    is the one it does), lane ``e`` through write port ``e``; padding lanes
    (``ok`` low) write nothing. These writes have the ports first: the
    loader's writes on the same ports (``load``) pass through in the cycles
    without ``h``, and ``busy`` holds the loader off in the others (so its
    further ports, should it have more, need not pass here). With
    ``step.emit`` each group also goes out on ``o``, ``end`` on the step's
    last, with the step's flags; ``done`` is high with the step's last
    group.

    Latency 0: the writes, ``o`` and ``done`` leave combinationally with
    their group (the store registers its writes). Throughput: a group per
    cycle; there is no backpressure.

    Parameters
    ----------
    plan : LayerPlan
        The layer: ``hidden`` units, their columns and the store's banks.
    shape : ShapeLike
        Shape of a value.
    group : int
        Values per group, at most ``plan.banks`` (they go into different banks).
    lanes : int
        The loader's write ports (those beyond ``group`` do not pass through here).
    flags : StructLayout
        The step flags that go out with the groups (:data:`~.beats.STEP_FLAGS` or a subset).

    Members
    -------
    i : In(stream.Signature(values_layout(shape, group), always_ready=True))
    step : In(step_signature(flags))
    load : In(stream.Signature(vector_write_layout(plan, shape), always_ready=True)).array(min(group, lanes))
    wr : Out(stream.Signature(vector_write_layout(plan, shape), always_ready=True)).array(group)
    busy : Out(1)
    o : Out(stream.Signature(group_layout(shape, group, flags), always_ready=True))
    done : Out(1)
    """

    def __init__(self, *, plan: LayerPlan, shape, group: int, lanes: int, flags: data.StructLayout = STEP_FLAGS):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        for name, value in (("group", group), ("lanes", lanes)):
            if not isinstance(value, int) or not 1 <= value <= plan.banks:
                raise ValueError(f"{name} must be an integer from 1 to banks = {plan.banks}, got {value!r}")
        self._plan, self._group, self._lanes = plan, group, lanes
        self._write_layout = vector_write_layout(plan, shape)
        write = stream.Signature(self._write_layout, always_ready=True)
        super().__init__({
            "i": In(stream.Signature(values_layout(shape, group), always_ready=True)),
            "step": In(step_signature(check_flags(flags), plan.slot_bits)),
            "load": In(write).array(min(group, lanes)),
            "wr": Out(write).array(group),
            "busy": Out(1),
            "o": Out(stream.Signature(group_layout(shape, group, flags), always_ready=True)),
            "done": Out(1),
        })

    @property
    def writes(self) -> int:
        """Groups a step: ``ceil(hidden / group)`` (``group`` divides a pass's units)."""
        return -(-self._plan.hidden // self._group)

    @property
    def latency(self) -> int:
        """Cycles from a group on ``i`` to its writes, its ``o`` and ``done``."""
        return 0

    def elaborate(self, platform):
        m = Module()
        p, group, writes = self._plan, self._group, self.writes
        valid, g = self.i.valid, self.i.payload
        j = Signal(counter_shape(writes))
        bank = Signal(counter_shape(p.banks))          # unit j: bank j % banks, entry x_width + j // banks
        addr = Signal(counter_shape(p.bank_width), init=p.x_width)
        # With `valid`: the step's last group. A flag kept beside the counter, not a compare on
        # it: `done` starts the next recurrent phase (h_go) in the same cycle.
        end = Signal(init=writes == 1)
        m.d.comb += [self.busy.eq(valid), self.done.eq(valid & end)]
        with m.If(valid):
            with m.If(end):
                m.d.sync += [j.eq(0), end.eq(writes == 1), bank.eq(0), addr.eq(p.x_width)]
            with m.Else():
                m.d.sync += [j.eq(j + 1), end.eq(Const(1) if writes == 1 else equals(j, writes - 2))]
                # (With one bank every move wraps; a constant, not a ">= 0" compare lint flags.)
                with m.If(Const(1) if p.banks <= group else bank >= p.banks - group):
                    m.d.sync += [bank.eq(bank + group - p.banks), addr.eq(addr + 1)]
                with m.Else():
                    m.d.sync += bank.eq(bank + group)

        for e, port in enumerate(self.wr):
            mine = Signal(self._write_layout, name=f"h_wr{e}")
            h_bank, h_addr = group_slot(p, bank, addr, e)
            # The other half of the step's slot (its sequence's, with interleaved sequences).
            other = ~self.step.buf if p.slot_bits == 1 else Cat(~self.step.buf[0], self.step.buf[1:])
            m.d.comb += [mine.buf.eq(other), mine.bank.eq(h_bank), mine.addr.eq(h_addr),
                         mine.data.eq(g.data[e])]
            ok = Const(1) if e == 0 else g.ok[e]
            if e < len(self.load):
                load = self.load[e]
                m.d.comb += [port.valid.eq(Mux(valid, ok, load.valid)), port.payload.eq(Mux(valid, mine, load.payload))]
            else:
                m.d.comb += [port.valid.eq(valid & ok), port.payload.eq(mine)]

        m.d.comb += [
            self.o.valid.eq(valid & self.step.emit),
            self.o.payload.data.eq(g.data),
            self.o.payload.end.eq(end),
            self.o.payload.flags.eq(self.step.flags),
        ]
        if group > 1:
            m.d.comb += self.o.payload.ok.eq(g.ok)
        return m


class StepControl(wiring.Component):
    """The steps of a layer onto its :class:`SparseMatVec`: each step's command once its ``x`` is loaded, its
    recurrent phase once the step ``interleave`` before it has written its ``h`` and the output FIFO has room
    for all of its own.

    ``cmd`` (the step's input phase) is valid while the next vector half is
    full (``halves``), with ``first`` from the step's flags (it starts from
    zero state) and ``buf``, the step's vector-store slot: the half, and with
    ``interleave`` > 1 the sequence above it (steps take turns, sequence 0,
    1, .. ``interleave - 1``, each sequence's slots alternating halves).
    ``h_ready`` lets the matrix unit start the commanded step's recurrent
    phase: when fewer than ``interleave`` steps have ``h`` left to write, or
    in the cycle the oldest of them writes its last (``done``; the phase's
    first vector read comes after that write lands); and, should the step
    emit its ``h``, with ``credit.room``. At ``h_go`` the commanded step starts
    its recurrent phase (``first`` and ``seq`` show it from the next cycle),
    its half is freed (``halves.free``: the input phase has read its ``x``)
    and, should it emit, it reserves its words (``credit.reserve``). ``step``
    is the oldest step with ``h`` left to write, until its ``done``.

    Latency: ``cmd``, ``h_ready``, ``halves.free`` and ``credit.reserve``
    follow their inputs combinationally; ``first`` and ``seq`` change the cycle
    after ``h_go``, and so does ``step`` when no step was writing. Throughput: a
    step per ``h_go``.

    Parameters
    ----------
    emit_all : bool
        Every step emits its ``h``; otherwise only a sequence's last (flag ``last``).
    flags : StructLayout
        The step flags that go out with a step's ``h`` (:data:`~.beats.STEP_FLAGS` or a subset).
    interleave : int
        Sequences taking turns (``plan.interleave``).

    Members
    -------
    cmd : Out(stream.Signature(data.StructLayout({"buf": slot_bits, "first": 1})))
    h_ready : Out(1)
    h_go : In(1)
    halves : In(halves_signature(in_flags))
        The halves' flags: those that go out, ``first``, and ``last`` unless ``emit_all``
        (:attr:`in_flags`).
    credit : Out(CREDIT)
    done : In(1)
    step : Out(step_signature(flags, slot_bits))
    first : Out(1)
        The step in its recurrent phase starts from zero state (its ``c_{t-1}`` is zero).
    seq : Out(slot_bits - 1)
        Only with ``interleave`` > 1: that step's sequence.
    """

    def __init__(self, *, emit_all: bool, flags: data.StructLayout = STEP_FLAGS, interleave: int = 1):
        if not isinstance(emit_all, bool):
            raise TypeError(f"emit_all must be a bool, not {emit_all!r}")
        self._emit_all, self._flags = emit_all, check_flags(flags)
        self._interleave = check_count("interleave", interleave)
        self._slot_bits = slot_bits(interleave)
        # What the control itself reads besides: first, and last to choose the steps that emit.
        self._pend = flags_layout({*(name for name, _ in flags), "first"})
        self._in = flags_layout({*(name for name, _ in self._pend), *(() if emit_all else ("last",))})
        super().__init__({
            "cmd": Out(stream.Signature(data.StructLayout({"buf": self._slot_bits, "first": 1}))),
            "h_ready": Out(1),
            "h_go": In(1),
            "halves": In(halves_signature(self._in)),
            "credit": Out(CREDIT),
            "done": In(1),
            "step": Out(step_signature(flags, self._slot_bits)),
            "first": Out(1),
            **({"seq": Out(self._slot_bits - 1)} if interleave > 1 else {}),
        })

    @property
    def emit_all(self) -> bool:
        return self._emit_all

    @property
    def interleave(self) -> int:
        return self._interleave

    @property
    def in_flags(self) -> data.StructLayout:
        """The step flags the control needs of its steps: those that go out, ``first``, and ``last`` unless
        ``emit_all``."""
        return self._in

    def elaborate(self, platform):
        m = Module()
        n = self._interleave
        full, flags = self.halves.full, self.halves.flags
        q_buf = Signal()               # vector half of the next step to command
        pend_flags = Signal(self._pend)                          # the commanded step's
        pend_emit, pend_buf = Signal(), Signal()
        q_flags = self._in(Mux(q_buf, flags[1], flags[0]))
        take = self.cmd.valid & self.cmd.ready
        if n == 1:
            q_slot, pend_slot = q_buf, pend_buf
            pending_h = Signal()           # the running step has h left to write
            h_free = ~pending_h
        else:
            # The next step's slot (its sequence, and the half its sequence is on), counted as the loader does.
            q_slot, pend_slot = sequence_slot(m, take, n), Signal(self._slot_bits)
            with m.If(take):
                m.d.sync += pend_slot.eq(q_slot)
            writing = Signal(counter_shape(n + 1))    # steps with h left to write
            h_free = writing < n
            m.d.sync += writing.eq(writing + self.h_go - self.done)
        m.d.comb += [
            self.cmd.valid.eq(Mux(q_buf, full[1], full[0])),
            self.cmd.payload.buf.eq(q_slot),
            self.cmd.payload.first.eq(q_flags.first),
            self.h_ready.eq((h_free | self.done) & (~pend_emit | self.credit.room)),
            self.halves.free.valid.eq(self.h_go),
            self.halves.free.payload.eq(pend_buf),
            self.credit.reserve.eq(self.h_go & pend_emit),
        ]
        with m.If(take):
            m.d.sync += [q_buf.eq(~q_buf), pend_flags.eq(kept_flags(q_flags, self._pend)),
                         pend_emit.eq(1 if self._emit_all else q_flags.last), pend_buf.eq(q_buf)]
        step = {"flags": kept_flags(pend_flags, self._flags), "emit": pend_emit, "buf": pend_slot}
        if n == 1:
            with m.If(self.h_go):
                m.d.sync += [pending_h.eq(1), self.first.eq(pend_flags.first), self.step.flags.eq(step["flags"]),
                             self.step.emit.eq(step["emit"]), self.step.buf.eq(step["buf"])]
            with m.Elif(self.done):
                m.d.sync += pending_h.eq(0)
            return m
        # The steps with h left to write, oldest first: a ring of n entries.
        entry = data.StructLayout({"buf": self._slot_bits, "emit": 1, "flags": self._flags})
        ring = [Signal(entry, name=f"step{e}") for e in range(n)]
        w_at, r_at = Signal(counter_shape(n)), Signal(counter_shape(n))
        with m.If(self.h_go):
            m.d.sync += [w_at.eq(Mux(equals(w_at, n - 1), 0, w_at + 1)), self.first.eq(pend_flags.first),
                         self.seq.eq(pend_slot[1:])]
            for e in range(n):
                with m.If(equals(w_at, e)):
                    m.d.sync += [ring[e].buf.eq(step["buf"]), ring[e].emit.eq(step["emit"]),
                                 ring[e].flags.eq(step["flags"])]
        with m.If(self.done):
            m.d.sync += r_at.eq(Mux(equals(r_at, n - 1), 0, r_at + 1))
        with m.Switch(r_at):   # (the last a default: a case per value would leave the counter's others out)
            for e in range(n):
                with (m.Case(e) if e < n - 1 else m.Default()):
                    m.d.comb += [self.step.buf.eq(ring[e].buf), self.step.emit.eq(ring[e].emit),
                                 self.step.flags.eq(ring[e].flags)]
        return m
