"""One LSTM layer: stream of ``x_t`` elements in, stream of ``h_t`` elements out."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .cell import CellUpdate
from ..config.schema import h_write_group
from .fixed import counter_shape, delay_taps, equals
from ..model.design import Design, LayerPlan
from .mvm import SparseMatVec, group_slot, last_beat_lanes, vector_cursor

__all__ = ["LSTMLayer", "element_layout", "pack_beat"]


def element_layout(shape, lanes: int = 1) -> data.StructLayout:
    """A beat of vector elements on a stream: ``lanes`` values and ``last`` (last beat of a sequence).

    Each timestep's elements fill beats in order, ``data[0]`` first; its last
    beat may be partial, with the unused lanes zero.
    """
    return data.StructLayout({"data": data.ArrayLayout(shape, lanes), "last": 1})


def pack_beat(m, beat_data, vals, take, end, *, name: str):
    """Pack groups of ``len(vals)`` values, one group per cycle with ``take``, into ``beat_data``.

    ``beat_data`` (an array of ``lanes`` elements, a multiple of the group)
    shows the groups taken so far in this beat, the current one in its place
    and zeros after it. Returns ``full``: high while the current group
    completes the beat. The beat ends there or with ``end`` (a step's last
    group), and the next group starts a new one.
    """
    lanes, group = len(beat_data), len(vals)
    chunks = lanes // group
    if chunks == 1:
        m.d.comb += [beat_data[e].eq(vals[e]) for e in range(lanes)]
        return Const(1)
    pos = Signal(counter_shape(chunks), name=f"{name}_pos")     # the group's place in the beat
    held = [Signal.like(beat_data[e], name=f"{name}_held{e}") for e in range(lanes - group)]
    full = pos == chunks - 1
    for c in range(chunks):   # groups already held, this one, zeros after it
        for e in range(group):
            later = 0 if c == chunks - 1 else Mux(pos > c, held[c * group + e], 0)
            m.d.comb += beat_data[c * group + e].eq(Mux(equals(pos, c), vals[e], later))
    with m.If(take):
        m.d.sync += pos.eq(Mux(full | end, 0, pos + 1))
        for c in range(chunks - 1):
            with m.If(equals(pos, c)):
                m.d.sync += [held[c * group + e].eq(vals[e]) for e in range(group)]
    return full


class LSTMLayer(wiring.Component):
    """One LSTM layer over a stream of vector elements.

    ``i`` carries ``x_t`` in beats of ``io_lanes`` elements (``ceil(I / io_lanes)``
    per timestep, see :func:`element_layout`; ``last`` on the final beat of a
    sequence); ``o`` carries ``h_t`` likewise (``ceil(H / io_lanes)`` beats
    per emitted timestep). A sequence starts from ``h = c = 0``.

    Structure: a loader writes ``x_{t+1}`` into the free half of the
    :class:`SparseMatVec` vector store while step ``t`` computes; a step's
    input phase (``W_ih x + b``) starts once its ``x`` is loaded, overlapping
    the previous step's tail, and its recurrent phase in the cycle the
    previous step's last ``h`` is written back (its first vector read comes
    after the write lands) if the output FIFO has room for the whole step
    (credit-based, so the compute pipeline never stalls). Pre-activations
    are gathered into whole hidden units (the four gates of unit ``j``),
    without a register, and go through ``max(1, rows / 4)``
    :class:`CellUpdate` lanes, each with its own cell-state memory, read
    while the gates are in the activation units. The lanes' ``h`` values of a pass are consecutive
    columns, so (the banks being interleaved) in different banks: with at
    least as many banks as lanes they go into the vector store (for ``t + 1``)
    in one cycle and into the output FIFO as one word; otherwise they are
    serialised one per cycle. The FIFO hands out one element per cycle.

    Latency and throughput: see :attr:`step_cycles`, :attr:`stream_cycles`
    and :attr:`first_output_cycles`; with ready inputs and outputs, a
    timestep takes ``passes x k_h`` recurrent issue cycles plus the longer of
    the input phase and the pipeline tail (:attr:`tail_cycles`), or the
    element transfers if that is longer: ``I`` loads plus the ``h`` writes
    through the vector store's write port (``H`` cycles, or ``passes`` when
    the ``rows / 4`` cell lanes write a pass's ``h`` at once, which they do
    when there are at least as many banks as lanes), and ``H`` outputs.

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

    Members
    -------
    i : In(stream.Signature(element_layout(activation, io_lanes)))
    o : Out(stream.Signature(element_layout(activation, io_lanes)))
    """

    def __init__(self, *, design: Design, plan: LayerPlan, emit_all: bool = True,
                 rom_files: str | None = None):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {design!r}")
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        self._design = design
        self._plan = plan
        self._emit_all = bool(emit_all)
        # The h_j of one pass are consecutive columns, so in different banks when there are
        # at least as many banks as lanes: then they are written in one cycle. The config
        # checks io_lanes against that group (and the banks).
        self._h_group = h_write_group(design.config)
        self._parallel_h = self._h_group > 1
        self._lanes = lanes = design.config.hardware.io_lanes
        # Write ports into the vector store: a beat's elements, or a pass's h values, in one cycle.
        self._mvm = SparseMatVec(plan=plan, quant=design.config.quant, group_writes=max(self._h_group, lanes) - 1,
                                 chain=design.config.hardware.mac_chain, rom_files=rom_files)
        self._cells = [CellUpdate(tables=design.tables, math=design.cell) for _ in range(plan.units_per_pass)]
        elem = element_layout(design.io_format.shape(), lanes)
        super().__init__({"i": In(stream.Signature(elem)), "o": Out(stream.Signature(elem))})

    @property
    def plan(self) -> LayerPlan:
        return self._plan

    @property
    def mvm(self) -> SparseMatVec:
        return self._mvm

    @property
    def h_group(self) -> int:
        """``h`` values written per cycle: a pass's ``rows / 4`` when :attr:`parallel_h`, else 1."""
        return self._h_group

    @property
    def _packs(self) -> bool:
        """The FIFO holds output beats, packed from ``h`` groups as they are written (``h_group``
        divides ``io_lanes``); otherwise it holds a pass's ``h`` group and hands it out in beats."""
        return self._lanes % self.h_group == 0

    @property
    def step_words(self) -> int:
        """Output FIFO words per emitted step."""
        writes = self._plan.passes if self._parallel_h else self._plan.hidden
        return -(-writes // (self._lanes // self.h_group)) if self._packs else writes

    @property
    def fifo_depth(self) -> int:
        """Output FIFO depth: two steps' words (the credit counts every word a started step will write)."""
        return 2 * self.step_words

    @property
    def parallel_h(self) -> bool:
        """A pass's ``h_j`` (one per cell lane) go into the vector store in one cycle."""
        return self._parallel_h

    @property
    def _fifo_latency(self) -> int:
        return 2  # SyncFIFOBuffered: write to read data

    @property
    def _serial_latency(self) -> int:
        return 0 if self._plan.units_per_pass == 1 or self._parallel_h else 2  # FIFO write to first read

    def h_write_times(self) -> list[int]:
        """Cycle of each ``h_j`` write, counted from the step's ``h_go`` (its recurrent phase starts next cycle)."""
        p = self._plan
        u_lanes, per_unit = p.units_per_pass, max(1, 4 // p.rows)
        base = 1 + self._mvm.latency + self._cells[0].latency   # the gather adds no register
        times, free = [], 0
        for j in range(p.hidden):
            last_pass = (j // u_lanes + 1) * per_unit - 1 if p.rows < 4 else j // u_lanes
            ready = base + (last_pass + 1) * p.k_h - 1
            if u_lanes > 1 and not self._parallel_h:
                ready = max(ready + self._serial_latency, free)
            times.append(ready)
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
            out.append(max(t + self._fifo_latency, free))
            free = out[-1] + 1
        return out

    @property
    def write_cycles(self) -> int:
        """Cycles per step in which ``h`` writes hold the vector store's write port (the loader waits)."""
        return self._plan.passes if self._parallel_h else self._plan.hidden

    @property
    def stream_cycles(self) -> int:
        """Cycles per step the streams need: ``ceil(I / io_lanes)`` input beats (which wait out the
        ``h`` writes), ``ceil(H / io_lanes)`` output beats."""
        p, lanes = self._plan, self._lanes
        load = -(-p.input_size // lanes) + self.write_cycles
        return max(load, -(-p.hidden // lanes)) if self._emit_all else load

    @property
    def step_cycles(self) -> int:
        """Cycles per timestep when compute-bound: one ``h_go`` to the next.

        After a step's recurrent phase the next step's command (taken the cycle after its
        last issue) runs its input phase; the next ``h_go`` comes when that is done or in
        the cycle this step's last ``h`` is written, whichever is later (the first read
        of the next recurrent phase sees that write).
        """
        p = self._plan
        return p.passes * p.k_h + 1 + self._mvm.x_cycles + self.tail_wait_cycles

    @property
    def tail_wait_cycles(self) -> int:
        """Cycles per step the next recurrent phase waits for this step's last ``h`` after the
        input phase and its gap are done: the part of :attr:`tail_cycles` they and the command's
        hand-over cycle do not hide."""
        return max(0, self.tail_cycles - 1 - self._mvm.x_cycles)

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
        p, d = self._plan, self._design
        q = d.config.quant
        H, I, B = p.hidden, p.input_size, p.bank_width
        act = q.activation.shape()
        m.submodules.mvm = mvm = self._mvm
        for u, cell in enumerate(self._cells):
            m.submodules[f"cell{u}"] = cell

        u_lanes = p.units_per_pass
        parallel = self._parallel_h
        lanes, group = self._lanes, self.h_group
        n_writes = p.passes if parallel else H   # h writes per step, `group` values each

        # -- h writer: into the vector store (for t + 1) and the FIFO ----------
        # Serial: one h_j per cycle. Parallel: the u_lanes h_j of a pass at once.
        h_valid = Signal()             # a write this cycle (serial: h_data; parallel: lane_hs)
        h_data = Signal(act)
        j = Signal(counter_shape(n_writes))
        h_bank = Signal(counter_shape(p.banks))           # h_j: bank j % banks, entry x_width + j // banks
        h_addr = Signal(counter_shape(B), init=p.x_width)
        q_buf = Signal()               # vector half of the next step to command
        step_buf = Signal()            # vector half the step in its recurrent phase reads
        step_first = Signal()
        step_last = Signal()
        step_emit = Signal()
        # With h_valid: the step's last write. A flag kept beside the counter, not a compare on
        # it: step_done starts the next recurrent phase (h_go) in the same cycle.
        step_end = Signal(init=n_writes == 1)
        step_done = Signal()
        m.d.comb += step_done.eq(h_valid & step_end)
        with m.If(h_valid):
            with m.If(step_end):
                m.d.sync += [j.eq(0), step_end.eq(n_writes == 1), h_bank.eq(0), h_addr.eq(p.x_width)]
            with m.Else():
                m.d.sync += [j.eq(j + 1), step_end.eq(Const(1) if n_writes == 1 else equals(j, n_writes - 2))]
                # (With one bank every move wraps; a constant, not a ">= 0" compare lint flags.)
                with m.If(Const(1) if p.banks <= group else h_bank >= p.banks - group):
                    m.d.sync += [h_bank.eq(h_bank + group - p.banks), h_addr.eq(h_addr + 1)]
                with m.Else():
                    m.d.sync += h_bank.eq(h_bank + group)
        if parallel:
            lane_hs = [Signal(act, name=f"h_lane{u}") for u in range(u_lanes)]
            lane_ok = Signal(u_lanes)  # lane u holds a real unit (not padding)
            m.d.comb += h_data.eq(lane_hs[0])
            h_vals = [Mux(lane_ok[u], lane_hs[u], 0) for u in range(u_lanes)]   # padding lanes zero
        else:
            h_vals = [h_data]

        # -- output FIFO (credit: a recurrent phase starts only if all its h fit) --
        if self._packs:
            # Beats are packed as the h groups are written: `lanes // group` groups a beat.
            beat = element_layout(act, lanes)
            m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=beat.size, depth=self.fifo_depth)
            m.d.comb += [
                self.o.valid.eq(ofifo.r_rdy),
                self.o.payload.eq(ofifo.r_data),
                ofifo.r_en.eq(self.o.ready),
            ]
            w_beat = Signal(beat)
            beat_full = pack_beat(m, w_beat.data, h_vals, h_valid, step_end, name="o")
            m.d.comb += [
                w_beat.last.eq(step_last & step_end),
                ofifo.w_data.eq(w_beat),
                ofifo.w_en.eq(h_valid & step_emit & (beat_full | step_end)),
            ]
        else:
            # A pass's h group is one word, handed out `lanes` at a time.
            word = data.StructLayout({"h": data.ArrayLayout(act, u_lanes), "n": range(1, u_lanes + 1), "last": 1})
            m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=word.size, depth=self.fifo_depth)
            outs = [self.o.payload.data[e] for e in range(lanes)]
            r_word, o_end = _unpack_words(m, ofifo, word, outs, self.o.valid & self.o.ready, name="o")
            m.d.comb += [self.o.valid.eq(ofifo.r_rdy), self.o.payload.last.eq(r_word.last & o_end)]
            w_word = Signal(word)
            for u in range(u_lanes):
                m.d.comb += w_word.h[u].eq(lane_hs[u])
            m.d.comb += [
                w_word.n.eq(sum(lane_ok[u] for u in range(u_lanes))),
                w_word.last.eq(step_last & step_end),
                ofifo.w_data.eq(w_word),
                ofifo.w_en.eq(h_valid & step_emit),
            ]
        step_words = self.step_words

        # -- loader: x_t beats into the free vector half ---------------------
        x_full = Signal(2)             # half n holds a complete x
        x_last = Signal(2)             # ... of a sequence's last step
        loading = Signal()
        l_buf, l_bank, l_addr, l_end = vector_cursor(m, loading, length=I, plan=p, lanes=lanes)
        in_last_lanes = last_beat_lanes(I, lanes)
        l_full = Mux(l_buf, x_full[1], x_full[0])
        m.d.comb += [
            self.i.ready.eq(~l_full & ~h_valid),  # h write-back has the ports first
            loading.eq(self.i.valid & self.i.ready),
        ]
        # Write ports: element e of a beat, or h value e of a group, goes through port e.
        for e, port in enumerate(mvm.write_ports):
            hb, ha = group_slot(p, h_bank, h_addr, e)
            lb, la = group_slot(p, l_bank, l_addr, e)
            h_ok = (Const(1) if e == 0 or not parallel else lane_ok[e]) if e < group else Const(0)
            l_ok = (Const(1) if e < in_last_lanes else ~l_end) if e < lanes else Const(0)
            h_val = h_vals[e] if e < group else 0
            l_val = self.i.payload.data[e] if e < lanes else 0
            m.d.comb += [
                port.valid.eq(Mux(h_valid, h_ok, loading & l_ok)),
                port.payload.buf.eq(Mux(h_valid, ~step_buf, l_buf)),
                port.payload.bank.eq(Mux(h_valid, hb, lb)),
                port.payload.addr.eq(Mux(h_valid, ha, la)),
                port.payload.data.eq(Mux(h_valid, h_val, l_val)),
            ]

        # -- step control ------------------------------------------------------
        # A step's command (its input phase) goes as soon as its x is loaded; its
        # recurrent phase (h_go) waits until the previous step's h is all written
        # and the output FIFO has room for the whole step (credit, so the compute
        # pipeline never stalls). The input phase overlaps the previous step's tail.
        seq_first = Signal(init=1)     # the next step commanded starts a sequence
        pend_first, pend_last, pend_emit, pend_buf = Signal(), Signal(), Signal(), Signal()  # commanded step
        pending_h = Signal()           # the step in its recurrent phase has h left to write
        q_full = Mux(q_buf, x_full[1], x_full[0])
        q_last = Mux(q_buf, x_last[1], x_last[0])
        # Credit: `reserved` counts the FIFO words of the emitting steps started (h_go) and not
        # yet read out, written or still to come, so a step starts only if all its words fit.
        # It counts a step's words the cycle after its h_go (`taking`, registered, keeps the
        # adder off the h_go path), and `room` is registered from it: an h_go shows in `room`
        # three cycles later, which is safe as reads only free words and two h_go are always
        # at least four cycles apart (issue, command, input phase).
        reserved = Signal(range(self.fifo_depth + 1))
        taking = Signal()
        m.d.sync += taking.eq(mvm.h_go & pend_emit)
        leaving = ofifo.r_en & ofifo.r_rdy
        with m.If(taking):
            m.d.sync += reserved.eq(reserved + Mux(leaving, step_words - 1, step_words))
        with m.Elif(leaving):
            m.d.sync += reserved.eq(reserved - 1)
        room = Signal()
        m.d.sync += room.eq(reserved <= self.fifo_depth - step_words)
        m.d.comb += [
            mvm.cmd.valid.eq(q_full),
            mvm.cmd.payload.buf.eq(q_buf),
            mvm.cmd.payload.first.eq(seq_first),
            # The next recurrent phase may go in the cycle of this step's last h write: its first
            # vector read comes two cycles later, when the write is in the store.
            mvm.h_ready.eq((~pending_h | step_done) & (~pend_emit | room)),
        ]
        with m.If(mvm.cmd.valid & mvm.cmd.ready):
            m.d.sync += [q_buf.eq(~q_buf), seq_first.eq(q_last), pend_first.eq(seq_first),
                         pend_last.eq(q_last), pend_emit.eq(1 if self._emit_all else q_last), pend_buf.eq(q_buf)]
        with m.If(mvm.h_go):
            m.d.sync += [pending_h.eq(1), step_first.eq(pend_first), step_last.eq(pend_last),
                         step_emit.eq(pend_emit), step_buf.eq(pend_buf)]
        with m.Elif(step_done):
            m.d.sync += pending_h.eq(0)
        for half in range(2):
            with m.If(loading & l_end & (l_buf == half)):
                m.d.sync += [x_full[half].eq(1), x_last[half].eq(self.i.payload.last)]
            with m.Elif(mvm.h_go & (pend_buf == half)):  # the input phase has read its x
                m.d.sync += x_full[half].eq(0)

        # -- gather the four gates of each hidden unit -------------------------
        # No register: the pre-activations go from the MVM's output register straight into
        # the cell lanes' gate units (with fewer than four rows, a unit's earlier gates wait
        # in `held` for the pass with its last ones).
        preact = q.preact.shape()
        z, pas = mvm.o.payload.z, mvm.o.payload["pass"]
        if p.rows >= 4:
            slot = pas
            unit_valid = []
            for u in range(u_lanes):
                # Unit pas * u_lanes + u exists: a compare with a constant, not a multiply
                # (which synthesis maps to a DSP48E1 in front of the compare); a constant
                # where the compare would be (lint flags those).
                bound = -(-(H - u) // u_lanes)
                exists = Const(0) if bound <= 0 else Const(1) if bound >= 1 << len(pas) else pas < bound
                unit_valid.append(mvm.o.valid & exists)
            gates = [[z[4 * u + g] for g in range(4)] for u in range(u_lanes)]
        else:
            per_unit = 4 // p.rows
            held = Signal(data.ArrayLayout(preact, 4 - p.rows))
            sub = pas[:per_unit.bit_length() - 1]
            slot = pas[per_unit.bit_length() - 1:]
            with m.If(mvm.o.valid):
                for s in range(per_unit - 1):
                    with m.If(equals(sub, s)):
                        for r in range(p.rows):
                            m.d.sync += held[s * p.rows + r].eq(z[r])
            unit_valid = [mvm.o.valid & (sub == per_unit - 1)]
            gates = [[held[g] if g < 4 - p.rows else z[g - (4 - p.rows)] for g in range(4)]]

        # -- cell-update lanes, each with its cell-state memory ----------------
        # A unit's c_{t-1} is read so as to reach the cell c_lag cycles after its gates,
        # through a register (the multiplier's operand register).
        lane_h = []
        for u, cell in enumerate(self._cells):
            cmem = memory.Memory(shape=q.cell.shape(), depth=-(-H // u_lanes), init=[])
            m.submodules[f"cmem{u}"] = cmem
            rd = cmem.read_port()
            c_reg = Signal(q.cell.shape(), name=f"c_prev{u}")
            m.d.sync += c_reg.eq(Mux(step_first, 0, rd.data))
            m.d.comb += [
                cell.i.valid.eq(unit_valid[u]),
                cell.i.payload.i.eq(gates[u][0]), cell.i.payload.f.eq(gates[u][1]),
                cell.i.payload.g.eq(gates[u][2]), cell.i.payload.o.eq(gates[u][3]),
                cell.c_prev.eq(c_reg),
            ]
            wp = cmem.write_port()
            m.d.comb += [wp.data.eq(cell.o.payload.c), wp.en.eq(cell.o.valid)]
            if len(wp.addr):  # a one-entry memory has no address to carry along
                rd_at, wr_at = delay_taps(m, slot, [cell.c_lag - 2, cell.latency], name=f"slot{u}")
                m.d.comb += [rd.addr.eq(rd_at), wp.addr.eq(wr_at)]
            lane_h.append((cell.o.valid, cell.o.payload.h))

        # -- h of the cell lanes: all at once, or serialised one per cycle -----
        if parallel:
            # The lanes run in lock step: lane 0 is valid for every pass.
            m.d.comb += h_valid.eq(lane_h[0][0])
            for u in range(u_lanes):
                m.d.comb += [lane_hs[u].eq(lane_h[u][1]), lane_ok[u].eq(lane_h[u][0])]
        elif u_lanes == 1:
            m.d.comb += [h_valid.eq(lane_h[0][0]), h_data.eq(lane_h[0][1])]
        else:
            word = data.StructLayout({"h": data.ArrayLayout(q.activation.shape(), u_lanes),
                                      "n": range(1, u_lanes + 1)})
            m.submodules.hfifo = hfifo = fifo.SyncFIFOBuffered(width=word.size, depth=max(2, -(-H // u_lanes)))
            w_word = Signal(word)
            m.d.comb += [w_word.h[u].eq(lane_h[u][1]) for u in range(u_lanes)]
            n_valid = sum(lane_h[u][0] for u in range(u_lanes))
            m.d.comb += [w_word.n.eq(n_valid), hfifo.w_data.eq(w_word), hfifo.w_en.eq(lane_h[0][0])]
            m.d.comb += h_valid.eq(hfifo.r_rdy)
            _unpack_words(m, hfifo, word, [h_data], hfifo.r_rdy, name="h")
        return m


def _unpack_words(m, word_fifo, word, outs, take, *, name: str):
    """Hand out the first ``n`` elements ``h[0..n-1]`` of each word of ``word_fifo``, ``len(outs)`` at a time.

    ``outs`` show the current elements (zero past ``n``); each cycle with
    ``take`` high moves on, and the word leaves the FIFO with its last
    elements. ``len(outs)`` must divide the word's lanes. Returns the current
    word and a signal high on its last elements.
    """
    r_word = Signal(word, name=f"{name}_word")
    lanes, per = word["h"].shape.length, len(outs)
    assert lanes % per == 0
    places = lanes // per
    idx = Signal(counter_shape(places), name=f"{name}_idx")
    end = idx == r_word.n - 1 if per == 1 else (idx + 1) * per >= r_word.n
    m.d.comb += r_word.eq(word_fifo.r_data)
    with m.Switch(idx):  # a case, not a wide shift as ``r_word.h[idx]`` would emit
        for c in range(places):
            with (m.Case(c) if c < places - 1 else m.Default()):
                for e, out in enumerate(outs):
                    lane = c * per + e
                    # (One element at a time: idx never passes n - 1, so no mask.)
                    m.d.comb += out.eq(r_word.h[lane] if per == 1 else Mux(lane < r_word.n, r_word.h[lane], 0))
    with m.If(take):
        with m.If(end):
            m.d.sync += idx.eq(0)
            m.d.comb += word_fifo.r_en.eq(1)
        with m.Else():
            m.d.sync += idx.eq(idx + 1)
    return r_word, end
