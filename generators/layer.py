"""One LSTM layer: stream of ``x_t`` elements in, stream of ``h_t`` elements out."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import STEP_FLAGS, WordQueue, element_layout
from .fixed import delay
from ..config.schema import h_write_group
from .lanes import CellLanes, GateGather, cell_slots
from .loader import VectorLoader
from ..model.design import Design, LayerPlan
from .mvm import SparseMatVec, load_member
from .output import OutputFIFO
from .recurrence import HWriter, StepControl

__all__ = ["LSTMLayer"]


class LSTMLayer(wiring.Component):
    """One LSTM layer over a stream of vector elements.

    ``i`` carries ``x_t`` in beats of ``io_lanes`` elements (``ceil(I / io_lanes)``
    per timestep, see :func:`element_layout`; ``last`` on the final beat of a
    sequence); ``o`` carries ``h_t`` likewise (``ceil(H / io_lanes)`` beats
    per emitted timestep). A sequence starts from ``h = c = 0``.

    Structure, a component each: a :class:`VectorLoader` writes ``x_{t+1}``
    into the free half of the :class:`SparseMatVec` vector store while step
    ``t`` computes. The :class:`StepControl` commands a step's input phase
    (``W_ih x + b``) once its ``x`` is loaded, overlapping the previous
    step's tail, and lets its recurrent phase start in the cycle the previous
    step's last ``h`` is written back (its first vector read comes after the
    write lands) if the :class:`OutputFIFO` has room for the whole step
    (credit-based, so the compute pipeline never stalls). The
    :class:`GateGather` regroups the pre-activations into whole hidden units
    (the four gates of unit ``j``), without a register, for the
    ``max(1, rows / 4)`` lanes of :class:`CellLanes`, each with its own
    cell-state memory, read while the gates are in the activation units.
    The lanes' ``h`` values of a pass are consecutive columns, so (the banks
    being interleaved) in different banks: with at least as many banks as
    lanes the :class:`HWriter` puts them into the vector store (for
    ``t + 1``) in one cycle and into the output FIFO as one group; otherwise
    a :class:`WordQueue` hands them on :attr:`h_group` a cycle (the largest
    divisor of the lanes that is at most ``banks`` and fits ``io_lanes``,
    see :func:`~lstm_hw.config.schema.h_group`), written and sent on as
    such groups. The ``h`` writes have the store's write ports before the
    loader's. The FIFO hands out a beat per cycle.

    Latency and throughput: see :attr:`group_cycles`, :attr:`stream_cycles`
    and :attr:`first_output_cycles`; with ready inputs and outputs, a
    timestep takes ``passes x k_h`` recurrent issue cycles plus the longer of
    the input phase and the pipeline tail (:attr:`tail_cycles`; with
    ``plan.interleave`` sequences taking turns, their steps together cover
    it), or the element transfers if that is longer: ``I`` loads plus the
    ``h`` writes through the vector store's write port (``ceil(H / h_group)``
    cycles), and ``H`` outputs.

    Parameters
    ----------
    design : Design
        Formats and activation tables.
    plan : LayerPlan
        This layer's schedule and weights.
    emit_all : bool
        Emit ``h_t`` of every step; otherwise only of a sequence's last step.
    rom_files : str, optional
        The weight ROMs as modules of their own loading ``.mem`` files (:class:`SparseMatVec`), for
        emitting Verilog; the module name prefix of the layer's MVM.
    flags : StructLayout
        The step flags ``o`` carries, those its consumers need (:data:`~.beats.STEP_FLAGS` or a subset);
        ``i`` carries these, ``first``, and ``last`` unless ``emit_all`` (:attr:`in_flags`).

    Members
    -------
    i : In(stream.Signature(element_layout(activation, io_lanes, flags=in_flags)))
    o : Out(stream.Signature(element_layout(activation, io_lanes, flags=flags)))
    load : In(write layout)
        Only with ``hardware.weights = "ram"``: the weight loader's writes, to the matrix unit (:class:`SparseMatVec`).
    """

    def __init__(self, *, design: Design, plan: LayerPlan, emit_all: bool = True,
                 rom_files: str | None = None, flags: data.StructLayout = STEP_FLAGS):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {design!r}")
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        self._plan = plan
        self._emit_all = bool(emit_all)
        hw, act = design.config.hardware, design.io_format.shape()
        # The h_j of one pass are consecutive columns, so up to `banks` of them are in different banks
        # and can be written in one cycle: all of a pass's, or groups of h_group (chosen to fit io_lanes;
        # the config checks io_lanes against a whole pass's).
        self._h_group = group = h_write_group(design.config)
        self._lanes = lanes = hw.io_lanes
        self._control = StepControl(emit_all=self._emit_all, flags=flags, interleave=plan.interleave)
        self._loader = VectorLoader(plan=plan, shape=act, lanes=lanes, flags=self._control.in_flags)
        self._writer = HWriter(plan=plan, shape=act, group=group, lanes=lanes, flags=flags)
        # Write ports into the vector store: a beat's elements, or a pass's h values, in one cycle.
        self._mvm = SparseMatVec(plan=plan, quant=design.config.quant, group_writes=max(group, lanes) - 1,
                                 chain=hw.mac_chain, rom_files=rom_files, writable=hw.weights == "ram",
                                 max_sum_bits=hw.sum_bits)
        self._cells = CellLanes(design=design, plan=plan)
        results = self._mvm.signature.members["o"].signature
        self._gather = GateGather(plan=plan, gates=self._cells.gates, results=results)
        # With more cell lanes than h writes a cycle, their h queue up and go h_group a cycle.
        u_lanes = plan.units_per_pass
        self._serial = (WordQueue(shape=act, lanes=u_lanes, per=group, depth=cell_slots(plan), flags=None, ok=True,
                                  always_ready=True) if group < u_lanes else None)
        # Two steps' words (one more per further interleaved sequence, whose steps may be writing too):
        # the credit counts every word a started step will write.
        self._ofifo = OutputFIFO(shape=act, lanes=lanes, group=group, groups=self._writer.writes,
                                 steps=1 + plan.interleave,
                                 registered=True, flags=flags)
        super().__init__({"i": In(stream.Signature(element_layout(act, lanes, flags=self.in_flags))),
                          "o": Out(stream.Signature(element_layout(act, lanes, flags=flags))),
                          **load_member(self._mvm)})

    @property
    def plan(self) -> LayerPlan:
        return self._plan

    @property
    def mvm(self) -> SparseMatVec:
        return self._mvm

    @property
    def in_flags(self) -> data.StructLayout:
        """The step flags ``i`` carries: those of ``o``, ``first``, and ``last`` unless every step emits."""
        return self._control.in_flags

    @property
    def h_group(self) -> int:
        """``h`` values written per cycle: a pass's ``rows / 4`` cell lanes' when there are at least as many
        banks, else the largest divisor of them that is at most ``banks`` and fits ``io_lanes``."""
        return self._h_group

    @property
    def step_words(self) -> int:
        """Output FIFO words per emitted step."""
        return self._ofifo.words

    @property
    def fifo_depth(self) -> int:
        """Output FIFO depth: two steps' words (the credit counts every word a started step will write)."""
        return self._ofifo.depth

    @property
    def parallel_h(self) -> bool:
        """Several ``h_j`` go into the vector store in one cycle (:attr:`h_group` > 1)."""
        return self._h_group > 1

    @property
    def _h_stages(self) -> dict[str, int]:
        """The stages from a step's ``h_go`` to a pass's ``h`` written, and the cycles each adds: the
        recurrent phase issues from the next cycle; a pass's issue cycles, and the queue that
        serialises the ``h`` where there is one, come on top (:meth:`h_write_times`)."""
        return {"h_go": 1, "mvm": self._mvm.latency, "gather": self._gather.latency, "cells": self._cells.latency,
                "writer": self._writer.latency}

    def h_write_times(self) -> list[int]:
        """Cycle of each ``h_j`` write, counted from the step's ``h_go`` (its recurrent phase starts next cycle)."""
        p, group = self._plan, self._h_group
        u_lanes, per_unit = p.units_per_pass, max(1, 4 // p.rows)
        base = sum(self._h_stages.values())
        times, free = [], 0
        for j in range(0, p.hidden, group):   # a write: units j .. j + group - 1 of one pass
            last_pass = (j // u_lanes + 1) * per_unit - 1 if p.rows < 4 else j // u_lanes
            ready = base + (last_pass + 1) * p.k_h - 1
            if self._serial is not None:   # a group a cycle, after the queue's latency
                ready = max(ready + self._serial.latency, free)
            times += [ready] * min(group, p.hidden - j)
            free = ready + 1
        return times

    def output_times(self) -> list[int]:
        """Cycle of each output beat on ``o``, counted like :meth:`h_write_times`, ``o`` always ready, empty FIFO.

        A beat is ready once its last ``h`` is written (packed beats go into the FIFO then; a
        pass's group goes in with its last ``h`` too), and the FIFO gives one beat per cycle.
        """
        H, lanes, writes = self._plan.hidden, self._lanes, self.h_write_times()
        out, free = [], 0
        for beat in range(-(-H // lanes)):
            t = writes[min((beat + 1) * lanes, H) - 1]
            out.append(max(t + self._ofifo.latency, free))
            free = out[-1] + 1
        return out

    @property
    def write_cycles(self) -> int:
        """Cycles per step in which ``h`` writes hold the vector store's write port (the loader waits)."""
        return self._writer.writes

    @property
    def stream_cycles(self) -> int:
        """Cycles per step the streams need: ``ceil(I / io_lanes)`` input beats (which wait out the
        ``h`` writes), ``ceil(H / io_lanes)`` output beats."""
        p, lanes = self._plan, self._lanes
        load = -(-p.input_size // lanes) + self.write_cycles
        return max(load, -(-p.hidden // lanes)) if self._emit_all else load

    @property
    def group_cycles(self) -> int:
        """Cycles per timestep of every interleaved sequence when compute-bound: ``h_go`` to the ``h_go``
        of the same sequence's next step.

        After a step's recurrent phase the next step's command (taken the cycle after its
        last issue) runs its input phase, so ``h_go`` follows ``h_go`` by :attr:`issue_period`
        cycles at least; and a step's ``h_go`` comes in the cycle its sequence's step before
        writes its last ``h`` or later (the first read of its recurrent phase sees that write).
        """
        n = self._plan.interleave
        return max(n * self.issue_period, self.h_write_times()[-1])

    @property
    def issue_period(self) -> int:
        """Cycles from one ``h_go`` to the next at the least: the recurrent phase, the command's hand-over
        cycle, the next input phase and its gap."""
        p = self._plan
        return p.passes * p.k_h + 1 + self._mvm.x_cycles

    @property
    def tail_wait_cycles(self) -> int:
        """Cycles per timestep of every interleaved sequence that recurrent phases wait for ``h`` beyond their
        issue periods: the part of :attr:`tail_cycles` the input phases, their gaps and the command's
        hand-over cycle (and the other sequences' steps) do not hide."""
        return self.group_cycles - self._plan.interleave * self.issue_period

    @property
    def phase_gap_cycles(self) -> int:
        """The least wait between the input and recurrent phases (:attr:`SparseMatVec.input_gap`)."""
        return self._mvm.input_gap

    @property
    def tail_cycles(self) -> int:
        """Cycles from a step's last recurrent issue cycle to its last ``h`` write: what the input phase hides."""
        p = self._plan
        return self.h_write_times()[-1] - p.passes * p.k_h

    @property
    def first_output_cycles(self) -> int:
        """Cycles from a step's start command to its first ``h`` on ``o`` (idle layer, empty FIFO)."""
        return self._mvm.x_cycles + self.output_times()[0]

    @property
    def last_output_cycles(self) -> int:
        """Cycles from a step's start command to its last ``h`` on ``o`` (idle layer, empty FIFO, ``o`` ready)."""
        return self._mvm.x_cycles + self.output_times()[-1]

    def elaborate(self, platform):
        m = Module()
        mvm, loader, writer, control = self._mvm, self._loader, self._writer, self._control
        if "load" in self.signature.members:
            m.d.comb += mvm.load.eq(self.load)
        gather, cells, ofifo = self._gather, self._cells, self._ofifo
        for name, unit in {"mvm": mvm, "loader": loader, "writer": writer, "control": control, "gather": gather,
                           "cells": cells, "ofifo": ofifo}.items():
            m.submodules[name] = unit

        # x_t into the vector store; the h writes have its ports first (the loader waits for them:
        # its ports beyond theirs go straight to the store).
        wiring.connect(m, wiring.flipped(self.i), loader.i)
        for e, load in enumerate(loader.wr):
            wiring.connect(m, load, writer.load[e] if e < len(writer.load) else mvm.write_ports[e])
        for wr, port in zip(writer.wr, mvm.write_ports):
            wiring.connect(m, wr, port)
        m.d.comb += loader.hold.eq(writer.busy)

        # Steps onto the matrix unit, and its pre-activations through the cell lanes to the h writer.
        wiring.connect(m, loader.halves, control.halves)
        wiring.connect(m, control.cmd, mvm.cmd)
        m.d.comb += [mvm.h_ready.eq(control.h_ready), control.h_go.eq(mvm.h_go), control.done.eq(writer.done)]
        if self._plan.interleave == 1:   # the step in the cells holds from its h_go past its last h
            m.d.comb += cells.first.eq(control.first)
        else:    # several steps in the pipeline: each pass's step goes down it with the pass's results
            at = mvm.latency + gather.latency
            m.d.comb += [cells.first.eq(delay(m, control.first, at, name="first")),
                         cells.seq.eq(delay(m, control.seq, at, name="seq"))]
        wiring.connect(m, control.step, writer.step)
        wiring.connect(m, mvm.o, gather.i)
        wiring.connect(m, gather.o, cells.i)
        if self._serial is not None:
            m.submodules.serial = self._serial
            wiring.connect(m, cells.o, self._serial.i)
            wiring.connect(m, self._serial.o, writer.i)
        else:
            wiring.connect(m, cells.o, writer.i)

        # h of emitting steps out through the FIFO, whose credit the control reserves.
        wiring.connect(m, control.credit, ofifo.credit)
        wiring.connect(m, writer.o, ofifo.i)
        wiring.connect(m, ofifo.o, wiring.flipped(self.o))
        return m
