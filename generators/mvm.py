"""The gate matrix-vector product of one layer, bank-balanced sparse."""

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config.schema import QuantConfig
from .fixed import counter_shape, delay, delay_taps, equals, requantize
from ..model.design import LayerPlan
from ..numerics.fixed import rounding_offset, signed_bits

__all__ = ["SparseMatVec", "rom_words", "rom_mem_text", "rom_module", "vector_address", "vector_cursor",
           "last_beat_lanes", "group_slot", "vector_write_layout",
           "CHUNK_BITS", "chunk_bounds", "CHAIN_MAX", "chain_groups"]

#: The widest add in one cycle outside a DSP48E1. The accumulator's add has its
#: start/feedback mux in front: two LUTs, then four CARRY4s for 15 bits and the carry
#: out, six logic levels (16 bits take a fifth CARRY4 for the carry out: seven).
CHUNK_BITS = 15


#: The deepest per-lane partial-sum memory (a word per pass) kept in distributed RAM.
SHALLOW_MEMORY_DEPTH = 128


#: The default longest chain of DSP48E1s that sum their products through their
#: post-adders (``P = M + C``; ``hardware.mac_chain``). Every bank beyond the first of
#: a chain saves a fabric adder and costs a cycle of latency; four keeps the latency
#: within a cycle or two of a plain adder tree while cutting the fabric adders per MAC
#: to about a quarter.
CHAIN_MAX = 4


