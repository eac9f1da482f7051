"""The issue control of :class:`~lstm_hw.generators.mvm.SparseMatVec`: a step's slots, one a cycle, in two phases."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count, counter_shape, equals
from ..model.design import LayerPlan

__all__ = ["command_layout", "slot_layout", "IssueSequencer"]


def command_layout(plan: LayerPlan) -> data.StructLayout:
    """A step's command: its vector-store slot ``buf`` (the half, and with interleaved sequences the sequence
    above it) and, with a recurrent phase, ``first`` (``h_{t-1}`` is zero)."""
    return data.StructLayout({"buf": plan.slot_bits, **({"first": 1} if plan.k_h else {})})


def slot_layout(plan: LayerPlan) -> data.StructLayout:
    """What issues in a cycle: the ROM address ``addr``, the vector-store slot ``buf``, the ``pass``, its ``first`` and
    ``last`` slot; with a recurrent phase, the ``phase`` (1: recurrent) and ``mask`` (read the vector as zero)."""
    recurrent = {"phase": 1, "mask": 1} if plan.k_h else {}
    return data.StructLayout({"addr": counter_shape(plan.passes * plan.k), "buf": plan.slot_bits,
                              "pass": counter_shape(plan.passes),
                              "first": 1, "last": 1, **recurrent})


class IssueSequencer(wiring.Component):
    """A step's slots, one a cycle: pass by pass, the input phase, a wait, then the recurrent phase.

    A slot is one ROM address: a cycle of every PE. A command starts a step
    on vector half ``buf``. The input phase issues ``k_x`` slots per pass
    (ROM addresses ``0 .. passes x k_x - 1``); then the unit waits :attr:`gap`
    cycles at least, and until ``h_ready``, and leaves the wait with ``h_go``;
    the recurrent phase issues ``k_h`` slots per pass (the ROM addresses after
    those). ``mask`` is high through the recurrent phase of a sequence's first
    step (``first``): ``h_{t-1}`` reads as zero. A plan with no ``h`` part runs the
    input phase only.

    The wait lets the partial sums of the input phase land before the
    recurrent phase reads them: :meth:`least_gap` is the shortest for a pipeline.

    Latency: a command taken in cycle ``c`` issues its first slot in cycle ``c +``
    :attr:`latency`; ``h_go`` in cycle ``c`` likewise starts the recurrent phase in
    ``c +`` :attr:`latency`. ``h_go`` comes :attr:`x_cycles` after the command at
    the earliest. Throughput: a slot every cycle while a phase issues; the next
    command is taken the cycle after the last slot.

    Parameters
    ----------
    plan : LayerPlan
        The scheduled layer: ``passes``, ``k_x`` and ``k_h`` (0: no ``h`` part).
    gap : int
        Wait cycles, at least, between the input phase's last slot and ``h_go``.

    Members
    -------
    cmd : In(stream.Signature(command_layout(plan)))
        Start a step. Ready while no step is in progress.
    h_ready : In(1)
        The recurrent phase may start (only with an ``h`` part).
    h_go : Out(1)
        High in the cycle the unit leaves the wait (only with an ``h`` part).
    slot : Out(slot_layout(plan))
        The slot issuing this cycle, per-cycle control without a handshake; ``first``
        and ``last`` are low while none issues.
    """

    #: Cycles from a command (or ``h_go``) to the first slot: the issue registers.
    _LATENCY = 1

    def __init__(self, *, plan: LayerPlan, gap: int):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        self._plan = plan
        self._gap = check_count("gap", gap, 0)
        recurrent = {"h_ready": In(1), "h_go": Out(1)} if plan.k_h else {}
        super().__init__({
            "cmd": In(stream.Signature(command_layout(plan))),
            **recurrent,
            "slot": Out(slot_layout(plan)),
        })

    @classmethod
    def least_gap(cls, plan: LayerPlan, *, sum_read: int, sum_write: int) -> int:
        """The least ``gap`` after which the recurrent phase reads every partial sum the input phase wrote.

        The recurrent phase reads pass ``n``'s partial sum ``sum_read`` cycles after the
        pass's first slot; the input phase writes it ``sum_write`` cycles after the pass's
        last, and a read sees a write of the cycle before. From the command, the read is in
        cycle ``x_cycles + latency + n k_h + sum_read``, the write in ``latency + (n + 1) k_x
        - 1 + sum_write``: linear in ``n``, so the first or the last pass decides. 0 without
        an ``h`` part.
        """
        if not plan.k_h:
            return 0
        need = max((n + 1) * plan.k_x - n * plan.k_h for n in (0, plan.passes - 1)) - plan.passes * plan.k_x
        return max(0, need + sum_write - sum_read - cls._LATENCY)

    @property
    def latency(self) -> int:
        """Cycles from taking a command (or from ``h_go``) to the phase's first slot: the issue registers."""
        return self._LATENCY

    @property
    def gap(self) -> int:
        """Wait cycles, at least, between the input phase's last slot and ``h_go``."""
        return self._gap

    @property
    def x_cycles(self) -> int:
        """Cycles from taking a command to ``h_go``, ``h_ready`` high: the input phase and the gap.

        Without an ``h`` part, the input phase's slots plus :attr:`latency`.
        """
        return self._plan.passes * self._plan.k_x + self.latency + self._gap

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        n_pass, two = p.passes, bool(p.k_h)
        # `phase` is 1 in the recurrent phase; `first` zeroes h_{t-1} there on a sequence's first step.
        busy = Signal()
        waiting = Signal()
        phase = Signal()
        pas = Signal(counter_shape(n_pass))
        c = Signal(counter_shape(max(p.k_x, p.k_h)))
        addr = Signal(counter_shape(n_pass * p.k))
        buf = Signal(p.slot_bits)
        first = Signal()
        last_c = busy & (Mux(phase, equals(c, p.k_h - 1), equals(c, p.k_x - 1)) if two else equals(c, p.k_x - 1))
        take = self.cmd.valid & self.cmd.ready
        m.d.comb += self.cmd.ready.eq(~busy & ~waiting)
        with m.If(take):
            m.d.sync += [busy.eq(1), phase.eq(0), pas.eq(0), c.eq(0), addr.eq(0), buf.eq(self.cmd.payload.buf)]
            if two:
                m.d.sync += first.eq(self.cmd.payload.first)
        with m.Elif(busy):
            m.d.sync += addr.eq(addr + 1)
            with m.If(last_c):
                m.d.sync += c.eq(0)
                with m.If(pas == n_pass - 1):
                    m.d.sync += [busy.eq(0), pas.eq(0)]
                    if two:
                        m.d.sync += waiting.eq(~phase)
                with m.Else():
                    m.d.sync += pas.eq(pas + 1)
            with m.Else():
                m.d.sync += c.eq(c + 1)
        if two:
            # The wait between the phases: `gap` cycles at least, then until h_ready.
            wcount = Signal(counter_shape(self._gap + 1))
            gap_ok = Const(1) if self._gap == 0 else wcount >= self._gap
            with m.If(take):
                m.d.sync += wcount.eq(0)
            with m.Elif(waiting):
                with m.If(~gap_ok):
                    m.d.sync += wcount.eq(wcount + 1)
                with m.If(self.h_ready & gap_ok):
                    m.d.sync += [waiting.eq(0), busy.eq(1), phase.eq(1)]
                    m.d.comb += self.h_go.eq(1)
            m.d.comb += [self.slot.phase.eq(phase), self.slot.mask.eq(first & phase)]
        m.d.comb += [
            self.slot.addr.eq(addr),
            self.slot.buf.eq(buf),
            self.slot["pass"].eq(pas),
            self.slot.first.eq(busy & equals(c, 0)),
            self.slot.last.eq(last_c),
        ]
        return m
