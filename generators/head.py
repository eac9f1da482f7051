"""The dense head: ``y_t = W h_t + b`` on every ``h_t`` the last layer emits."""

from dataclasses import replace

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .fixed import delay, equals
from .layer import element_layout, pack_beat
from ..model.design import Design
from .mvm import SparseMatVec, group_slot, last_beat_lanes, vector_cursor

__all__ = ["DenseHead"]


class DenseHead(wiring.Component):
    """The head ``nn.Linear(H, O)`` over a stream of ``h_t`` elements, bank-balanced sparse.

    ``i`` carries ``h_t`` in beats of ``io_lanes`` elements (``ceil(H / io_lanes)``
    per timestep, ``last`` on the final beat of a sequence); ``o`` carries
    ``y_t`` likewise (``ceil(O / io_lanes)`` beats per timestep, ``last`` on
    the sequence's last output beat), in the output format ``quant.output``;
    results are packed into beats as they come, one per pass.

    Structure: a :class:`SparseMatVec` with one row lane and ``banks``
    processing elements (one multiplier per bank, each with its field of the
    shared weight/index ROM and its copy of its vector bank, DSP48E1-shaped
    registers, adder tree, bias, one rounding and saturation into the output
    format). A loader
    writes ``h_{t+1}`` into the free half of the double-buffered vector store
    while step ``t`` computes; a step starts once its ``h`` is loaded and the
    output FIFO has room for its ``O`` results counting those still in flight
    (credit-based, so the pipeline never stalls and ``o`` may apply any
    backpressure).

    Throughput: one timestep every ``max(O k + 1, ceil(H / io_lanes))`` cycles
    with a ready ``o`` and ``h`` arriving back to back: ``O k + 1`` to compute
    (``k`` stored weights per bank of a row, one issue cycle each, plus one
    command cycle; :attr:`step_cycles`), ``ceil(H / io_lanes)`` beats to load
    the next ``h`` (:attr:`stream_cycles`). Steps issue back to back. Latency:
    ``1 +`` :attr:`first_output_cycles` cycles from the last ``h`` element of a
    step to its first output, ``k + 10`` to ``k + 18`` depending on ``banks``.

    Parameters
    ----------
    design : Design
        A design with a head (``design.head``).
    rom_files : str, optional
        The weight ROMs as modules of their own loading ``.mem`` files (:class:`SparseMatVec`), for
        emitting Verilog; the module name prefix of the head's MVM.

    Members
    -------
    i : In(stream.Signature(element_layout(activation, io_lanes)))
    o : Out(stream.Signature(element_layout(output, io_lanes)))
    """

    def __init__(self, *, design: Design, rom_files: str | None = None):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {design!r}")
        if design.head is None:
            raise ValueError("design has no head (model.output_size is 0)")
        self._design = design
        self._plan = design.head
        quant = design.config.quant
        # The matrix unit rounds and saturates its sums into ``preact``; for the head that is the output format.
        self._lanes = lanes = design.config.hardware.io_lanes   # at most banks (the config checks)
        self._mvm = SparseMatVec(plan=self._plan, quant=replace(quant, preact=design.output_format),
                                 chain=design.config.hardware.mac_chain,
                                 group_writes=lanes - 1, rom_files=rom_files)
        super().__init__({
            "i": In(stream.Signature(element_layout(design.io_format.shape(), lanes))),
            "o": Out(stream.Signature(element_layout(design.output_format.shape(), lanes))),
        })

    @property
    def design(self) -> Design:
        return self._design

    @property
    def mvm(self) -> SparseMatVec:
        return self._mvm

    @property
    def step_cycles(self) -> int:
        """Cycles from one step's start to the next when compute-bound: ``O k + 1``."""
        return self._plan.issue_cycles + 1

    @property
    def stream_cycles(self) -> int:
        """The loader's bound on a step: ``ceil(H / io_lanes)`` input beats."""
        return -(-self._plan.input_size // self._lanes)

    @property
    def step_beats(self) -> int:
        """Output beats per step: ``ceil(O / io_lanes)``."""
        return -(-self._plan.outputs // self._lanes)

    @property
    def fifo_depth(self) -> int:
        # One step's beats plus every result that can be in flight: no credit stall while o is ready.
        return self.step_beats + self._mvm.latency + 4

    @property
    def first_output_cycles(self) -> int:
        """Cycles from a step's start command to its first beat on ``o`` (empty FIFO)."""
        # The beat is complete with result min(io_lanes, O) - 1; issue, pipeline, FIFO write to read.
        return min(self._lanes, self._plan.outputs) * self._plan.k + self._mvm.latency + 2

    def elaborate(self, platform):
        m = Module()
        p = self._plan
        H, O = p.input_size, p.outputs
        m.submodules.mvm = mvm = self._mvm

        # -- output FIFO, and the credit of results not yet read --------------
        depth = self.fifo_depth
        m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=len(self.o.payload.as_value()), depth=depth)
        lanes, beats = self._lanes, self.step_beats
        m.d.comb += [
            self.o.valid.eq(ofifo.r_rdy),
            self.o.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.o.ready),
        ]
        pending = Signal(range(depth + 1))   # beats reserved by started steps, not yet read from o

        # -- loader: h_t elements into the free vector half --------------------
        x_full = Signal(2)                   # half n holds a complete h
        x_last = Signal(2)                   # ... of a sequence's last output step
        loading = Signal()
        l_buf, l_bank, l_addr, l_end = vector_cursor(m, loading, length=H, plan=p, lanes=lanes)
        in_last_lanes = last_beat_lanes(H, lanes)
        m.d.comb += [
            self.i.ready.eq(~Mux(l_buf, x_full[1], x_full[0])),
            loading.eq(self.i.valid & self.i.ready),
        ]
        for e, port in enumerate(mvm.write_ports):
            bank, addr = group_slot(p, l_bank, l_addr, e)
            m.d.comb += [
                port.valid.eq(loading & (1 if e < in_last_lanes else ~l_end)),
                port.payload.buf.eq(l_buf),
                port.payload.bank.eq(bank),
                port.payload.addr.eq(addr),
                port.payload.data.eq(self.i.payload.data[e]),
            ]

        # -- step control: the next step issues right after the running one ----
        running = Signal()
        q_buf = Signal()                     # vector half of the running (or next) step
        step_last = Signal()                 # the issuing step's x_last
        step_end = running & mvm.cmd.ready   # the running step has issued every weight
        nxt = Mux(step_end, ~q_buf, q_buf)
        start = Signal()
        m.d.comb += [
            # mvm.cmd is ready whenever running is low or step_end is high, so valid never waits.
            start.eq((~running | step_end) & Mux(nxt, x_full[1], x_full[0]) & (pending <= depth - beats)),
            mvm.cmd.valid.eq(start),
            mvm.cmd.payload.buf.eq(nxt),
        ]
        with m.If(step_end):
            m.d.sync += [running.eq(0), q_buf.eq(~q_buf)]
        with m.If(start):
            m.d.sync += [running.eq(1), step_last.eq(Mux(nxt, x_last[1], x_last[0]))]
        for half in range(2):
            with m.If(loading & l_end & (l_buf == half)):
                m.d.sync += [x_full[half].eq(1), x_last[half].eq(self.i.payload.last)]
            with m.Elif(step_end & (q_buf == half)):
                m.d.sync += x_full[half].eq(0)
        read = self.o.valid & self.o.ready
        m.d.sync += pending.eq(pending + Mux(start, beats, 0) - read)

        # -- results into the FIFO ----------------------------------------------
        # step_last is stable over a step's issue cycles; a pass leaves mvm ``latency`` cycles after its last one.
        # Results are packed into beats as they come, one per pass: `lanes` a beat.
        out_last = delay(m, step_last, mvm.latency, name="step_last")
        y = mvm.o.payload.z[0]
        out_end = equals(mvm.o.payload["pass"], O - 1)
        w_beat = Signal(element_layout(self._design.output_format.shape(), lanes))
        beat_full = pack_beat(m, w_beat.data, [y], mvm.o.valid, out_end, name="y")
        m.d.comb += [
            w_beat.last.eq(out_last & out_end),
            ofifo.w_data.eq(w_beat),
            ofifo.w_en.eq(mvm.o.valid & (beat_full | out_end)),
        ]
        return m
