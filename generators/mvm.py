# amaranth: UnusedElaboratable=no
# (SparseMatVec builds its units with itself, for their latencies: they go unused only with it, and then it
# warns for itself where it was made.)
"""The gate matrix-vector product of one layer, bank-balanced sparse.

:class:`SparseMatVec` is built from the units of the ``mvm_*`` modules, each a
component of its own; this module re-exports their helpers, which the loaders
and the tests use.
"""

from itertools import accumulate

import numpy as np
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config.schema import QuantConfig
from .fixed import delay, delay_taps
from ..model.design import LayerPlan
from .mvm_issue import IssueSequencer, command_layout
from .mvm_mac import CHAIN_MAX, MacArray, chain_groups, chain_positions
from .mvm_output import OutputStage, preact_layout
from .image import LoadableMemory
from .mvm_rom import (RamShape, WeightRom, ram_mem_texts, ram_module, rom_mem_text, rom_module, rom_word_layout,
                      rom_words)
from .weight_loader import load_layout
from .mvm_sum import CHUNK_BITS, Accumulator, AdderTree, StartCode, chunk_bounds
from .mvm_vector import (VectorStore, group_slot, last_beat_lanes, vector_address, vector_cursor, vector_write_layout,
                         write_members, write_ports)
from ..model.sums import gate_sum_bits, round_bits, sum_offset
from ..numerics.fixed import signed_bits

__all__ = ["SparseMatVec", "load_member", "rom_words", "rom_mem_text", "rom_module", "vector_address",
           "vector_cursor", "last_beat_lanes", "group_slot", "vector_write_layout",
           "CHUNK_BITS", "chunk_bounds", "CHAIN_MAX", "chain_groups"]



