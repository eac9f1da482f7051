"""The carry-pipelined sums of :class:`~lstm_hw.generators.mvm.SparseMatVec`: its adder tree and its accumulator.

A sum wider than :data:`CHUNK_BITS` travels in chunks (:func:`chunk_bounds`):
chunk ``j`` runs ``j`` cycles behind chunk 0 ("chunk-skewed"), and each chunk
adds the carry its lower neighbour registered one cycle earlier
(:func:`carry_add`, :func:`carry_add_onto`). So no carry chain is longer than
one chunk, at the cost of ``chunks - 1`` cycles once, not per adder.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count, counter_shape, delay, delay_taps

__all__ = ["CHUNK_BITS", "SHALLOW_MEMORY_DEPTH", "chunk_bounds", "carry_add", "carry_add_onto", "sum_layout",
           "AdderTree", "StartCode", "Accumulator"]

#: The widest add in one cycle outside a DSP48E1. The accumulator's add has its
#: start/feedback mux in the LUT before each carry-chain bit (:func:`carry_add_onto`):
#: one LUT, then five CARRY4s for the carry in, 15 bits and the carry out, six logic levels.
CHUNK_BITS = 15

#: The deepest per-lane partial-sum memory (a word per pass) kept in distributed RAM.
SHALLOW_MEMORY_DEPTH = 128

#: Words of a RAM32M, the distributed RAM of shallow memories, and of a RAMB18E1 in its widest
#: (512 x 36) mode: a loadable start-value memory shares the partial-sum memory when both fit one of
#: these depths together (:meth:`Accumulator.shared_start`).
LUTRAM_DEPTH, BLOCK_RAM_DEPTH = 32, 512


@dataclass(frozen=True)
class StartCode:
    """How a loadable start value is held: ``value = (code << shift) + low``, ``code`` in ``bits`` two's-complement
    bits. ``low`` (below ``1 << shift``) is the bits every start value shares, wired as constants: the aligned
    bias's zero fraction bits with the rounding offset's bits among them."""

    bits: int
    shift: int = 0
    low: int = 0

    def __post_init__(self):
        check_count("bits", self.bits)
        check_count("shift", self.shift, 0)
        if not 0 <= self.low < 1 << self.shift:
            raise ValueError(f"low must be in [0, 2**shift = {1 << self.shift}), got {self.low}")

    @property
    def width(self) -> int:
        """Bits of the values the codes stand for."""
        return self.bits + self.shift

    def encode(self, value: int) -> int:
        """The code of ``value``, as an unsigned ``bits``-bit field; ``ValueError`` if no code stands for it."""
        code, rest = divmod(int(value) - self.low, 1 << self.shift)
        if rest or not -1 << (self.bits - 1) <= code < 1 << (self.bits - 1):
            raise ValueError(f"start value {value} is not (code << {self.shift}) + {self.low} for a code of "
                             f"{self.bits} signed bits")
        return code & ((1 << self.bits) - 1)

    def value(self, code):
        """The signed value that the ``bits``-bit ``code`` stands for (``width`` bits, the low ones constant)."""
        return Cat(Const(self.low, self.shift), code).as_signed() if self.shift else code.as_signed()


def chunk_bounds(width: int, max_bits: int = CHUNK_BITS) -> list[tuple[int, int]]:
    """``[lo, hi)`` bit ranges that split ``width`` bits into the fewest chunks of at most ``max_bits``, evenly."""
    n = -(-width // max_bits)
    size = -(-width // n)
    return [(lo, min(lo + size, width)) for lo in range(0, width, size)]


def carry_add(m: Module, a: list, b: list, sums: list[Signal]) -> list[Signal]:
    """``sums[j] <= a[j] + b[j] + carry[j - 1]`` for chunk-skewed ``a`` and ``b``; returns ``sums``.

    Chunk ``j``'s carry out is registered beside its sum (``<sum>_carry``) for
    chunk ``j + 1``, which comes a cycle later, so the chunk sums stay skewed.
    """
    carry = Const(0)
    for j, (x, y, s) in enumerate(zip(a, b, sums, strict=True)):
        total = x + y + carry
        m.d.sync += s.eq(total[:len(s)])
        if j < len(sums) - 1:
            carry = Signal(name=f"{s.name}_carry")
            m.d.sync += carry.eq(total[len(s)])
    return sums


def carry_add_onto(m: Module, base: list, addend: list, sums: list[Signal]) -> list[Signal]:
    """``sums[j] <= base[j] + addend[j] + carry[j - 1]`` as :func:`carry_add` adds, for registers ``base`` and
    logic ``addend``: on the carry chain, ``base`` is the DI input and ``addend`` only an input of the LUT
    that drives S, so ``addend``'s logic and the sum bit share that LUT.

    Written as an addition, which operand becomes DI is up to Yosys (``alumacc`` orders the two by their
    signals), and where it picks ``addend`` its logic takes a LUT of its own, a LUT more per bit. A
    subtraction keeps its order, so the sum is ``Cat(carry, base) - Cat(1, ~addend)``: its bits 1 to ``w``
    are the ``w``-bit sum, and its top bit is set exactly when there is no carry out. The carry in takes a
    position of the chain, below the sum.
    """
    carry = Const(0)
    for j, (x, y, s) in enumerate(zip(base, addend, sums, strict=True)):
        # (2x + c) - (2(2**w - 1 - y) + 1) = 2(x + y + c - 2**w) + 1 - c: bits 1 to w are x + y + c
        # modulo 2**w; bit w + 1, the sign, is set exactly when x + y + c < 2**w.
        total = Cat(carry, x) - Cat(Const(1, 1), ~y)
        m.d.sync += s.eq(total[1:len(s) + 1])
        if j < len(sums) - 1:
            carry = Signal(name=f"{s.name}_carry")
            m.d.sync += carry.eq(~total[len(s) + 1])
    return sums


def sum_layout(*, rows: int, passes: int, width: int, phase: bool) -> data.StructLayout:
    """A pass's sums: ``pass``, the ``phase`` it ran in (1: recurrent) if asked, and ``z``, a ``width``-bit sum per row."""
    return data.StructLayout({"pass": counter_shape(passes), **({"phase": 1} if phase else {}),
                              "z": data.ArrayLayout(signed(width), rows)})