def chain_groups(banks: int, chain_max: int = CHAIN_MAX) -> list[list[int]]:
    """The banks split into the fewest chains of consecutive banks, at most ``chain_max`` long, as even as possible."""
    if banks < 1:
        raise ValueError(f"banks must be at least 1, got {banks}")
    n = -(-banks // chain_max)
    base, extra = divmod(banks, n)
    groups, start = [], 0
    for g in range(n):
        size = base + (1 if g < extra else 0)
        groups.append(list(range(start, start + size)))
        start += size
    return groups


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
    ``x_width + j // banks`` of bank ``j % banks`` (see :mod:`lstm_hw.model.design`).
    """
    if column < plan.input_size:
        return column % plan.banks, column // plan.banks
    j = column - plan.input_size
    return j % plan.banks, plan.x_width + j // plan.banks


def vector_cursor(m: Module, advance, *, length: int, plan: LayerPlan, lanes: int = 1):
    """Where the next beat of a ``length``-element vector goes in the banked vector store, ``lanes`` per beat.

    Elements come in order, ``lanes`` per beat (the last beat of the vector
    may be partial): element ``j`` goes to bank ``j % banks``, address
    ``j // banks`` (the interleaved banks of :mod:`lstm_hw.numerics.sparsity`) of buffer
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


def last_beat_lanes(length: int, lanes: int) -> int:
    """Elements in the last beat of a ``length``-element vector sent ``lanes`` per beat (:func:`vector_cursor`)."""
    return length - (-(-length // lanes) - 1) * lanes


def group_slot(plan: LayerPlan, bank, addr, offset: int):
    """``(bank, addr)`` of the element ``offset`` columns after the one at ``(bank, addr)``, ``offset < banks``."""
    if offset == 0:
        return bank, addr
    wrap = bank >= plan.banks - offset
    return Mux(wrap, bank + offset - plan.banks, bank + offset), Mux(wrap, addr + 1, addr)


def rom_words(rom_w: np.ndarray, rom_idx: np.ndarray, w_bits: int, idx_bits: int) -> list[int]:
    """The weight ROM's words: entry ``lane * banks + bank`` of word ``a`` is PE (lane, bank)'s
    ``(w, idx)`` at address ``a`` (``w`` in the low ``w_bits`` bits, ``idx`` above it).

    ``rom_w`` and ``rom_idx`` are ``(rows, banks, depth)``, as :meth:`LayerPlan.roms` gives them
    (or the banks at one chain position of them).
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


def rom_mem_text(words: list[int], width: int) -> str:
    """A ROM's ``$readmemh`` file: one word a line from address 0, ``ceil(width / 4)`` hex digits."""
    digits = -(-width // 4)
    return "".join(f"{word:0{digits}x}\n" for word in words)


def rom_module(name: str, width: int, depth: int) -> str:
    """The Verilog of weight ROM ``name``: a block RAM read one word a cycle, loaded from ``<name>.mem``.

    Its contents (:func:`rom_mem_text`) never pass through Amaranth and Yosys as text. Its
    behaviour is that of the :class:`~amaranth.lib.memory.Memory` that :class:`SparseMatVec`
    uses without ``rom_files``: ``data`` is the word at the ``addr`` of the cycle before.
    """
    abits = counter_shape(depth).width   # the MVM's ROM address counter
    return (f"/* Generated by lstm-hw: a weight ROM, its {depth} words of {width} bits in {name}.mem */\n"
            "\n"
            f"module {name}(clk, addr, data);\n"
            "  input clk;\n"
            "  wire clk;\n"
            f"  input [{abits - 1}:0] addr;\n"
            f"  wire [{abits - 1}:0] addr;\n"
            f"  output [{width - 1}:0] data;\n"
            f"  reg [{width - 1}:0] data;\n"
            '  (* rom_style = "block" *)\n'
            f"  reg [{width - 1}:0] mem [{depth - 1}:0];\n"
            f'  initial $readmemh("{name}.mem", mem, 0, {depth - 1});\n'
            "  always @(posedge clk)\n"
            "    data <= mem[addr];\n"
            "endmodule\n")


class SparseMatVec(wiring.Component):
    """``z = W [x_t; h_{t-1}] + b`` for all four gates of a layer, with bank-balanced sparse ``W``.

    There are ``rows x banks`` processing elements (PEs), one DSP48E1 each.
    PE ``(lane, bank)`` reads ``(weight, in-bank index)`` pairs in schedule
    order (see :mod:`lstm_hw.model.design`) from its field of a wide weight ROM in
    block RAM, and has its own copy of its bank of the vector, so no two PEs
    ever contend for a vector port. Each cycle every PE reads one stored
    weight, fetches the vector element its index selects and multiplies.

    The banks of a lane are summed in chains of up to ``chain`` (default
    :data:`CHAIN_MAX`; :func:`chain_groups`): each PE's post-adder adds the previous PE's sum,
    ``P = M + C``, so a chain sums its products inside the DSP48E1s. Chain
    position ``j`` runs ``j`` cycles behind position 0: its ROM (one per
    position, :func:`rom_words`, every PE at the position reading the same
    address), its vector half and mask, and the writes into its vector copies
    are all delayed ``j`` cycles, so each position sees the vector store as
    position 0 does. A registered adder tree sums the chains of a lane each
    cycle, and an accumulator sums a pass's slots, starting from the bias;
    the pass's sum is then rounded and saturated to the pre-activation
    format. Every sum is exact (wide enough), so the result equals
    :func:`lstm_hw.model.golden.layer_preact` bit for bit. Fabric adders per lane:
    ``chains - 1`` in the tree and the accumulator, where a plain adder tree
    over the banks would take ``banks``.

    A step of a layer runs in two phases. The input phase (``k_x`` cycles
    per pass) sums ``W_ih x_t`` and the bias, exactly, into a partial-sum
    memory per lane; the recurrent phase (``k_h`` cycles per pass) adds
    ``W_hh h_{t-1}`` to them and gives the result on ``o``. Between the two
    the unit waits for ``h_ready`` (``h_{t-1}`` is in the vector store): the
    input phase of a step needs no ``h`` and overlaps the end of the step
    before. A plan with no ``h`` part (a dense head) runs the input phase
    only, with its result on ``o``.

    The adder tree and the accumulator are carry-pipelined: a sum wider than
    :data:`CHUNK_BITS` is split into chunks (:func:`chunk_bounds`), chunk ``j``
    travels ``j`` cycles behind chunk 0, and each chunk adds the carry its
    lower neighbour registered one cycle earlier. So no carry chain is longer
    than one chunk, at the cost of ``chunks - 1`` cycles once (not per
    level). The rounding constant rides in the bias, so rounding is a plain
    bit drop, and saturation tests the top bits; the output register is a
    few LUTs deep.

    The vector store is double-buffered (``buf``): a step reads one half while
    the next step's ``x`` and ``h`` are written into the other.

    Pipeline: ROM read, vector read, operand registers, product register,
    chain sum (the shape of one DSP48E1: A/B, M and P registers), ``chain``
    positions, then the tree (one register per level), the accumulator, the
    chunk deskew and the rounding register. The accumulator's start value
    (bias or partial sum) is read from its memory two cycles before it is
    needed and registered, so no block-RAM output feeds logic directly.
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
    chain : int
        The most banks summed in one DSP48E1 chain (:func:`chain_groups`); 1 is a plain adder tree.
    rom_files : str, optional
        A module name prefix, ``<top>__<path>`` of this unit: weight ROM ``j`` is then an instance of
        module ``<prefix>__rom_p<j>`` (:func:`rom_module`) that loads ``<prefix>__rom_p<j>.mem``
        (:meth:`rom_files`), for emitting Verilog. Without it, each is an Amaranth ``Memory``
        holding its words, which Amaranth's simulator runs.

    Members
    -------
    wr : In(stream.Signature(vector_write_layout, always_ready=True))
        Vector element writes (:func:`vector_address`); always accepted, effective two cycles later
        (a read from the cycle after next sees them).
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

    def __init__(self, *, plan: LayerPlan, quant: QuantConfig, group_writes: int = 0, chain: int = CHAIN_MAX,
                 rom_files: str | None = None):
        if not isinstance(plan, LayerPlan):
            raise TypeError(f"plan must be a LayerPlan, not {plan!r}")
        if not isinstance(quant, QuantConfig):
            raise TypeError(f"quant must be a QuantConfig, not {quant!r}")
        if not isinstance(group_writes, int) or not 0 <= group_writes < plan.banks:
            raise ValueError(f"group_writes must be an integer from 0 to banks - 1 = {plan.banks - 1}, "
                             f"got {group_writes!r}")
        if not isinstance(chain, int) or chain < 1:
            raise ValueError(f"chain must be a positive integer, got {chain!r}")
        if rom_files is not None and not (isinstance(rom_files, str) and rom_files.isidentifier()):
            raise ValueError(f"rom_files must be a module name prefix (an identifier), got {rom_files!r}")
        self._rom_files = rom_files
        self._rom_contents = None
        self._plan = plan
        self._quant = quant
        self._groups = chain_groups(plan.banks, chain)
        self._chain = max(len(g) for g in self._groups)             # DSP48E1s in the longest chain
        self._tree_levels = (len(self._groups) - 1).bit_length()    # ceil(log2(chains))
        self._sum_bits = self._exact_sum_bits()
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
        """Cycles from the last issue cycle of a pass to its ``o.valid``: ``5 + chain + tree_levels + chunks``."""
        return 5 + self._chain + self._tree_levels + len(self._chunks)

    @property
    def input_gap(self) -> int:
        """Wait cycles, at least, between the input phase's last issue cycle and ``h_go``.

        The recurrent phase reads pass ``n``'s partial sum ``2 + chain + tree_levels`` cycles
        after the pass's first issue cycle; the input phase writes it ``latency - 1`` cycles
        after the pass's last, and a read sees a write from the cycle after. With the recurrent
        phase issuing from ``passes x k_x + 1 + gap`` cycles after the input phase, pass ``n``
        needs ``gap >= (n + 1) k_x - n k_h + chunks + 1 - passes x k_x``: linear in ``n``, so
        the first or the last pass decides.
        """
        p = self._plan
        if not self._has_h:
            return 0
        need = max((n + 1) * p.k_x - n * p.k_h for n in (0, p.passes - 1)) + len(self._chunks) + 1 - p.passes * p.k_x
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
        """Width of the exact gate sum of these weights: the widest any row's sum (its products, its
        aligned bias and the rounding offset) can be over every input the activation format holds.

        Row ``r``'s sum lies in ``[sum_w min(w a_min, w a_max), sum_w max(w a_min, w a_max)]``
        plus its bias: bounds from the stored weights themselves, not from the weight format
        (which would assume every weight at the format's most negative code). Every
        accumulator, adder-tree node and partial sum is this wide and wraps modulo
        ``2**sum_bits``; only the final sum has to fit, so partial sums may wrap.
        """
        return self._sum_bits

    def _exact_sum_bits(self) -> int:
        q, p = self._quant, self._plan
        a = q.activation
        w = np.asarray(p.w, dtype=np.int64)
        ends = np.stack([w * a.min_int, w * a.max_int])
        start = (np.asarray(p.b, dtype=np.int64) << q.bias_shift) + self.rounding_offset
        lo = ends.min(axis=0).sum(axis=1) + start
        hi = ends.max(axis=0).sum(axis=1) + start
        # The padding rows of the last pass sum to the offset alone. At least one bit above the
        # ones a head's output stage drops, should every weight and bias be zero.
        return max(signed_bits(min(int(lo.min()), self.rounding_offset), max(int(hi.max()), self.rounding_offset)),
                   self._drop + 1)

    def _positions(self) -> tuple[dict[int, int], list[list[int]]]:
        """Each bank's chain position, and the banks at each position."""
        G = self._chain
        position = {bank: G - len(banks) + i for banks in self._groups for i, bank in enumerate(banks)}
        return position, [[bank for bank in range(self._plan.banks) if position[bank] == j] for j in range(G)]

    def rom_contents(self) -> list[tuple[int, list[int]]]:
        """Per chain position, its weight ROM's ``(width, words)`` (:func:`rom_words`); worked out once."""
        if self._rom_contents is None:
            p, q = self._plan, self._quant
            rom_w, rom_idx, _ = p.roms()
            self._rom_contents = [((q.weight.bits + p.index_bits) * p.rows * len(banks),
                                   rom_words(rom_w[:, banks, :], rom_idx[:, banks, :], q.weight.bits, p.index_bits))
                                  for banks in self._positions()[1]]
        return self._rom_contents

    def rom_files(self) -> tuple[dict[str, str], dict[str, str]]:
        """With ``rom_files``: each weight ROM's module (``.v``) and contents (``.mem``) by file name; else none."""
        if self._rom_files is None:
            return {}, {}
        depth = self._plan.passes * self._plan.k
        modules, mems = {}, {}
        for j, (width, words) in enumerate(self.rom_contents()):
            name = f"{self._rom_files}__rom_p{j}"
            modules[f"{name}.v"] = rom_module(name, width, depth)
            mems[f"{name}.mem"] = rom_mem_text(words, width)
        return modules, mems

    def elaborate(self, platform):
        m = Module()
        p, q = self._plan, self._quant
        n_pass, two = p.passes, self._has_h
        acc_shape = signed(self.sum_bits)
        rom_b = p.roms()[2]

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
        G, L, C = self._chain, self._tree_levels, len(self._chunks)
        elem = q.activation.shape()
        rom_layout = data.StructLayout({"w": q.weight.shape(), "idx": unsigned(p.index_bits)})
        position, at_position = self._positions()
        # The write ports, registered: the writer's address arithmetic and the bank decode
        # are then a cycle apart.
        ports = [(delay(m, port.valid, 1, name=f"wr{e}_valid"), delay(m, port.payload, 1, name=f"wr{e}"))
                 for e, port in enumerate(self.write_ports)]
        # The write into each bank's vector copies (at most one port writes a bank in a cycle).
        bank_wr = []
        for bank in range(p.banks):
            en = Signal(name=f"vwr_en_b{bank}")
            waddr = Signal(p.index_bits + 1, name=f"vwr_addr_b{bank}")
            wdata = Signal(elem, name=f"vwr_data_b{bank}")
            for valid, payload in ports:
                with m.If(valid & equals(payload.bank, bank)):
                    m.d.comb += [en.eq(1), waddr.eq(Cat(payload.addr, payload.buf)), wdata.eq(payload.data)]
            # Position j reads j cycles late, so its writes land j cycles late too: every
            # position sees the store exactly as position 0 does.
            j = position[bank]
            bank_wr.append(tuple(delay(m, s, j, name=f"{s.name}_p") for s in (en, waddr, wdata)))

        # Chains: the banks of a group sum their products through DSP48E1 post-adders,
        # P = M + (the previous bank's P). A group of n banks sits at chain positions
        # G - n .. G - 1, and position j runs j cycles behind position 0 (its ROM address,
        # vector half and mask are delayed j cycles), so every chain ends in step.
        # All the PEs at one position read the same ROM address, so their weights live in
        # one wide ROM word per address (:func:`rom_words`), in block RAM.
        addr_at = delay_taps(m, addr, range(G), name="addr")
        entries = {}                                # (lane, bank) -> ROM entry view
        for j, (banks, (width, words)) in enumerate(zip(at_position, self.rom_contents())):
            if self._rom_files is None:
                rom = memory.Memory(shape=unsigned(width), depth=n_pass * p.k, init=words,
                                    attrs={"rom_style": "block"})
                m.submodules[f"rom_p{j}"] = rom
                rd = rom.read_port()
                m.d.comb += rd.addr.eq(addr_at[j])
                word = rd.data
            else:
                word = Signal(width, name=f"rom_p{j}_data")
                m.submodules[f"rom_p{j}"] = Instance(f"{self._rom_files}__rom_p{j}", i_clk=ClockSignal(),
                                                     i_addr=addr_at[j], o_data=word)
            for lane in range(p.rows):
                for n, bank in enumerate(banks):
                    f = (lane * len(banks) + n) * rom_layout.size
                    entries[lane, bank] = rom_layout(word[f:f + rom_layout.size])
        buf_at = delay_taps(m, buf, range(1, G + 1), name="buf")
        mask_at = delay_taps(m, first & phase, range(1, G + 1), name="mask") if two else None

        # Stage times, counted from a slot's issue cycle at position 0: chain ends at
        # 4 + G, the tree over the chains (chunk j, j cycles later) at 4 + G + L, the
        # accumulator over a pass's slots one cycle later. Its start value (bias or
        # partial sum) is read from memory two cycles before the tree's sum and registered,
        # so no memory output drives the accumulator's start mux directly.
        t_tree = 4 + G + L
        first_acc = delay_taps(m, first_c, range(t_tree, t_tree + C), name="first_acc")
        init_addr, pass_out = delay_taps(m, pas, [t_tree - 2, t_tree + C], name="pas")
        if n_pass == 1:
            init_addr = 0                           # (one pass: no address)
        phase_init, recurrent_out = delay_taps(m, phase, [t_tree - 1, t_tree + C], name="phase") if two else (0, 0)
        sums, psum_writes = [], []
        # A row lane's partial-sum memory holds a word per pass. A shallow one stays in
        # distributed RAM: Yosys would put words of up to 36 bits in a RAMB18E1 of their own per
        # lane, block RAM the weight ROMs need (36 of them took the ESE-scale design past its part).
        shallow = n_pass <= SHALLOW_MEMORY_DEPTH
        for lane in range(p.rows):
            ends = []
            for banks in self._groups:
                prev = None
                for bank in banks:
                    j = position[bank]
                    entry = entries[lane, bank]
                    vec = memory.Memory(shape=elem, depth=2 << p.index_bits, init=[])
                    m.submodules[f"vec_l{lane}_b{bank}"] = vec
                    wp = vec.write_port()
                    m.d.comb += [wp.en.eq(bank_wr[bank][0]), wp.addr.eq(bank_wr[bank][1]),
                                 wp.data.eq(bank_wr[bank][2])]
                    vp = vec.read_port()
                    m.d.comb += vp.addr.eq(Cat(entry.idx, buf_at[j]))
                    # Every entry of the recurrent phase holds h_{t-1}: zero on a first step.
                    mask2 = Signal(name=f"mask_l{lane}_b{bank}")
                    w2 = Signal(q.weight.shape(), name=f"w_l{lane}_b{bank}")
                    m.d.sync += [mask2.eq(mask_at[j] if two else 0), w2.eq(entry.w)]
                    # DSP48E1 shape: A/B operand registers, M register, P register whose
                    # post-adder takes the previous bank's P (C input or PCIN cascade).
                    a3 = Signal(q.weight.shape(), name=f"opw_l{lane}_b{bank}")
                    b3 = Signal(elem, name=f"opv_l{lane}_b{bank}")
                    # (No wider than the sum: the bits above it would only wrap away.)
                    prod = Signal(signed(min(q.product.bits, self.sum_bits)), name=f"prod_l{lane}_b{bank}")
                    chain = Signal(acc_shape, name=f"chain_l{lane}_b{bank}")
                    m.d.sync += [
                        a3.eq(w2),
                        b3.eq(Mux(mask2, 0, vp.data)),
                        prod.eq(a3 * b3),
                        chain.eq(prod if prev is None else prod + prev),
                    ]
                    prev = chain
                ends.append(prev)
            # The accumulator's start value: the bias, aligned to the product's fraction
            # bits, plus the rounding offset; in the recurrent phase, the input phase's
            # partial sum (which holds them) instead.
            bias_rom = memory.Memory(shape=acc_shape, depth=n_pass, init=[
                (int(v) << q.bias_shift) + self.rounding_offset for v in rom_b[lane]])
            m.submodules[f"bias_l{lane}"] = bias_rom
            brd = bias_rom.read_port()
            m.d.comb += brd.addr.eq(init_addr)
            if two:
                psum = memory.Memory(shape=acc_shape, depth=n_pass, init=[],
                                     attrs={"ram_style": "distributed"} if shallow else {})
                m.submodules[f"psum_l{lane}"] = psum
                prd = psum.read_port()
                m.d.comb += prd.addr.eq(init_addr)
                psum_writes.append(psum.write_port())
            init = Signal(acc_shape, name=f"init_l{lane}")
            m.d.sync += init.eq(Mux(phase_init, prd.data, brd.data) if two else brd.data)
            tree = self._adder_tree(m, ends, lane)
            sums.append(self._accumulate(m, tree, init, first_acc, lane))

        done = delay(m, last_c, t_tree + C, name="done")
        for lane, total in enumerate(sums):
            # The offset is in the sum already: "truncate" just drops the bits.
            m.d.sync += self.o.payload.z[lane].eq(requantize(total, q.product.frac - self._drop, q.preact, "truncate"))
        if two:
            for wp, total in zip(psum_writes, sums):
                m.d.comb += [wp.en.eq(done & ~recurrent_out), wp.addr.eq(pass_out), wp.data.eq(total)]
            m.d.sync += self.o.valid.eq(done & recurrent_out)
        else:
            m.d.sync += self.o.valid.eq(done)
        m.d.sync += self.o.payload["pass"].eq(pass_out)
        return m

    @property
    def _drop(self) -> int:
        """Low bits of the gate sum that rounding drops: the deskew does not carry them.

        None with a recurrent phase: the input phase's partial sums keep every bit.
        """
        q = self._quant
        return 0 if self._has_h else max(0, q.product.frac - q.preact.frac)

    def _adder_tree(self, m, terms, lane):
        """Carry-pipelined pairwise sum of ``sum_bits``-wide terms; a register after each level.

        Returns the sum as chunks (:func:`chunk_bounds`), chunk ``j`` valid
        ``tree_levels + j`` cycles after the terms.
        """
        chunks, last = self._chunks, len(self._chunks) - 1
        # Skew the terms: chunk j enters j cycles after chunk 0.
        terms = [[delay(m, term[lo:hi], j, name=f"skew_l{lane}_t{n}_c{j}") for j, (lo, hi) in enumerate(chunks)]
                 for n, term in enumerate(terms)]
        for level in range(self._tree_levels):
            nxt = []
            for n in range(0, len(terms), 2):
                out, carry = [], Const(0)
                for j, (lo, hi) in enumerate(chunks):
                    s = Signal(hi - lo, name=f"sum_l{lane}_v{level}_{n // 2}_c{j}")
                    total = terms[n][j] if n + 1 == len(terms) else terms[n][j] + terms[n + 1][j] + carry
                    m.d.sync += s.eq(total[:hi - lo])
                    if j < last and n + 1 < len(terms):
                        carry = Signal(name=f"carry_l{lane}_v{level}_{n // 2}_c{j}")
                        m.d.sync += carry.eq(total[hi - lo])
                    out.append(s)
                nxt.append(out)
            terms = nxt
        assert len(terms) == 1
        return terms[0]

    def _accumulate(self, m, tree, init, first, lane):
        """Sum a pass's slots: chunk ``j`` of the accumulator starts from ``init``'s (at ``first[j]``)
        and adds chunk ``j`` of ``tree`` and the carry chunk ``j - 1`` registered a cycle earlier.

        Returns the pass's sum, deskewed and without its low :attr:`_drop` bits, ``chunks``
        cycles after the tree's chunk 0 of the pass's last slot.
        """
        chunks, last, drop = self._chunks, len(self._chunks) - 1, self._drop
        assert drop < chunks[last][1]
        carry, out = Const(0), []
        for j, (lo, hi) in enumerate(chunks):
            acc = Signal(hi - lo, name=f"acc_l{lane}_c{j}")
            start = delay(m, init[lo:hi], j, name=f"init_l{lane}_c{j}")
            total = Mux(first[j], start, acc) + tree[j] + carry
            m.d.sync += acc.eq(total[:hi - lo])
            if j < last:
                carry = Signal(name=f"acc_carry_l{lane}_c{j}")
                m.d.sync += carry.eq(total[hi - lo])
            # Deskew: wait for the top chunk; bits below the rounding point are not carried.
            if hi > drop:
                out.append(delay(m, acc[max(0, drop - lo):], last - j, name=f"deskew_l{lane}_c{j}"))
        return Cat(*out).as_signed()
