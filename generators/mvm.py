"""The gate matrix-vector product of one layer, bank-balanced sparse."""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..design import LayerPlan
from ..config import QuantConfig
from ..numerics import bits_for, rounding_offset, signed_bits
from .fixed import counter_shape, delay, equals, requantize

__all__ = ["SparseMatVec", "rom_words", "vector_address", "vector_cursor", "group_slot", "vector_write_layout",
           "CHUNK_BITS", "chunk_bounds"]

#: The widest add in one cycle outside a DSP48E1: a LUT and four CARRY4s, five
#: logic levels with the carry in from a register.
CHUNK_BITS = 16


def chunk_bounds(width: int, max_bits: int = CHUNK_BITS) -> list[tuple[int, int]]:
    """``[lo, hi)`` bit ranges that split ``width`` bits into the fewest chunks of at most ``max_bits``, evenly."""
    n = -(-width // max_bits)
    size = -(-width // n)
    return [(lo, min(lo + size, width)) for lo in range(0, width, size)]


def vector_write_layout(plan: LayerPlan, elem_shape) -> data.StructLayout:
    """One write into the banked vector store: ``buf`` (ping-pong half), ``bank``, ``addr``, ``data``."""
    return data.StructLayout({
        "buf": 1,
        "bank": counter_shape(plan.banks),
        "addr": unsigned(plan.index_bits),
        "data": elem_shape,
    })


def vector_address(plan: LayerPlan, column: int) -> tuple[int, int]:
    """``(bank, entry)`` of column ``column`` of ``[x; h]`` in the banked vector store.

    ``x_i`` is entry ``i // banks`` of bank ``i % banks``; ``h_j`` is entry
    ``x_width + j // banks`` of bank ``j % banks`` (see :mod:`lstm_hw.design`).
    """
    if column < plan.input_size:
        return column % plan.banks, column // plan.banks
    j = column - plan.input_size
    return j % plan.banks, plan.x_width + j // plan.banks


def vector_cursor(m: Module, advance, *, length: int, plan: LayerPlan, lanes: int = 1):
    """Where the next beat of a ``length``-element vector goes in the banked vector store, ``lanes`` per beat.

    Elements come in order, ``lanes`` per beat (the last beat of the vector
    may be partial): element ``j`` goes to bank ``j % banks``, address
    ``j // banks`` (the interleaved banks of :mod:`lstm_hw.sparsity`) of buffer
    half ``buf``, and ``buf`` flips after the last beat. The cursor moves on every cycle with
    ``advance`` high. Returns ``(buf, bank, addr, last)`` for the beat's first
    element (see :func:`group_slot` for the others); ``last`` is high while the
    cursor is on the vector's last beat. ``lanes`` must not exceed ``banks``.
    """
    assert 1 <= lanes <= plan.banks
    beats = -(-length // lanes)
    buf = Signal()
    e = Signal(counter_shape(beats))
    bank = Signal(counter_shape(plan.banks))
    addr = Signal(counter_shape(plan.bank_width))
    last = e == beats - 1
    with m.If(advance):
        with m.If(last):
            m.d.sync += [e.eq(0), bank.eq(0), addr.eq(0), buf.eq(~buf)]
        with m.Else():
            m.d.sync += e.eq(e + 1)
            # (With lanes = banks every move wraps; a constant, not a ">= 0" compare lint flags.)
            with m.If(Const(1) if lanes == plan.banks else bank >= plan.banks - lanes):
                m.d.sync += [bank.eq(bank + lanes - plan.banks), addr.eq(addr + 1)]
            with m.Else():
                m.d.sync += bank.eq(bank + lanes)
    return buf, bank, addr, last


def group_slot(plan: LayerPlan, bank, addr, offset: int):
    """``(bank, addr)`` of the element ``offset`` columns after the one at ``(bank, addr)``, ``offset < banks``."""
    if offset == 0:
        return bank, addr
    wrap = bank >= plan.banks - offset
    return Mux(wrap, bank + offset - plan.banks, bank + offset), Mux(wrap, addr + 1, addr)


def rom_words(rom_w: np.ndarray, rom_idx: np.ndarray, w_bits: int, idx_bits: int) -> list[int]:
    """The weight ROM's words: entry ``lane * banks + bank`` of word ``a`` is PE (lane, bank)'s
    ``(w, idx)`` at address ``a`` (``w`` in the low ``w_bits`` bits, ``idx`` above it).

    ``rom_w`` and ``rom_idx`` are ``(rows, banks, depth)``, as :meth:`LayerPlan.roms` gives them.
    The words are built from packed bytes: Python big-integer arithmetic per entry is slow at
    ESE scale (720 PEs x 798 addresses).
    """
    rows, banks, depth = rom_w.shape
    entry_bits = w_bits + idx_bits
    entries = (rom_w.astype(np.int64) & ((1 << w_bits) - 1)) | (rom_idx.astype(np.int64) << w_bits)
    entries = entries.reshape(rows * banks, depth).T                   # (depth, PE)
    bits = (entries[:, :, None] >> np.arange(entry_bits)) & 1           # (depth, PE, bit), LSB first
    packed = np.packbits(bits.reshape(depth, -1).astype(np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


class SparseMatVec(wiring.Component):
    """``z = W [x_t; h_{t-1}] + b`` for all four gates of a layer, with bank-balanced sparse ``W``.

    There are ``rows x banks`` processing elements (PEs). PE ``(lane, bank)``
    reads ``(weight, in-bank index)`` pairs in schedule order (see
    :mod:`lstm_hw.design`) from its field of one wide weight ROM, whose every
    word holds one entry for each PE (:func:`rom_words`), and has its own copy
    of its bank of the vector, so no two PEs ever contend for a vector port.
    Each cycle every PE reads one
    stored weight, fetches the vector element its index selects, multiplies
    and accumulates; after a pass a registered adder tree sums the banks
    and the bias, and the sum is rounded and saturated to the pre-activation
    format. Accumulation is exact (the accumulator is wide enough), so the
    result equals :func:`lstm_hw.golden.layer_preact` bit for bit.

    A step of a layer runs in two phases. The input phase (``k_x`` cycles
    per pass) sums ``W_ih x_t`` and the bias, exactly, into a partial-sum
    memory per lane; the recurrent phase (``k_h`` cycles per pass) adds
    ``W_hh h_{t-1}`` to them and gives the result on ``o``. Between the two
    the unit waits for ``h_ready`` (``h_{t-1}`` is in the vector store): the
    input phase of a step needs no ``h`` and overlaps the end of the step
    before. A plan with no ``h`` part (a dense head) runs the input phase
    only, with its result on ``o``.

    The adder tree is carry-pipelined: a sum wider than :data:`CHUNK_BITS` is
    split into chunks (:func:`chunk_bounds`), chunk ``j`` travels ``j`` cycles
    behind chunk 0, and each chunk adds the carry its lower neighbour
    registered one cycle earlier. So no carry chain is longer than one chunk,
    at the cost of ``chunks - 1`` cycles once (not per level). The rounding
    constant rides in the bias ROM, so rounding is a plain bit drop, and
    saturation tests the top bits; the output register is a few LUTs deep.

    The vector store is double-buffered (``buf``): a step reads one half while
    the next step's ``x`` and ``h`` are written into the other.

    Pipeline per PE: ROM read, vector read, operand registers, product
    register, accumulator (the shape of one DSP48E1 MACC), then the adder tree
    (one register per level), the chunk deskew and the rounding register.
    Every combinational path is at most one multiplier or one chunk adder deep.

    Latency: :attr:`latency` cycles from a pass's last issue cycle to its
    result on ``o``. Throughput: ``rows`` pre-activations every ``k_h`` cycles
    in the recurrent phase; a command issues ``passes x k_x`` cycles, waits
    :attr:`x_cycles` ``- 1 - passes x k_x`` cycles or until ``h_ready``, then
    issues ``passes x k_h`` cycles; the next command is taken the cycle after.

    Parameters
    ----------
    plan : LayerPlan
        The scheduled layer (ROM contents, sizes).
    quant : QuantConfig
        Number formats.
    group_writes : int
        Extra write ports (``wr_group``), for a group of elements in different banks.

    Members
    -------
    wr : In(stream.Signature(vector_write_layout, always_ready=True))
        Vector element writes (:func:`vector_address`); always accepted, effective the next cycle.
    wr_group : In(stream.Signature(vector_write_layout, always_ready=True)).array(group_writes)
        Further writes in the same cycle (present when ``group_writes > 0``).
        Every memory has one write port: the valid writes of a cycle, ``wr``
        included, must all go to different banks.
    cmd : In(stream.Signature({"buf": 1, "first": 1}))
        Start a step on vector half ``buf``. ``first`` reads ``h_{t-1}`` as
        zero (a sequence's first step). Ready while no step is in progress.
        A plan with no ``h`` part has no ``first``.
    h_ready : In(1)
        The recurrent phase may start (only with an ``h`` part).
    h_go : Out(1)
        High in the cycle the unit leaves the wait for the recurrent phase, whose
        first issue cycle is the next one (only with an ``h`` part).
    o : Out(stream.Signature({"pass": ..., "z": ArrayLayout(preact, rows)}, always_ready=True))
        The pre-activations of hardware rows ``pass x rows ..``; no backpressure.
    """

    def __init__(self, *, plan: LayerPlan, quant: QuantConfig, group_writes: int = 0):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        if not isinstance(quant, QuantConfig):
            raise TypeError(f"quant must be a QuantConfig, not {quant!r}")
        if not isinstance(group_writes, int) or not 0 <= group_writes < plan.banks:
            raise ValueError(f"group_writes must be an integer from 0 to banks - 1 = {plan.banks - 1}, "
                             f"got {group_writes!r}")
        self._plan = plan
        self._quant = quant
        self._tree_levels = bits_for(plan.banks) if plan.banks > 0 else 0  # ceil(log2(banks + 1))
        self._chunks = chunk_bounds(self.sum_bits)
        write = stream.Signature(vector_write_layout(plan, quant.activation.shape()), always_ready=True)
        group = {"wr_group": In(write).array(group_writes)} if group_writes else {}
        recurrent = {"h_ready": In(1), "h_go": Out(1)} if self._has_h else {}
        super().__init__({
            "wr": In(write),
            **group,
            "cmd": In(stream.Signature(data.StructLayout({"buf": 1, **({"first": 1} if self._has_h else {})}))),
            **recurrent,
            "o": Out(stream.Signature(data.StructLayout({
                "pass": counter_shape(plan.passes),
                "z": data.ArrayLayout(quant.preact.shape(), plan.rows),
            }), always_ready=True)),
        })

    @property
    def write_ports(self) -> list:
        """``wr`` and the ``wr_group`` ports, in that order: element ``e`` of a group goes through port ``e``."""
        return [self.wr, *getattr(self, "wr_group", [])]

    @property
    def _has_h(self) -> bool:
        """The plan has a recurrent phase: a layer's plan, not a dense head's."""
        return self._plan.k_h > 0

    @property
    def plan(self) -> LayerPlan:
        return self._plan

    @property
    def latency(self) -> int:
        """Cycles from the last issue cycle of a pass to its ``o.valid``."""
        return 5 + self._tree_levels + len(self._chunks) - 1 + 1

    @property
    def input_gap(self) -> int:
        """Wait cycles, at least, between the input phase's last issue cycle and ``h_go``.

        The recurrent phase reads pass ``p``'s partial sum 4 cycles after its last issue
        cycle of the pass; the input phase writes it ``latency - 1`` cycles after its own.
        """
        p = self._plan
        if not self._has_h:
            return 0
        need = max((n + 1) * (p.k_x - p.k_h) for n in (0, p.passes - 1)) + self.latency - 5 - p.passes * p.k_x
        return max(0, need)

    @property
    def x_cycles(self) -> int:
        """Cycles from taking a command to ``h_go``, ``h_ready`` high: the input phase and the gap.

        The recurrent phase then issues from the cycle after ``h_go``. Without an ``h``
        part, the issue cycles plus one.
        """
        p = self._plan
        return p.passes * p.k_x + 1 + self.input_gap

    @property
    def rounding_offset(self) -> int:
        """The rounding constant added with the bias, so the output stage only drops bits."""
        q = self._quant
        return rounding_offset(q.product.frac - q.preact.frac, q.rounding)

    @property
    def sum_bits(self) -> int:
        """Width of the exact gate sum: every bank's products, the aligned bias and the rounding offset.

        Every accumulator, adder-tree node and partial sum is this wide and wraps modulo
        ``2**sum_bits``; only the final sum has to fit, so partial sums may wrap.
        """
        q, p = self._quant, self._plan
        w, a, b = q.weight, q.activation, q.bias_format
        corners = [w.min_int * a.min_int, w.min_int * a.max_int, w.max_int * a.min_int, w.max_int * a.max_int]
        n, shift = p.banks * p.k, q.product.frac - b.frac
        lo = n * min(corners) + (b.min_int << shift)
        hi = n * max(corners) + (b.max_int << shift) + self.rounding_offset
        return signed_bits(lo, hi)

    def elaborate(self, platform):
        m = Module()
        p, q = self._plan, self._quant
        n_pass, two = p.passes, self._has_h
        acc_shape = signed(self.sum_bits)
        rom_w, rom_idx, rom_b = p.roms()

        # Issue counters: stage 0 of the pipeline. `phase` is 1 in the recurrent phase;
        # `first` zeroes h_{t-1} there on a sequence's first step.
        busy = Signal()
        waiting = Signal()
        phase = Signal()
        pas = Signal(counter_shape(n_pass))
        c = Signal(counter_shape(max(p.k_x, p.k_h)))
        addr = Signal(counter_shape(n_pass * p.k))
        buf = Signal()
        first = Signal()
        last_c = busy & (Mux(phase, equals(c, p.k_h - 1), equals(c, p.k_x - 1)) if two else equals(c, p.k_x - 1))
        m.d.comb += self.cmd.ready.eq(~busy & ~waiting)
        with m.If(self.cmd.valid & self.cmd.ready):
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
            # The wait between the phases: `input_gap` cycles at least, then until h_ready.
            gap = self.input_gap
            wcount = Signal(counter_shape(gap + 1))
            gap_ok = Const(1) if gap == 0 else wcount >= gap
            with m.If(self.cmd.valid & self.cmd.ready):
                m.d.sync += wcount.eq(0)
            with m.Elif(waiting):
                with m.If(~gap_ok):
                    m.d.sync += wcount.eq(wcount + 1)
                with m.If(self.h_ready & gap_ok):
                    m.d.sync += [waiting.eq(0), busy.eq(1), phase.eq(1)]
                    m.d.comb += self.h_go.eq(1)

        first_c = busy & equals(c, 0)
        buf1 = delay(m, buf, 1, name="buf")
        mask1 = delay(m, first & phase, 1, name="mask") if two else None
        first_c4 = delay(m, first_c, 4, name="first_c")
        last_c4 = delay(m, last_c, 4, name="last_c")
        pass4 = delay(m, pas, 4, name="pass")
        phase4 = delay(m, phase, 4, name="phase") if two else None
        phase5 = delay(m, phase4, 1, name="phase5") if two else None

        elem = q.activation.shape()
        rom_layout = data.StructLayout({"w": q.weight.shape(), "idx": unsigned(p.index_bits)})
        bias_shift = q.product.frac - q.bias_format.frac
        # The write into each bank's vector copies (at most one port writes a bank in a cycle).
        bank_wr = []
        for bank in range(p.banks):
            en = Signal(name=f"vwr_en_b{bank}")
            waddr = Signal(p.index_bits + 1, name=f"vwr_addr_b{bank}")
            wdata = Signal(elem, name=f"vwr_data_b{bank}")
            for port in self.write_ports:
                with m.If(port.valid & equals(port.payload.bank, bank)):
                    m.d.comb += [en.eq(1), waddr.eq(Cat(port.payload.addr, port.payload.buf)),
                                 wdata.eq(port.payload.data)]
            bank_wr.append((en, waddr, wdata))
        # Every PE reads the same ROM address each cycle, so all the weights live in one
        # ROM word per address: PE (lane, bank) owns entry lane * banks + bank of it.
        # One wide memory fills whole block RAMs, where one narrow ROM per PE would take
        # a block RAM each for a fraction of its width.
        rom = memory.Memory(shape=unsigned(rom_layout.size * p.rows * p.banks), depth=n_pass * p.k,
                            init=rom_words(rom_w, rom_idx, q.weight.bits, p.index_bits))
        m.submodules.rom = rom
        rd = rom.read_port()
        m.d.comb += rd.addr.eq(addr)
        sums, psum_writes = [], []
        for lane in range(p.rows):
            terms = []
            for bank in range(p.banks):
                vec = memory.Memory(shape=elem, depth=2 << p.index_bits, init=[])
                m.submodules[f"vec_l{lane}_b{bank}"] = vec
                pe = lane * p.banks + bank
                entry = rom_layout(rd.data[pe * rom_layout.size:(pe + 1) * rom_layout.size])
                wp = vec.write_port()
                m.d.comb += [wp.en.eq(bank_wr[bank][0]), wp.addr.eq(bank_wr[bank][1]), wp.data.eq(bank_wr[bank][2])]
                vp = vec.read_port()
                m.d.comb += vp.addr.eq(Cat(entry.idx, buf1))
                # Every entry of the recurrent phase holds h_{t-1}: zero on a first step.
                mask2 = Signal(name=f"mask_l{lane}_b{bank}")
                w2 = Signal(q.weight.shape(), name=f"w_l{lane}_b{bank}")
                m.d.sync += [mask2.eq(mask1 if two else 0), w2.eq(entry.w)]
                # DSP48E1 shape: A/B operand registers, M register, P accumulator.
                a3 = Signal(q.weight.shape(), name=f"opw_l{lane}_b{bank}")
                b3 = Signal(elem, name=f"opv_l{lane}_b{bank}")
                prod = Signal(q.product.shape(), name=f"prod_l{lane}_b{bank}")
                acc = Signal(acc_shape, name=f"acc_l{lane}_b{bank}")
                m.d.sync += [
                    a3.eq(w2),
                    b3.eq(Mux(mask2, 0, vp.data)),
                    prod.eq(a3 * b3),
                    # Zero the feedback, not the sum: the P register then takes the
                    # DSP48E1's own post-adder (OPMODE Z = 0 or P) with no fabric.
                    acc.eq(Mux(first_c4, 0, acc) + prod),
                ]
                terms.append(acc)
            # The bias, aligned to the product's fraction bits, plus the rounding offset;
            # in the recurrent phase, the input phase's partial sum (which holds them) instead.
            bias_rom = memory.Memory(shape=acc_shape, depth=n_pass, init=[
                (int(v) << bias_shift) + self.rounding_offset for v in rom_b[lane]])
            m.submodules[f"bias_l{lane}"] = bias_rom
            brd = bias_rom.read_port()
            m.d.comb += brd.addr.eq(pass4)
            if two:
                psum = memory.Memory(shape=acc_shape, depth=n_pass, init=[])
                m.submodules[f"psum_l{lane}"] = psum
                prd = psum.read_port()
                m.d.comb += prd.addr.eq(pass4)
                terms.append(Mux(phase5, prd.data, brd.data))
                psum_writes.append(psum.write_port())
            else:
                terms.append(brd.data)
            sums.append(self._adder_tree(m, terms, lane))

        skew = len(self._chunks) - 1
        done = delay(m, last_c4, 1 + self._tree_levels + skew, name="done")
        pass_out = delay(m, pass4, 1 + self._tree_levels + skew, name="pass_out")
        for lane, total in enumerate(sums):
            # The offset is in the sum already: "truncate" just drops the bits.
            m.d.sync += self.o.payload.z[lane].eq(requantize(total, q.product.frac - self._drop, q.preact, "truncate"))
        if two:
            recurrent_out = delay(m, phase4, 1 + self._tree_levels + skew, name="phase_out")
            for wp, total in zip(psum_writes, sums):
                m.d.comb += [wp.en.eq(done & ~recurrent_out), wp.addr.eq(pass_out), wp.data.eq(total)]
            m.d.sync += self.o.valid.eq(done & recurrent_out)
        else:
            m.d.sync += self.o.valid.eq(done)
        m.d.sync += self.o.payload["pass"].eq(pass_out)
        return m

    @property
    def _drop(self) -> int:
        """Low bits of the gate sum that rounding drops: the adder tree's last level does not register them.

        None with a recurrent phase: the input phase's partial sums keep every bit.
        """
        q = self._quant
        return 0 if self._has_h else max(0, q.product.frac - q.preact.frac)

    def _adder_tree(self, m, terms, lane):
        """Carry-pipelined pairwise sum of ``sum_bits``-wide terms; a register after each level.

        Returns the sum without its low :attr:`_drop` bits, ``tree_levels + chunks - 1``
        cycles after the terms.
        """
        chunks, last, drop = self._chunks, len(self._chunks) - 1, self._drop
        assert drop < chunks[last][1]
        # Skew the terms: chunk j enters j cycles after chunk 0.
        terms = [[delay(m, term[lo:hi], j, name=f"skew_l{lane}_t{n}_c{j}") for j, (lo, hi) in enumerate(chunks)]
                 for n, term in enumerate(terms)]
        for level in range(self._tree_levels):
            # The last level registers only the bits above `drop` (a chunk wholly below it, only its carry).
            cuts = [min(hi - lo, max(0, drop - lo)) if level == self._tree_levels - 1 else 0 for lo, hi in chunks]
            nxt = []
            for n in range(0, len(terms), 2):
                out, carry = [], Const(0)
                for j, (lo, hi) in enumerate(chunks):
                    width = hi - lo - cuts[j]
                    s = Signal(width, name=f"sum_l{lane}_v{level}_{n // 2}_c{j}") if width else None
                    total = terms[n][j] if n + 1 == len(terms) else terms[n][j] + terms[n + 1][j] + carry
                    if s is not None:
                        m.d.sync += s.eq(total[cuts[j]:hi - lo])
                    if j < last and n + 1 < len(terms):
                        carry = Signal(name=f"carry_l{lane}_v{level}_{n // 2}_c{j}")
                        m.d.sync += carry.eq(total[hi - lo])
                    out.append(s)
                nxt.append(out)
            terms = nxt
        assert len(terms) == 1
        # Deskew: wait for the top chunk.
        total = Cat(*(delay(m, c, last - j, name=f"deskew_l{lane}_c{j}")
                      for j, c in enumerate(terms[0]) if c is not None))
        return total.as_signed()