class AdderTree(wiring.Component):
    """Each lane's terms summed pairwise, carry-pipelined, a register after each level.

    A level adds its terms in pairs (an odd one out is registered alone), chunk
    by chunk with :func:`carry_add`. Every sum is ``sum_bits`` wide and wraps
    modulo ``2**sum_bits``. Each combinational path is one chunk adder deep.

    Latency: a sum comes :attr:`latency` cycles after its terms, chunk by chunk:
    the number of levels, ``ceil(log2(terms))``. Throughput: a sum per lane every
    cycle. No handshake: every cycle carries a sum, and its user knows which count.

    Parameters
    ----------
    rows : int
        Lanes, each summed on its own.
    terms : int
        Terms per lane, at least 2.
    sum_bits : int
        Width of the terms and of the sum (:func:`chunk_bounds` splits it).

    Members
    -------
    terms : In(ArrayLayout(ArrayLayout(unsigned(sum_bits), terms), rows))
        Each lane's terms, two's complement, chunk-skewed: bits ``[lo, hi)`` of chunk ``j``
        ``j`` cycles after chunk 0.
    sum : Out(ArrayLayout(unsigned(sum_bits), rows))
        Each lane's sum, chunk-skewed.
    """

    def __init__(self, *, rows: int, terms: int, sum_bits: int):
        self._rows = check_count("rows", rows)
        self._terms = check_count("terms", terms, 2)
        self._chunks = chunk_bounds(check_count("sum_bits", sum_bits))
        self._levels = (terms - 1).bit_length()
        super().__init__({
            "terms": In(data.ArrayLayout(data.ArrayLayout(unsigned(sum_bits), terms), rows)),
            "sum": Out(data.ArrayLayout(unsigned(sum_bits), rows)),
        })

    @property
    def rows(self) -> int:
        """Lanes (``rows``)."""
        return self._rows

    @property
    def term_count(self) -> int:
        """Terms per lane (``terms``)."""
        return self._terms

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """The sum's chunks, ``[lo, hi)`` bit ranges (:func:`chunk_bounds`)."""
        return self._chunks

    @property
    def latency(self) -> int:
        """Cycles from the terms to their sum: one per level."""
        return self._levels

    def elaborate(self, platform):
        m = Module()
        for lane in range(self._rows):
            terms = [[term[lo:hi] for lo, hi in self._chunks] for term in self.terms[lane]]
            for level in range(self._levels):
                nxt = []
                for n in range(0, len(terms), 2):
                    name = f"sum_l{lane}_v{level}_{n // 2}"
                    if n + 1 == len(terms):
                        nxt.append([delay(m, chunk, 1, name=f"{name}_c{j}") for j, chunk in enumerate(terms[n])])
                    else:
                        sums = [Signal(hi - lo, name=f"{name}_c{j}") for j, (lo, hi) in enumerate(self._chunks)]
                        nxt.append(carry_add(m, terms[n], terms[n + 1], sums))
                terms = nxt
            m.d.comb += self.sum[lane].eq(Cat(*terms[0]))
        return m


