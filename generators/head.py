"""The dense head: ``y_t = W h_t + b`` on every ``h_t`` the last layer emits."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .beats import PORT_FLAGS, element_layout
from .fixed import delay, equals
from .loader import VectorLoader
from ..model.design import Design
from .mvm import SparseMatVec, load_member
from .output import OutputFIFO

__all__ = ["DenseHead"]


class DenseHead(wiring.Component):
    """The head ``nn.Linear(H, O)`` over a stream of ``h_t`` elements, bank-balanced sparse.

    ``i`` carries ``h_t`` in beats of ``io_lanes`` elements (``ceil(H / io_lanes)``
    per timestep, the step's ``tlast`` on its last beat, :data:`~.beats.PORT_FLAGS`,
    the only flag the head needs); ``o`` carries ``y_t`` likewise
    (``ceil(O / io_lanes)`` beats per timestep, with the same flag), in the output format ``quant.output``;
    results are packed into beats as they come, one per pass.

    Structure: a :class:`SparseMatVec` with one row lane and ``banks``
    processing elements (one multiplier per bank, each with its field of the
    shared weight/index ROM and its copy of its vector bank, DSP48E1-shaped
    registers, adder tree, bias, one rounding and saturation into the output
    format). A :class:`VectorLoader` writes ``h_{t+1}`` into the free half
    of the double-buffered vector store while step ``t`` computes; a step
    starts once its ``h`` is loaded and the :class:`OutputFIFO` has room for
    its ``O`` results counting those still in flight (credit-based, so the
    pipeline never stalls and ``o`` may apply any backpressure); the FIFO
    packs the results into beats as they come.

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
    i : In(stream.Signature(element_layout(activation, io_lanes, flags=PORT_FLAGS)))
    o : Out(stream.Signature(element_layout(output, io_lanes, flags=PORT_FLAGS)))
    load : In(write layout)
        Only with ``hardware.weights = "ram"``: the weight loader's writes, to the matrix unit (:class:`SparseMatVec`).
    """

    def __init__(self, *, design: Design, rom_files: str | None = None):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {design!r}")
        if design.head is None:
            raise ValueError("design has no head (model.output_size is 0)")
        self._design = design
        self._plan = design.head
        self._lanes = lanes = design.config.hardware.io_lanes   # at most banks (the config checks)
        self._loader = VectorLoader(plan=self._plan, shape=design.io_format.shape(), lanes=lanes, flags=PORT_FLAGS)
        self._mvm = SparseMatVec(plan=self._plan, quant=design.unit_quant(self._plan),
                                 chain=design.config.hardware.mac_chain,
                                 group_writes=lanes - 1, rom_files=rom_files,
                                 writable=design.config.hardware.weights == "ram",
                                 max_sum_bits=design.config.hardware.sum_bits)
        # One step's beats plus every result that can be in flight: no credit stall while o is ready.
        self._ofifo = OutputFIFO(shape=design.output_format.shape(), lanes=lanes, group=1, groups=self._plan.outputs,
                                 steps=1, slack=self._mvm.latency + 4, registered=False, flags=PORT_FLAGS)
        super().__init__({
            "i": In(stream.Signature(element_layout(design.io_format.shape(), lanes, flags=PORT_FLAGS))),
            "o": Out(stream.Signature(element_layout(design.output_format.shape(), lanes, flags=PORT_FLAGS))),
            **load_member(self._mvm),
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
        return self._ofifo.words

    @property
    def fifo_depth(self) -> int:
        """Output FIFO depth: a step's beats and every result that can be in flight."""
        return self._ofifo.depth

    @property
    def first_output_cycles(self) -> int:
        """Cycles from a step's start command to its first beat on ``o`` (empty FIFO)."""
        # The beat is complete with result min(io_lanes, O) - 1; issue, pipeline, FIFO write to read.
        return min(self._lanes, self._plan.outputs) * self._plan.k + self._mvm.latency + self._ofifo.latency

    def elaborate(self, platform):
        m = Module()
        mvm, loader, ofifo = self._mvm, self._loader, self._ofifo
        m.submodules.mvm, m.submodules.loader, m.submodules.ofifo = mvm, loader, ofifo
        if "load" in self.signature.members:
            m.d.comb += mvm.load.eq(self.load)
        wiring.connect(m, wiring.flipped(self.i), loader.i)
        for load, port in zip(loader.wr, mvm.write_ports):
            wiring.connect(m, load, port)
        wiring.connect(m, ofifo.o, wiring.flipped(self.o))

        # -- step control: the next step issues right after the running one ----
        full, flags = loader.halves.full, loader.halves.flags
        running = Signal()
        q_buf = Signal()                     # vector half of the running (or next) step
        step_flags = Signal(PORT_FLAGS)      # the issuing step's flags
        step_end = running & mvm.cmd.ready   # the running step has issued every weight
        nxt = Mux(step_end, ~q_buf, q_buf)
        start = Signal()
        m.d.comb += [
            # mvm.cmd is ready whenever running is low or step_end is high, so valid never waits.
            start.eq((~running | step_end) & Mux(nxt, full[1], full[0]) & ofifo.credit.room),
            mvm.cmd.valid.eq(start),
            mvm.cmd.payload.buf.eq(nxt),
            ofifo.credit.reserve.eq(start),
            loader.halves.free.valid.eq(step_end),   # the step has read its h
            loader.halves.free.payload.eq(q_buf),
        ]
        with m.If(step_end):
            m.d.sync += [running.eq(0), q_buf.eq(~q_buf)]
        with m.If(start):
            m.d.sync += [running.eq(1), step_flags.eq(Mux(nxt, flags[1], flags[0]))]

        # -- results into the FIFO, packed into beats as they come, one per pass ----
        # step_flags are stable over a step's issue cycles; a pass leaves mvm ``latency`` cycles after its last one.
        m.d.comb += [
            ofifo.i.valid.eq(mvm.o.valid),
            ofifo.i.payload.data[0].eq(mvm.o.payload.z[0]),
            ofifo.i.payload.end.eq(equals(mvm.o.payload["pass"], self._plan.outputs - 1)),
            ofifo.i.payload.flags.eq(delay(m, step_flags, mvm.latency, name="step_flags")),
        ]
        return m