def load_member(mvm) -> dict:
    """The ``load`` member of a unit holding ``mvm``, passed through to it: ``{}`` unless it is writable."""
    return {"load": In(mvm.signature.members["load"].shape)} if "load" in mvm.signature.members else {}


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

    Pipeline, a unit each (a component with its own latency; a stage table
    adds them up): the issue control (:class:`~.mvm_issue.IssueSequencer`),
    the weight ROMs (:class:`~.mvm_rom.WeightRom`, one per chain position:
    the ROM read), the vector store (:class:`~.mvm_vector.VectorStore`: the
    vector read), the MAC array (:class:`~.mvm_mac.MacArray`: operand
    registers, product register, chain sum, the shape of one DSP48E1 with its
    A/B, M and P registers, ``chain`` positions), the adder tree
    (:class:`~.mvm_sum.AdderTree`, one register per level; none for a single
    chain), the accumulator (:class:`~.mvm_sum.Accumulator`, with the chunk
    deskew) and the output stage (:class:`~.mvm_output.OutputStage`: the
    rounding register). A slot's control goes from the issue unit to each
    unit delayed to meet the slot's data there. The accumulator's start value
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
    writable : bool
        The weights, indices and biases loadable at run time through ``load``
        (``hardware.weights = "ram"``): the weight ROMs become simple dual-port block RAMs
        (:class:`~.mvm_rom.WeightRom`), the bias memories get a write port, and every sum is
        wide enough for any weights of the formats (:attr:`sum_bits`). They start with ``plan``'s.
    max_sum_bits : int
        ``hardware.sum_bits``: the widest a sum may be, 0 for no bound. Writable sums are this wide where the
        formats' bound is wider; weights whose sums could need more are refused
        (:func:`~lstm_hw.model.sums.gate_sum_bits`).

    Members
    -------
    wr : In(stream.Signature(vector_write_layout, always_ready=True))
        Vector element writes (:func:`vector_address`); always accepted, effective two cycles later
        (a read from the cycle after next sees them).
    wr_group : In(stream.Signature(vector_write_layout, always_ready=True)).array(group_writes)
        Further writes in the same cycle (present when ``group_writes > 0``).
        Every memory has one write port: the valid writes of a cycle, ``wr``
        included, must all go to different banks.
    cmd : In(stream.Signature(command_layout(plan)))
        Start a step on vector-store slot ``buf`` (its half; with interleaved sequences, and its
        sequence). ``first`` reads ``h_{t-1}`` as zero (a sequence's first step). Ready while no step is in progress.
        A plan with no ``h`` part has no ``first``.
    h_ready : In(1)
        The recurrent phase may start (only with an ``h`` part).
    h_go : Out(1)
        High in the cycle the unit leaves the wait for the recurrent phase, whose
        first issue cycle is the next one (only with an ``h`` part).
    o : Out(stream.Signature({"pass": ..., "z": ArrayLayout(preact, rows)}, always_ready=True))
        The pre-activations of hardware rows ``pass x rows ..``; no backpressure.
    load : In(load_layout(loadable memories))
        Only ``writable``: the loader's writes into :meth:`loadable_memories`, in that order
        (:class:`~.weight_loader.WeightLoader`); only while no step is in progress.
    """

    def __init__(self, *, plan: LayerPlan, quant: QuantConfig, group_writes: int = 0, chain: int = CHAIN_MAX,
                 rom_files: str | None = None, writable: bool = False, max_sum_bits: int = 0):
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
        if not isinstance(writable, bool):
            raise TypeError(f"writable must be a bool, not {writable!r}")
        self._rom_files = rom_files
        self._writable = writable
        self._rom_contents = None
        self._plan = plan
        self._quant = quant
        self._groups = chain_groups(plan.banks, chain)
        if not isinstance(max_sum_bits, int) or max_sum_bits < 0:
            raise ValueError(f"max_sum_bits must be a non-negative integer, got {max_sum_bits!r}")
        self._sum_bits = gate_sum_bits(plan, quant, writable=writable, most=max_sum_bits)
        self._build_units(group_writes)
        super().__init__({
            **write_members(plan, quant.activation.shape(), group_writes),
            "cmd": In(stream.Signature(command_layout(plan))),
            **({"h_ready": In(1), "h_go": Out(1)} if self._has_h else {}),
            "o": Out(stream.Signature(preact_layout(rows=plan.rows, passes=plan.passes, preact=quant.preact),
                                      always_ready=True)),
            **({"load": In(load_layout(self.loadable_memories()))} if writable else {}),
        })

    def _build_units(self, group_writes: int):
        """The units, in pipeline order, and the stage table: when a slot's results leave each unit."""
        p, q = self._plan, self._quant
        positions, at_position = self._positions()
        self._store = VectorStore(plan=p, element=q.activation.shape(), group_writes=group_writes,
                                  positions=positions)
        self._roms = []
        for j, banks in enumerate(at_position):
            layout = rom_word_layout(rows=p.rows, banks=len(banks), weight=q.weight.shape(), index_bits=p.index_bits)
            contents = ({"module": f"{self._rom_files}__rom_p{j}"} if self._rom_files is not None
                        else {"words": self.rom_contents()[j][1]})
            self._roms.append(WeightRom(layout=layout, depth=p.passes * p.k, writable=self._writable, **contents))
        self._mac = MacArray(rows=p.rows, groups=self._groups, weight=q.weight.shape(), element=q.activation.shape(),
                             product_bits=q.product.bits, sum_bits=self.sum_bits, mask=self._has_h)
        self._tree = AdderTree(rows=p.rows, terms=len(self._groups), sum_bits=self.sum_bits) if len(self._groups) > 1 \
            else None
        # The accumulator's start value: the bias, aligned to the product's fraction bits, plus
        # the rounding offset; in the recurrent phase, the input phase's partial sum (which holds them).
        start = [[(int(v) << q.bias_shift) + self.rounding_offset for v in lane] for lane in p.roms()[2]]
        # The bits rounding drops: the accumulator leaves them out of the sums it hands the output
        # stage (all but the sign bit, at most: a layer's sum may be narrower than them).
        drop = min(round_bits(self._quant), self.sum_bits - 1)
        self._start = start
        self._acc = Accumulator(rows=p.rows, passes=p.passes, sum_bits=self.sum_bits, drop=drop, start=start,
                                recurrent=self._has_h, start_code=self.start_code if self._writable else None)
        self._output = OutputStage(rows=p.rows, passes=p.passes, width=self.sum_bits - drop,
                                   frac=q.product.frac - drop, preact=q.preact, writeback=self._has_h)
        # The stage table: each unit's latency, in pipeline order, and the cycle a slot's results leave
        # it, counted from the slot's issue cycle (at chain position 0). A unit takes the results of
        # the one before as they come, and the issue unit's control delayed to meet them.
        stages = {"rom": self._roms[0].latency, "store": self._store.latency, "mac": self._mac.latency,
                  "tree": self._tree.latency if self._tree else 0, "acc": self._acc.latency,
                  "out": self._output.latency}
        self._times = dict(zip(stages, accumulate(stages.values())))
        self._issue = IssueSequencer(plan=p, gap=self.input_gap)

    @property
    def write_ports(self) -> list:
        """``wr`` and the ``wr_group`` ports, in that order: element ``e`` of a group goes through port ``e``."""
        return write_ports(self)

    @property
    def _has_h(self) -> bool:
        """The plan has a recurrent phase: a layer's plan, not a dense head's."""
        return self._plan.k_h > 0

    @property
    def plan(self) -> LayerPlan:
        return self._plan

    @property
    def quant(self) -> QuantConfig:
        """The number formats (``quant``)."""
        return self._quant

    @property
    def latency(self) -> int:
        """Cycles from the last issue cycle of a pass to its ``o.valid``: ``5 + chain + tree_levels + chunks``."""
        return self._times["out"]

    @property
    def input_gap(self) -> int:
        """Wait cycles, at least, between the input phase's last issue cycle and ``h_go``.

        The recurrent phase reads pass ``n``'s partial sum as the accumulator takes the
        control of the pass's first slot, ``2 + chain + tree_levels`` cycles after its issue
        cycle; the input phase writes it as the output stage takes the pass's sum,
        ``latency - 1`` cycles after the pass's last issue cycle
        (:meth:`~lstm_hw.generators.mvm_issue.IssueSequencer.least_gap`).
        """
        t = self._times
        return IssueSequencer.least_gap(self._plan, sum_read=t["tree"] - self._acc.lead, sum_write=t["acc"])

    @property
    def x_cycles(self) -> int:
        """Cycles from taking a command to ``h_go``, ``h_ready`` high: the input phase and the gap.

        The recurrent phase then issues from the cycle after ``h_go``. Without an ``h``
        part, the issue cycles plus one.
        """
        return self._issue.x_cycles

    @property
    def rounding_offset(self) -> int:
        """The rounding constant added with the bias, so the output stage only drops bits."""
        return sum_offset(self._quant)

    @property
    def sum_bits(self) -> int:
        """Width of the gate sums (:func:`~lstm_hw.model.sums.gate_sum_bits`): for ROM contents the
        widest any row's sum of these weights (its products, its aligned bias and the rounding offset)
        can be over every input the activation format holds; writable, the widest any weights of the
        formats give, or ``max_sum_bits`` where narrower. Every accumulator, adder-tree node and partial
        sum is this wide and wraps modulo ``2**sum_bits``; only the final sum has to fit, so partial
        sums may wrap.
        """
        return self._sum_bits

    def _positions(self) -> tuple[list[int], list[list[int]]]:
        """Each bank's chain position, and the banks at each position."""
        position = chain_positions(self._groups)
        return position, [[bank for bank, j in enumerate(position) if j == n] for n in range(max(position) + 1)]

    def rom_contents(self) -> list[tuple[int, list[int]]]:
        """Per chain position, its weight ROM's ``(width, words)`` (:func:`rom_words`); worked out once."""
        if self._rom_contents is None:
            p, q = self._plan, self._quant
            rom_w, rom_idx, _ = p.roms()
            self._rom_contents = [(width, rom_words(rom_w[:, banks, :], rom_idx[:, banks, :], q.weight.bits,
                                                    p.index_bits))
                                  for width, banks in self._rom_widths()]
        return self._rom_contents

    def rom_files(self) -> tuple[dict[str, str], dict[str, str]]:
        """With ``rom_files``: each weight ROM's module (``.v``) and contents (``.mem``) by file name; else none.

        Writable, each is a :func:`~.mvm_rom.ram_module` with a ``.mem`` file per column."""
        if self._rom_files is None:
            return {}, {}
        depth = self._plan.passes * self._plan.k
        modules, mems = {}, {}
        for j, (width, words) in enumerate(self.rom_contents()):
            name = f"{self._rom_files}__rom_p{j}"
            if self._writable:
                modules[f"{name}.v"] = ram_module(name, width, depth)
                mems.update(ram_mem_texts(name, words, width))
            else:
                modules[f"{name}.v"] = rom_module(name, width, depth)
                mems[f"{name}.mem"] = rom_mem_text(words, width)
        return modules, mems

    def loadable_memories(self) -> list[LoadableMemory]:
        """The memories a weight image fills, in image order (:mod:`~.image`): the weight memories by chain
        position (``rom_p<j>``, the rows of its :class:`~.mvm_rom.RamShape` in its fields), then the biases
        (``bias``, a field per row lane)."""
        p = self._plan
        roms = [LoadableMemory(path=f"rom_p{j}", depth=shape.rows, fields=shape.fields)
                for j, shape in enumerate(self._ram_shapes())]
        return roms + [LoadableMemory(path="bias", depth=p.passes, fields=(self.start_code.bits,) * p.rows)]

    @property
    def start_code(self) -> StartCode:
        """How a loadable start value, ``(b << bias_shift) + rounding_offset``, is held: the code
        ``b + (rounding_offset >> bias_shift)`` in as many bits as the bias format's codes need, above the
        offset's ``bias_shift`` low bits, which every start value shares; no wider than :attr:`sum_bits`
        (narrower than the formats' bound only where the weights are bounded: a start value is a row's sum
        with every input zero, so fits it)."""
        q = self._quant
        b, shift, offset = q.bias_format, q.bias_shift, self.rounding_offset
        bits = signed_bits(b.min_int + (offset >> shift), b.max_int + (offset >> shift))
        return StartCode(bits=max(1, min(bits, self.sum_bits - shift)), shift=shift, low=offset & ((1 << shift) - 1))

    def _ram_shapes(self) -> list[RamShape]:
        """Per chain position, how its writable weight memory is held (:class:`~.mvm_rom.RamShape`)."""
        p = self._plan
        return [RamShape.of(p.passes * p.k, width) for width, _ in self._rom_widths()]

    def _rom_widths(self) -> list[tuple[int, list[int]]]:
        """Per chain position, its weight ROM's width and banks."""
        p, q = self._plan, self._quant
        return [((q.weight.bits + p.index_bits) * p.rows * len(banks), banks) for banks in self._positions()[1]]

    def loadable_contents(self) -> list[tuple[LoadableMemory, list[list[int]]]]:
        """:meth:`loadable_memories` with their entries: each entry's fields as unsigned integers, what these
        weights put in them (:func:`~.image.image_words`)."""
        memories = self.loadable_memories()
        out = []
        for mem, shape, (_, words) in zip(memories, self._ram_shapes(), self.rom_contents()):
            shifts = np.cumsum((0,) + mem.fields[:-1])
            rows = shape.fold(words)
            out.append((mem, [[(row >> int(lo)) & ((1 << bits) - 1) for lo, bits in zip(shifts, mem.fields)]
                              for row in rows]))
        code = self.start_code
        lanes = [[code.encode(v) for v in lane] for lane in self._start]
        out.append((memories[-1], [list(entry) for entry in zip(*lanes)]))
        return out

    def elaborate(self, platform):
        m = Module()
        t, acc = self._times, self._acc
        m.submodules.issue = issue = self._issue
        wiring.connect(m, wiring.flipped(self.cmd), issue.cmd)
        if self._has_h:
            m.d.comb += [issue.h_ready.eq(self.h_ready), self.h_go.eq(issue.h_go)]
        slot = issue.slot

        m.submodules.store = store = self._store
        for port, store_port in zip(self.write_ports, write_ports(store), strict=True):
            wiring.connect(m, wiring.flipped(port), store_port)
        m.submodules.mac = mac = self._mac
        # Chain position j runs j cycles behind position 0: its ROM address here; its vector
        # half, mask and vector writes in the store and the MAC array. So every chain ends in step.
        addr_at = delay_taps(m, slot.addr, range(mac.positions), name="addr")
        m.d.comb += store.buf.eq(delay(m, slot.buf, t["rom"], name="buf"))
        if self._has_h:
            m.d.comb += mac.mask.eq(delay(m, slot.mask, t["rom"], name="mask"))
        # All the PEs at one position read the same ROM address, so their weights live in one
        # wide ROM word per address (:func:`rom_words`), in block RAM.
        rows, entries = self._plan.rows, {}         # (lane, bank) -> its ROM entry
        for j, (rom, banks) in enumerate(zip(self._roms, self._positions()[1])):
            m.submodules[f"rom_p{j}"] = rom
            m.d.comb += rom.addr.eq(addr_at[j])
            entries.update({(lane, bank): rom.data[lane * len(banks) + n]
                            for lane in range(rows) for n, bank in enumerate(banks)})
        # (One assignment per port: Amaranth checks the drivers of every bit of a target per assignment.)
        pes = [entries[lane, bank] for lane in range(rows) for bank in range(self._plan.banks)]
        m.d.comb += [store.idx.eq(Cat(pe.idx for pe in pes)), mac.w.eq(Cat(pe.w for pe in pes)), mac.v.eq(store.v)]

        if self._tree is not None:
            m.submodules.tree = tree = self._tree
            m.d.comb += [tree.terms.eq(mac.chains), acc.term.eq(tree.sum)]
        else:
            m.d.comb += [acc.term[lane].eq(chains[0]) for lane, chains in enumerate(mac.chains)]
        m.submodules.acc = acc
        m.submodules.out = output = self._output
        # The accumulator takes a slot's control `lead` cycles before the slot's term.
        control = Signal(acc.slot.shape(), name="acc_slot")
        m.d.comb += [control[field].eq(slot[field]) for field, _ in acc.slot.shape()]
        m.d.comb += acc.slot.eq(delay(m, control, t["tree"] - acc.lead, name="acc_slot"))
        wiring.connect(m, acc.sum, output.sum)
        if self._has_h:
            m.d.comb += acc.writeback.eq(output.writeback)
        wiring.connect(m, output.o, wiring.flipped(self.o))

        if self._writable:      # the loader's writes: each field from the data of its width
            load, en = self.load, 0
            memories = self.loadable_memories()
            for rom, mem in zip(self._roms, memories):
                m.d.comb += [rom.wr.addr.eq(load.addr),
                             rom.wr.data.eq(Cat(load.data[f"bits{bits}"] for bits in mem.fields)),
                             rom.wr.en.eq(load.en[en:en + len(mem.fields)])]
                en += len(mem.fields)
            m.d.comb += [acc.start_wr.addr.eq(load.addr),
                         acc.start_wr.data.eq(load.data[f"bits{self.start_code.bits}"]),
                         acc.start_wr.en.eq(load.en[en:]), acc.start_wr.held.eq(load.held)]
        return m