class Accumulator(wiring.Component):
    """Each lane's sum over a pass's slots, from its start value; the pass's sum deskewed into one word.

    Chunk ``j`` of a lane's accumulator starts from chunk ``j`` of the start
    value at the pass's first slot (``first``) and adds chunk ``j`` of the slot's
    ``term`` and the carry chunk ``j - 1`` registered a cycle earlier
    (:func:`carry_add`): the start/feedback mux and one chunk adder deep.

    The start value of pass ``n`` is ``start[lane][n]`` from a ROM (the bias,
    aligned, and the rounding offset); with ``recurrent``, in the recurrent
    phase (``phase`` high), the pass's partial sum instead: its last ``sum``
    kept with ``writeback`` high, every bit of it. The start value is read
    :attr:`lead` cycles before it is needed and registered, so no memory
    output drives the start mux directly: the control of a slot (``slot``)
    comes :attr:`lead` cycles ahead of its term. A partial-sum memory of at
    most :data:`SHALLOW_MEMORY_DEPTH` words is kept in distributed RAM: block
    RAM is for the weight ROMs.

    Loadable start values (``start_code``) are distributed RAM, or with
    :attr:`shared_start` the upper half of the partial-sum memory, which the
    input phase reads and the ``start_wr`` writes share with the write-backs
    (they come only while no pass is in progress). In a memory of their own
    they are read and written at one address, the write's while the core is
    held for a load (``start_wr.held``, a register): a LUT a bit, where a read
    address of its own takes four LUTs for three bits.

    Latency: a pass's ``sum`` is valid :attr:`latency` cycles (``chunks``) after
    chunk 0 of its last slot's term; a partial sum written back in cycle ``c`` is
    read by a ``slot`` of cycle ``c + 1`` on. Throughput: a slot every cycle. No
    backpressure: ``sum`` is always ready.

    Parameters
    ----------
    rows : int
        Lanes.
    passes : int
        Passes, each summed on its own (the depth of the start-value memories).
    sum_bits : int
        Width of the terms and the accumulators (:func:`chunk_bounds` splits it).
    drop : int
        Low bits of the sum that ``sum`` leaves out (the output's rounding drops
        them); without ``recurrent`` the deskew does not carry them either.
    start : sequence of sequence of int
        ``start[lane][n]``: lane ``lane``'s start value in pass ``n`` (``sum_bits`` wide).
    recurrent : bool
        A recurrent phase: a partial-sum memory per lane, ``phase`` and ``writeback``.
    start_code : StartCode, optional
        The start values are loadable through ``start_wr`` (``hardware.weights = "ram"``), each held
        as its code (``start_code.bits`` wide) and sign-extended to the sum.

    Members
    -------
    term : In(ArrayLayout(unsigned(sum_bits), rows))
        Each lane's term, a slot's sum, chunk-skewed (the adder tree's sum, or a single chain's).
    slot : In(StructLayout({"first": 1, "last": 1, "pass": ..., "phase": 1}))
        The pass's first and last slot, the pass and (with ``recurrent``) the
        phase, :attr:`lead` cycles before chunk 0 of the slot's ``term``.
    sum : Out(stream.Signature(sum_layout(width=sum_bits - drop, phase=recurrent), always_ready=True))
        A pass's sums (their ``drop`` low bits left out), its pass and phase.
    writeback : In(1)
        Keep this cycle's ``sum`` as the partial sums of its pass (only with ``recurrent``).
    start_wr : In(StructLayout({"addr": counter_shape(passes), "data": start_code.bits, "en": rows, "held": 1}))
        Only with ``start_code``: lane ``l``'s start value of pass ``addr`` becomes the value of code
        ``data`` when ``en[l]``, seen by reads from the next cycle. ``held``: no pass is in progress and
        none starts (high around every write; a start-value memory of its own is read at ``addr`` then).
    """

    def __init__(self, *, rows: int, passes: int, sum_bits: int, drop: int, start, recurrent: bool,
                 start_code: StartCode | None = None):
        self._rows = check_count("rows", rows)
        self._passes = check_count("passes", passes)
        self._chunks = chunk_bounds(check_count("sum_bits", sum_bits))
        if not isinstance(recurrent, bool):
            raise TypeError(f"recurrent must be a bool, not {recurrent!r}")
        if check_count("drop", drop, 0) >= sum_bits:
            raise ValueError(f"drop must be below sum_bits = {sum_bits}, got {drop}")
        self._start = [[int(v) for v in lane] for lane in start]
        if len(self._start) != rows or any(len(lane) != passes for lane in self._start):
            raise ValueError(f"start must hold {passes} values for each of {rows} lanes")
        if start_code is not None:
            if not isinstance(start_code, StartCode):
                raise TypeError(f"start_code must be a StartCode, not {start_code!r}")
            if start_code.width > sum_bits:
                raise ValueError(f"start_code must be at most sum_bits = {sum_bits} wide, got {start_code.width}")
            self._codes = [[start_code.encode(v) for v in lane] for lane in self._start]
        if any(not -1 << (sum_bits - 1) <= v < 1 << (sum_bits - 1) for lane in self._start for v in lane):
            raise ValueError(f"start values must fit {sum_bits} signed bits")
        self._sum_bits, self._drop, self._recurrent, self._code = sum_bits, drop, recurrent, start_code
        slot = {"first": 1, "last": 1, "pass": counter_shape(passes), **({"phase": 1} if recurrent else {})}
        sums = sum_layout(rows=rows, passes=passes, width=sum_bits - drop, phase=recurrent)
        super().__init__({
            "term": In(data.ArrayLayout(unsigned(sum_bits), rows)),
            "slot": In(data.StructLayout(slot)),
            "sum": Out(stream.Signature(sums, always_ready=True)),
            **({"writeback": In(1)} if recurrent else {}),
            **({"start_wr": In(data.StructLayout({"addr": counter_shape(passes), "data": start_code.bits,
                                                   "en": rows, "held": 1}))}
               if start_code is not None else {}),
        })

    @property
    def rows(self) -> int:
        """Lanes (``rows``)."""
        return self._rows

    @property
    def passes(self) -> int:
        """Passes (``passes``): the depth of the start-value memories."""
        return self._passes

    @property
    def sum_bits(self) -> int:
        """Width of the terms and the accumulators (``sum_bits``)."""
        return self._sum_bits

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """The accumulators' chunks, ``[lo, hi)`` bit ranges (:func:`chunk_bounds`)."""
        return self._chunks

    @property
    def recurrent(self) -> bool:
        """A recurrent phase (``recurrent``): a partial-sum memory per lane, ``phase`` and ``writeback``."""
        return self._recurrent

    @property
    def start_code(self) -> StartCode | None:
        """The code of the loadable start values (``start_code``), None for start values in a ROM."""
        return self._code

    @property
    def shared_start(self) -> bool:
        """Loadable start values in the partial-sum memory's upper half: writable and recurrent, where the
        halves (a power of two of words each, at least the passes) fit together in the RAM32M or the
        512-word block RAM (a RAMB18E1 to 36 bits, a RAMB36E1 to 72) the partial sums alone take
        (:data:`LUTRAM_DEPTH`, :data:`BLOCK_RAM_DEPTH`)."""
        if self._code is None or not self._recurrent or self._sum_bits > 72:
            return False
        both = 2 << (self._passes - 1).bit_length()
        return both <= LUTRAM_DEPTH or (self._passes > SHALLOW_MEMORY_DEPTH and both <= BLOCK_RAM_DEPTH)

    @property
    def lead(self) -> int:
        """Cycles ``slot`` comes ahead of ``term``: the start value's memory read and its register."""
        return 2

    @property
    def latency(self) -> int:
        """Cycles from chunk 0 of a pass's last term to its ``sum``: the chunks, deskewed."""
        return len(self._chunks)

    def elaborate(self, platform):
        m = Module()
        chunks, last, drop, lead = self._chunks, len(self._chunks) - 1, self._drop, self.lead
        acc_shape = signed(self._sum_bits)
        slot = self.slot
        # Chunk j of a slot's term comes j cycles after chunk 0, which comes lead cycles after the slot.
        first = delay_taps(m, slot.first, range(lead, lead + len(chunks)), name="first")
        read_pass, out_pass = delay_taps(m, slot["pass"], [0, lead + self.latency], name="pass")
        if self._passes == 1:
            read_pass = 0                           # (one pass: no address)
        phase_init = []
        if self._recurrent:
            # (Start values in the partial-sum memory: the phase picks the half to read, no mux after it.)
            taps = [lead + self.latency] if self.shared_start else [lead - 1, lead + self.latency]
            *phase_init, out_phase = delay_taps(m, slot.phase, taps, name="phase")
            m.d.comb += self.sum.payload.phase.eq(out_phase)
        m.d.comb += [
            self.sum.valid.eq(delay(m, slot.last, lead + self.latency, name="done")),
            self.sum.payload["pass"].eq(out_pass),
        ]
        # A shallow partial-sum memory stays in distributed RAM: Yosys would put words of up to
        # 36 bits in a RAMB18E1 of their own per lane, block RAM the weight ROMs need (36 of them
        # took the ESE-scale design past its part).
        shallow = self._passes <= SHALLOW_MEMORY_DEPTH
        start_addr = read_pass
        if self._code is not None and not self.shared_start:
            start_addr = Signal.like(self.start_wr.addr, name="start_addr")
            m.d.comb += start_addr.eq(Mux(self.start_wr.held, self.start_wr.addr, read_pass))
        for lane in range(self._rows):
            init = Signal(acc_shape, name=f"init_l{lane}")
            if self.shared_start:
                psum_data = self._shared_memory(m, lane, read_pass, out_pass, init)
            else:
                psum_data = self._memories(m, lane, read_pass, start_addr, out_pass,
                                           phase_init[0] if phase_init else None, init, shallow=shallow)
            acc = [Signal(hi - lo, name=f"acc_l{lane}_c{j}") for j, (lo, hi) in enumerate(chunks)]
            start = [delay(m, init[lo:hi], j, name=f"init_l{lane}_c{j}") for j, (lo, hi) in enumerate(chunks)]
            term = [self.term[lane][lo:hi] for lo, hi in chunks]
            carry_add_onto(m, term, [Mux(f, s, a) for f, s, a in zip(first, start, acc)], acc)
            # Deskew: wait for the top chunk. The bits below the rounding point are carried only
            # into the partial sums, which keep every bit.
            keep = 0 if self._recurrent else drop
            total = Cat(*[delay(m, a[max(0, keep - lo):], last - j, name=f"deskew_l{lane}_c{j}")
                          for j, (a, (lo, hi)) in enumerate(zip(acc, chunks)) if hi > keep])
            m.d.comb += self.sum.payload.z[lane].eq(total[drop - keep:])
            if self._recurrent:
                m.d.comb += psum_data.eq(total)
        return m

    def _memories(self, m, lane, read_pass, start_addr, out_pass, phase_init, init, *, shallow):
        """Lane ``lane``'s start values (a ROM, or distributed RAM read and written at ``start_addr``) and partial
        sums, each in a memory of its own; returns the partial sums' write data (None without ``recurrent``)."""
        acc_shape = signed(self._sum_bits)
        # Writable, the start values stay in distributed RAM whatever their depth: the block RAMs are
        # the weights' and the ROM twin's, which keeps its start values in logic.
        writable = self._code is not None
        bias_rom = memory.Memory(shape=unsigned(self._code.bits) if writable else acc_shape, depth=self._passes,
                                 init=self._codes[lane] if writable else self._start[lane],
                                 attrs={"ram_style": "distributed"} if writable else {})
        m.submodules[f"bias_l{lane}"] = bias_rom
        brd = bias_rom.read_port()
        m.d.comb += brd.addr.eq(start_addr)
        start = brd.data
        if writable:
            start = self._code.value(brd.data)
            bwr = bias_rom.write_port()
            m.d.comb += [bwr.addr.eq(start_addr), bwr.data.eq(self.start_wr.data),
                         bwr.en.eq(self.start_wr.en[lane])]
        if self._recurrent:
            psum = memory.Memory(shape=acc_shape, depth=self._passes, init=[],
                                 attrs={"ram_style": "distributed"} if shallow else {})
            m.submodules[f"psum_l{lane}"] = psum
            prd = psum.read_port()
            wp = psum.write_port()
            m.d.comb += [prd.addr.eq(read_pass), wp.en.eq(self.writeback), wp.addr.eq(out_pass)]
            m.d.sync += init.eq(Mux(phase_init, prd.data, start))
            return wp.data
        m.d.sync += init.eq(start)
        return None

    def _shared_memory(self, m, lane, read_pass, out_pass, init):
        """Lane ``lane``'s partial sums (lower half) and loadable start values (upper half, sign-extended) in
        one memory (:attr:`shared_start`): the input phase reads the upper half, the recurrent phase the lower.
        Returns the partial sums' write data."""
        acc_shape = signed(self._sum_bits)
        half_bits = (self._passes - 1).bit_length()
        half = 1 << half_bits
        both = memory.Memory(shape=acc_shape, depth=2 * half, init=[0] * half + self._start[lane],
                             attrs={"ram_style": "distributed"} if 2 * half <= LUTRAM_DEPTH else {})
        m.submodules[f"psum_l{lane}"] = both
        rd, wp = both.read_port(), both.write_port()
        upper = ~self.slot.phase
        m.d.comb += rd.addr.eq(Cat(read_pass, upper) if half_bits else upper)
        held = self.start_wr.held          # (no write-back while held)
        start = Signal(acc_shape, name=f"start_wr_l{lane}")
        data = Signal(acc_shape, name=f"psum_data_l{lane}")
        upper_wr = Const(1, 1)
        m.d.comb += [
            start.eq(self._code.value(self.start_wr.data)),
            wp.en.eq(self.writeback | self.start_wr.en[lane]),
            wp.addr.eq(Mux(held, Cat(self.start_wr.addr, upper_wr) if half_bits else upper_wr, out_pass)),
            wp.data.eq(Mux(held, start, data)),
        ]
        m.d.sync += init.eq(rd.data)
        return data
