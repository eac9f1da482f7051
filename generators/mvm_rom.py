"""The weight ROMs of :class:`~lstm_hw.generators.mvm.SparseMatVec`: their words, their files and the component."""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count, counter_shape, delay, equals
from .image import column_fields, split_fields

__all__ = ["SLICE_DEPTH", "LANE_BITS", "FOLDED_FIELD_BITS", "RamShape", "rom_words", "rom_mem_text", "rom_module",
           "ram_module", "ram_mem_texts", "rom_word_layout", "rom_write_layout", "WeightRom"]

#: Words of a RAMB36E1 in its 4K x 9 mode, the one Yosys maps a weight memory deeper than that to, and
#: the bits of its lane.
SLICE_DEPTH, LANE_BITS = 4096, 9
#: A folded memory's fields (and block RAM columns): the most whole lanes that two image words hold.
FOLDED_FIELD_BITS = 64 // LANE_BITS * LANE_BITS


def _lanes(fields) -> int:
    return sum(-(-bits // LANE_BITS) for bits in fields)


@dataclass(frozen=True)
class RamShape:
    """How a writable weight memory of ``depth`` words of ``width`` bits is held: ``slices`` words side by side
    in each of ``rows`` rows, word ``a`` in slice ``a // rows`` of row ``a % rows`` (``rows`` a power of two).

    A memory deeper than ``slice_depth`` words takes block RAMs ``slice_depth`` deep, a slice of lanes
    (:data:`LANE_BITS` bits) per ``slice_depth`` words. As a ROM, Yosys lets two slices share the lane where
    one ends; a write cannot enable part of a lane, so a writable memory would take whole lanes per slice.
    Where that costs lanes, the slices are folded into one row instead (:meth:`of`), written in fields
    of whole lanes (:data:`FOLDED_FIELD_BITS`, two image words each: the loader keeps one word back, as
    for the slices' own words), and a read picks its slice by the address's top bits (what the slices'
    output mux does anyway). Unfolded, ``slices`` is 1, ``rows`` is ``depth`` and the fields are the
    word's columns (:func:`~.image.column_fields`).
    """

    depth: int
    width: int
    slices: int
    rows: int

    @classmethod
    def of(cls, depth: int, width: int, slice_depth: int | None = None) -> "RamShape":
        """The shape of a ``depth`` x ``width`` memory: folded when that takes fewer lanes (slices of
        ``slice_depth`` words, by default :data:`SLICE_DEPTH`)."""
        slice_depth = SLICE_DEPTH if slice_depth is None else slice_depth
        check_count("depth", depth)
        check_count("width", width)
        if check_count("slice_depth", slice_depth) & (slice_depth - 1):
            raise ValueError(f"slice_depth must be a power of two, got {slice_depth}")
        slices = -(-depth // slice_depth)
        folded = split_fields(slices * width, FOLDED_FIELD_BITS)
        if slices > 1 and _lanes(folded) < slices * _lanes(column_fields(width)):
            return cls(depth=depth, width=width, slices=slices, rows=slice_depth)
        return cls(depth=depth, width=width, slices=1, rows=depth)

    @property
    def row_bits(self) -> int:
        return self.slices * self.width

    @property
    def fields(self) -> tuple[int, ...]:
        """A row's fields, low first: each a block RAM column written on its own enable, and an image field."""
        return split_fields(self.row_bits, FOLDED_FIELD_BITS) if self.slices > 1 else column_fields(self.width)

    def fold(self, words: list[int]) -> list[int]:
        """The rows holding ``words`` (``depth`` of them; the slots past them zero)."""
        if len(words) != self.depth:
            raise ValueError(f"expected {self.depth} words, got {len(words)}")
        rows = [0] * self.rows
        for a, word in enumerate(words):
            rows[a % self.rows] |= word << (a // self.rows * self.width)
        return rows


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


def rom_word_layout(*, rows: int, banks: int, weight, index_bits: int) -> data.ArrayLayout:
    """A word of :func:`rom_words` as a layout: entry ``lane * banks + bank`` is that PE's ``w`` and ``idx``."""
    return data.ArrayLayout(data.StructLayout({"w": weight, "idx": unsigned(index_bits)}), rows * banks)


def rom_mem_text(words: list[int], width: int) -> str:
    """A ROM's ``$readmemh`` file: one word a line from address 0, ``ceil(width / 4)`` hex digits."""
    digits = -(-width // 4)
    return "".join(f"{word:0{digits}x}\n" for word in words)


def rom_module(name: str, width: int, depth: int) -> str:
    """The Verilog of weight ROM ``name``: a block RAM read one word a cycle, loaded from ``<name>.mem``.

    Its contents (:func:`rom_mem_text`) never pass through Amaranth and Yosys as text. Its
    behaviour is that of the :class:`~amaranth.lib.memory.Memory` that :class:`WeightRom`
    holds without ``module``: ``data`` is the word at the ``addr`` of the cycle before.
    """
    abits = counter_shape(depth).width   # the ROM address counter
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


def ram_module(name: str, width: int, depth: int) -> str:
    """The Verilog of writable weight memory ``name``: :func:`rom_module` with a write port.

    It holds the rows of its :class:`RamShape` in a block RAM per field of a row
    (:attr:`RamShape.fields`), each loaded from ``<name>_c<j>.mem``
    (:func:`ram_mem_texts`) and written, its row at ``waddr`` from its bits of
    ``wdata``, when ``we[j]`` is high: one write port and one read port, a simple
    dual-port block RAM. A folded memory's ``data`` is the slice of the row read that
    the address's top bits (registered beside it) name. Reads and writes never meet
    (the loader writes only while the core is idle).
    """
    shape = RamShape.of(depth, width)
    abits, rbits = counter_shape(depth).width, counter_shape(shape.rows).width
    columns = shape.fields
    row = "row" if shape.slices > 1 else "data"
    folded = f" folded into {shape.rows} rows of {shape.slices}," if shape.slices > 1 else ""
    lines = [f"/* Generated by lstm-hw: a writable weight memory, {depth} words of {width} bits{folded} in "
             f"{len(columns)} column(s), {name}_c<j>.mem */",
             "",
             f"module {name}(clk, addr, data, waddr, wdata, we);",
             "  input clk;", "  wire clk;",
             f"  input [{abits - 1}:0] addr;", f"  wire [{abits - 1}:0] addr;",
             f"  output [{width - 1}:0] data;", f"  {'wire' if shape.slices > 1 else 'reg'} [{width - 1}:0] data;",
             f"  input [{rbits - 1}:0] waddr;", f"  wire [{rbits - 1}:0] waddr;",
             f"  input [{shape.row_bits - 1}:0] wdata;", f"  wire [{shape.row_bits - 1}:0] wdata;",
             f"  input [{len(columns) - 1}:0] we;", f"  wire [{len(columns) - 1}:0] we;"]
    read_addr = "addr"
    if shape.slices > 1:
        sbits = abits - rbits
        lines += [f"  reg [{shape.row_bits - 1}:0] row;", f"  reg [{sbits - 1}:0] slice;",
                  "  always @(posedge clk)", f"    slice <= addr[{abits - 1}:{rbits}];"]
        picks = [f"slice == {sbits}'d{n} ? row[{(n + 1) * width - 1}:{n * width}]" for n in range(shape.slices - 1)]
        last = shape.slices - 1
        lines.append(f"  assign data = {' : '.join(picks + [f'row[{(last + 1) * width - 1}:{last * width}]'])};")
        read_addr = f"addr[{rbits - 1}:0]"
    lo = 0
    for j, bits in enumerate(columns):
        hi = lo + bits - 1
        lines += ['  (* ram_style = "block" *)',
                  f"  reg [{bits - 1}:0] mem_c{j} [{shape.rows - 1}:0];",
                  f'  initial $readmemh("{name}_c{j}.mem", mem_c{j}, 0, {shape.rows - 1});',
                  "  always @(posedge clk)",
                  f"    if (we[{j}]) mem_c{j}[waddr] <= wdata[{hi}:{lo}];",
                  "  always @(posedge clk)",
                  f"    {row}[{hi}:{lo}] <= mem_c{j}[{read_addr}];"]
        lo += bits
    return "\n".join(lines + ["endmodule", ""])


def ram_mem_texts(name: str, words: list[int], width: int) -> dict[str, str]:
    """The ``.mem`` files of writable weight memory ``name`` (:func:`ram_module`): each column's bits of its rows."""
    shape = RamShape.of(len(words), width)
    rows = shape.fold(words)
    out, lo = {}, 0
    for j, bits in enumerate(shape.fields):
        out[f"{name}_c{j}.mem"] = rom_mem_text([(w >> lo) & ((1 << bits) - 1) for w in rows], bits)
        lo += bits
    return out


def rom_write_layout(shape: RamShape) -> data.StructLayout:
    """A writable weight memory's write port: a row's address, its data and an enable per column."""
    return data.StructLayout({"addr": counter_shape(shape.rows), "data": shape.row_bits, "en": len(shape.fields)})


class WeightRom(wiring.Component):
    """A weight ROM in block RAM, read one word a cycle.

    Without ``module`` it holds ``words`` in an Amaranth
    :class:`~amaranth.lib.memory.Memory` (``rom_style = "block"``), which
    Amaranth's simulator runs. With ``module`` it elaborates to an instance of
    that Verilog module (:func:`rom_module`), which loads its words from a
    ``.mem`` file of its own: the instance is then a cell of the module that
    holds this component, not a module of Amaranth's, so the ROM's Verilog
    module and file are named after the path of that instance.

    Latency: ``data`` is the word at the ``addr`` of :attr:`latency` cycle
    before. Throughput: a word every cycle.

    Parameters
    ----------
    layout : Layout
        A word (:func:`rom_word_layout`).
    depth : int
        Words.
    words : list of int, optional
        The words, ``depth`` of them, each a ``layout.size``-bit unsigned integer (:func:`rom_words`).
    module : str, optional
        The Verilog module to instantiate instead; exactly one of ``words`` and ``module`` is given.
    writable : bool
        A write port ``wr`` (``hardware.weights = "ram"``): the rows of a :class:`RamShape`, a block
        RAM per field of a row (:attr:`RamShape.fields`), each written on its own enable; the module
        is then :func:`ram_module`'s.
    slice_depth : int
        Only ``writable``: the :class:`RamShape`'s slice depth (:data:`SLICE_DEPTH`).

    Members
    -------
    addr : In(counter_shape(depth))
        The address.
    data : Out(layout)
        The word.
    wr : In(rom_write_layout(RamShape.of(depth, layout.size, slice_depth)))
        Only ``writable``: column ``j`` of the row at ``wr.addr`` becomes its bits of ``wr.data``
        when ``wr.en[j]``, seen by reads from the next cycle. Never together with a read.
    """

    def __init__(self, *, layout: data.Layout, depth: int, words: list[int] | None = None, module: str | None = None,
                 writable: bool = False, slice_depth: int | None = None):
        if not isinstance(layout, data.Layout):
            raise TypeError(f"layout must be a data.Layout, not {layout!r}")
        check_count("depth", depth)
        if (words is None) == (module is None):
            raise ValueError("exactly one of words and module must be given")
        if module is not None and not (isinstance(module, str) and module.isidentifier()):
            raise ValueError(f"module must be a Verilog module name (an identifier), got {module!r}")
        if words is not None and (len(words) != depth or any(not 0 <= w < 1 << layout.size for w in words)):
            raise ValueError(f"words must be {depth} unsigned integers of {layout.size} bits")
        if not isinstance(writable, bool):
            raise TypeError(f"writable must be a bool, not {writable!r}")
        self._layout, self._depth, self._words, self._module = layout, depth, words, module
        self._writable = writable
        self._shape = RamShape.of(depth, layout.size, slice_depth)
        if module is not None and writable and self._shape != RamShape.of(depth, layout.size):
            raise ValueError("a module's memory has the slice depth ram_module gives it")
        super().__init__({"addr": In(counter_shape(depth)), "data": Out(layout),
                          **({"wr": In(rom_write_layout(self._shape))} if writable else {})})

    @property
    def layout(self) -> data.Layout:
        """A word (``layout``)."""
        return self._layout

    @property
    def depth(self) -> int:
        """Words (``depth``)."""
        return self._depth

    @property
    def writable(self) -> bool:
        """A write port ``wr`` (``writable``): a block RAM per field of a :attr:`ram_shape` row."""
        return self._writable

    @property
    def ram_shape(self) -> RamShape:
        """The words folded into rows of block RAM (:meth:`RamShape.of` of ``depth``, the word's width and
        ``slice_depth``); the memories' shape when :attr:`writable`."""
        return self._shape

    @property
    def latency(self) -> int:
        """Cycles from an address to its word: the block RAM's read register."""
        return 1

    def elaborate(self, platform):
        if self._module is not None:
            ports = {"i_waddr": self.wr.addr, "i_wdata": self.wr.data, "i_we": self.wr.en} if self._writable else {}
            return Instance(self._module, i_clk=ClockSignal(), i_addr=self.addr, o_data=self.data, **ports)
        m = Module()
        if not self._writable:
            m.submodules.mem = rom = memory.Memory(shape=unsigned(self._layout.size), depth=self._depth,
                                                   init=self._words, attrs={"rom_style": "block"})
            rd = rom.read_port()
            m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
            return m
        shape = self._shape
        rbits = counter_shape(shape.rows).width
        rows, lo, reads = shape.fold(self._words), 0, []
        for j, bits in enumerate(shape.fields):
            mask = (1 << bits) - 1
            m.submodules[f"mem_c{j}"] = mem = memory.Memory(
                shape=unsigned(bits), depth=shape.rows, init=[(w >> lo) & mask for w in rows],
                attrs={"ram_style": "block"})
            rd, wp = mem.read_port(), mem.write_port()
            m.d.comb += [rd.addr.eq(self.addr[:rbits] if shape.slices > 1 else self.addr), wp.addr.eq(self.wr.addr),
                         wp.data.eq(self.wr.data[lo:lo + bits]), wp.en.eq(self.wr.en[j])]
            reads.append(rd.data)
            lo += bits
        row = Cat(*reads)
        if shape.slices == 1:
            m.d.comb += self.data.eq(row)
            return m
        # The slice the address named, its top bits registered beside the read.
        slice_ = delay(m, self.addr[rbits:], 1, name="slice")
        width = self._layout.size
        word = row[(shape.slices - 1) * width:]
        for n in reversed(range(shape.slices - 1)):
            word = Mux(equals(slice_, n), row[n * width:(n + 1) * width], word)
        m.d.comb += self.data.eq(word)
        return m
