"""Resources and clock of a design without synthesis: an analytical model of what Yosys maps it to.

:func:`estimate` builds the design's components (:class:`~lstm_hw.generators.top.LSTMTop`, without
elaborating them) and reads every unit's parameters from them, so the widths, depths and memory
shapes are the generators' own. From those:

* **DSP48E1**: every multiplier the structure holds (a MAC per PE, the Horner steps of every
  activation unit, the cell update's three products), each split as Yosys's ``mul2dsp`` splits it
  for a 25 x 18 DSP48E1 (:func:`mul_dsps`).
* **BRAM36**: every memory (weight ROMs or writable weight memories, vector stores, partial sums
  and start values, cell states, activation tables, FIFOs) mapped as Yosys 0.23's
  ``memory_libmap`` maps it for xc7: the cheapest of block RAM (RAMB18E1 half a BRAM36, RAMB36E1),
  distributed RAM and logic by its cost rules (:func:`memory_mapping`).
* **LUT and FF**: per unit, a count of its datapath bits times coefficients fitted on the designs
  of ``benchmarks/estimate.py`` (:data:`LOGIC`), plus the distributed RAM's LUTs.
* **Clock**: :data:`FMAX_RULE`.

The figures carry the keys of :func:`lstm_hw.synth.yosys.resource_counts` (``luts``, ``ffs``,
``dsps``, ``bram36``, ...), so :func:`~lstm_hw.synth.report.utilization` and
:func:`~lstm_hw.synth.report.verdict` take them as they take Yosys's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from amaranth.hdl import Shape

from ..config.parts import parse_part
from ..errors import UsageError
from ..model.design import Design

__all__ = ["estimate", "estimate_report", "format_text", "mul_dsps", "map_memory", "memory_mapping", "Memory",
           "memories", "multipliers", "design_units", "unit_features", "logic_counts", "clock_estimate", "CATEGORIES",
           "FMAX_RULE", "LOGIC", "MODEL_RULE"]

# -- multipliers -------------------------------------------------------------------

#: xc7's DSP48E1 multiplier as ``synth_xilinx`` maps ``$mul`` cells (``mul2dsp.v``): A and B widths, the
#: widths of A's and B's pieces when a wider one is split, and the narrowest operands and product it takes.
DSP_A, DSP_B, DSP_PARTIAL, DSP_MIN_AB, DSP_MIN_Y = 25, 18, 18, 2, 9


def mul_dsps(a: int, b: int, y: int | None = None) -> int:
    """DSP48E1s of a signed ``a`` x ``b``-bit multiplier with a ``y``-bit product (default ``a + b``), as
    Yosys's ``mul2dsp`` splits it: none below 2-bit operands or a 9-bit product (logic), one up to 25 x 18,
    else pieces of 17 bits (18 with their sign) of the wider operand, each mapped again."""
    y = a + b if y is None else y
    if a < b:
        a, b = b, a
    return _mul_dsps(a, b, y)


def _mul_dsps(a: int, b: int, y: int) -> int:
    if a < DSP_MIN_AB or b < DSP_MIN_AB or y < DSP_MIN_Y:
        return 0
    step = DSP_PARTIAL - 1                       # a piece's bits, its sign bit a zero
    if a > DSP_A:
        n = (a - DSP_A + step - 1) // step
        last = a - n * step
        return n * _mul_dsps(DSP_PARTIAL, b, min(y, b + DSP_PARTIAL)) + _mul_dsps(last, b, b + last)
    if b > DSP_B:
        n = (b - DSP_B + step - 1) // step
        last = b - n * step
        return n * _mul_dsps(a, DSP_PARTIAL, min(y, a + DSP_PARTIAL)) + _mul_dsps(a, last, a + last)
    return 1


# -- memories ----------------------------------------------------------------------

@dataclass(frozen=True)
class Memory:
    """One memory of the design as ``memory_libmap`` sees it: ``depth`` words of ``width`` bits, one
    synchronous read port, a write port (one enable) or none (a ROM), and the ``ram_style``/``rom_style``
    the generator gives it ("block", "distributed" or "" for Yosys's choice); ``unit`` names what it holds
    ("weights", "vector", "start values", "partial sums", "cell state", "activation" or "fifo").
    ``single_port``: the read and the write share one address (one read-write port)."""

    unit: str
    depth: int
    width: int
    writable: bool
    style: str = ""
    single_port: bool = False


#: Yosys 0.23's xc7 libraries (``brams_xc4v.txt`` with HAS_SIZE_36, HAS_CASCADE, HAS_MIXWIDTH_SDP;
#: ``lutrams_xc5v.txt``): (primitive, cost, address bits, widths, widthscale).
_BLOCK = (
    ("ramb18", 129, 14, (1, 2, 4, 9, 18), 0),            # true dual-port RAMB18E1
    ("ramb36", 257, 15, (1, 2, 4, 9, 18, 36), 0),        # true dual-port RAMB36E1
    ("ramb18", 129, 14, (1, 2, 4, 9, 18, 36), 0),        # simple dual-port RAMB18E1
    ("ramb36", 257, 15, (1, 2, 4, 9, 18, 36, 72), 0),    # simple dual-port RAMB36E1
)
_DISTRIBUTED = (                                          # simple dual-port distributed RAM
    ("ram32m", 8, 5, (6,), 7),
    ("ram64m", 8, 6, (3,), 7),
)
_SINGLE_PORT = (                                          # single-port distributed RAM (one read-write port)
    ("ram32m", 8, 5, (8,), 8),                            # a RAM32M as 32 x 8
    ("ram64x1s", 8, 6, (4,), 8),                          # a RAM64X1S a bit used
    ("ram128x1s", 8, 7, (2,), 8),
    ("ram256x1s", 8, 8, (1,), 8),
)
#: LUTs of each distributed-RAM primitive; a RAM32M or RAM64M counts a unit of the library (four LUTs), the
#: single-bit ones a bit (``units`` of :func:`memory_mapping`).
_LUTRAM_LUTS = {"ram32m": 4, "ram64m": 4, "ram64x1s": 1, "ram128x1s": 2, "ram256x1s": 4}
_LUTRAMS = tuple(_LUTRAM_LUTS)
#: Cost per bit of a memory lowered to logic (``synth_xilinx`` passes ``-logic-cost-rom 0.015625``).
_LOGIC_COST = {"rom": 1.0 / 64, "ram": 1.0}
#: ``memory_libmap``'s weights of the read multiplexers, write demultiplexers and emulated port features.
_FACTOR_MUX, _FACTOR_DEMUX, _FACTOR_EMU = 0.5, 0.5, 2
_BYTE = 9


def _geometry(mem: Memory, abits: int, widths: tuple, cost: int, widthscale: int) -> tuple[float, int, int]:
    """The cheapest ``(cost, units, slices)`` of one memory kind over its widths (``memory_libmap``'s
    handle_geom, for one read port, at most one write port with a single enable, no wide ports): ``slices``
    is how many primitive depths the memory spans, each a read-multiplexer input."""
    best = None
    for i, unit in enumerate(widths):
        byte = 1 if not mem.writable else min(_BYTE, unit)
        swizzle = -(-mem.width // byte) * byte
        words = 1 << (abits - i) if widthscale == 0 else 1 << abits
        mult_a = -(-mem.depth // words)
        units = -(-(mult_a * swizzle) // unit)
        total = (cost - widthscale) * units + widthscale * mult_a * mem.width / unit
        total += _FACTOR_MUX * (mult_a - 1) * mem.width
        total += _FACTOR_DEMUX * (mult_a if mult_a > 1 and mem.writable else 0)
        total += 0 if mem.single_port else _FACTOR_EMU * 1      # the read port not shared with a write port
        if best is None or total < best[0]:
            best = (total, units, mult_a)
    return best


def memory_mapping(mem: Memory) -> tuple[str, int, int]:
    """What Yosys maps ``mem`` to: ``(primitive, count, slices)``, primitive ``ramb18``, ``ramb36``,
    ``ram32m``, ``ram64m``, ``ram64x1s``, ``ram128x1s``, ``ram256x1s`` or ``logic`` (count: the memory's bits;
    slices: 1). A single-bit primitive counts one per bit of each slice."""
    # memory_libmap's order (distributed RAM's library first, its single-port kind first), the first of equal
    # costs winning; distributed RAM takes no ROMs (prune_rom).
    distributed = (_SINGLE_PORT if mem.single_port else ()) + _DISTRIBUTED
    options = (distributed if mem.style != "block" and mem.writable else ()) + \
        (_BLOCK if mem.style != "distributed" else ())
    # A style rules logic out unless nothing else takes the memory; memory_libmap compares the truncated cost.
    logic = int(mem.width * mem.depth * _LOGIC_COST["ram" if mem.writable else "rom"])
    best = None if mem.style else logic
    choice = ("logic", mem.width * mem.depth, 1)
    for prim, cost, abits, widths, scale in options:
        total, units, slices = _geometry(mem, abits, widths, cost, scale)
        if best is None or total < best:
            best, choice = total, (prim, mem.width * slices if prim.endswith("x1s") else units, slices)
    return choice


def map_memory(mem: Memory) -> tuple[str, int]:
    """What Yosys maps ``mem`` to: ``(primitive, count)`` of :func:`memory_mapping`."""
    return memory_mapping(mem)[:2]


# -- the design's units ------------------------------------------------------------------

def _units(top) -> dict[str, list]:
    """Every component reachable from ``top`` (built, not elaborated), by class name, each marked as built on
    purpose (:func:`~lstm_hw.generators.top.mark_built`)."""
    from ..generators.top import mark_built
    out: dict = {}
    for c in mark_built(top):
        out.setdefault(type(c).__name__, []).append(c)
    return out


def design_units(design: Design) -> dict[str, list]:
    """The components of ``design`` as Verilog is emitted from them (built, not elaborated), by class name."""
    from ..emit.files import build_top
    return _units(build_top(design))


def _width(shape) -> int:
    return Shape.cast(shape).width


def memories(units: dict) -> list[Memory]:
    """Every memory of the design's units (:func:`design_units`)."""
    from ..generators.mvm_sum import LUTRAM_DEPTH, SHALLOW_MEMORY_DEPTH
    out = []
    for rom in units.get("WeightRom", []):
        width, depth = rom.layout.size, rom.depth
        if rom.writable:
            shape = rom.ram_shape
            out += [Memory("weights", shape.rows, bits, True, "block") for bits in shape.fields]
        else:
            out.append(Memory("weights", depth, width, False, "block"))
    for store in units.get("VectorStore", []):
        p = store.plan
        out += [Memory("vector", 2 << p.index_bits, _width(store.element), True)] * (p.rows * p.banks)
    for acc in units.get("Accumulator", []):
        rows, passes, bits = acc.rows, acc.passes, acc.sum_bits
        writable = acc.start_code is not None
        if acc.shared_start:
            both = 2 << (passes - 1).bit_length()
            out += [Memory("partial sums", both, bits, True, "distributed" if both <= LUTRAM_DEPTH else "")] * rows
            continue
        out += [Memory("start values", passes, acc.start_code.bits if writable else bits, writable,
                       "distributed" if writable else "", single_port=writable)] * rows
        if acc.recurrent:
            shallow = passes <= SHALLOW_MEMORY_DEPTH
            out += [Memory("partial sums", passes, bits, True, "distributed" if shallow else "")] * rows
    for lanes in units.get("CellLanes", []):
        out += [Memory("cell state", lanes.slots, _width(lanes.math.cell.shape()), True)] * len(lanes.cells)
    for act in units.get("PolyActivation", []):
        t = act.table
        abits = max(1, (t.segments - 1).bit_length())
        out.append(Memory("activation", max(2, 1 << abits), sum(t.coef_widths), False))
    for fifo in units.get("BufferedFIFO", []):
        if fifo.depth > 1:
            out.append(Memory("fifo", fifo.depth - 1, _width(fifo.shape), True))
    return out


def multipliers(units: dict) -> list[tuple[str, int, int, int]]:
    """Every multiplier of the design's units: ``(unit, a bits, b bits, product bits)``."""
    from ..generators.activation import horner_ranges
    from ..numerics.fixed import signed_bits
    out = []
    for mac in units.get("MacArray", []):
        n = mac.rows * len(mac.bank_positions)
        out += [("mac", mac.weight.width, mac.element.width, mac.product.width)] * n
    for act in units.get("PolyActivation", []):
        t = act.table
        if not t.degree:
            continue
        tbits = signed_bits(-t.centre, (1 << t.seg_shift) - 1 - t.centre)
        a = t.coef_widths[t.degree]
        for p_lo, p_hi, a_lo, a_hi in horner_ranges(t):
            out.append(("activation", a, tbits, signed_bits(p_lo, p_hi)))
            a = signed_bits(a_lo, a_hi)
    for cell in units.get("CellUpdate", []):
        m = cell.math
        nl, c = m.nonlin.bits, m.cell.bits
        out += [("cell", nl, c, nl + c), ("cell", nl, nl, 2 * nl), ("cell", nl, nl, 2 * nl)]
    return out


# -- logic ------------------------------------------------------------------------------

#: The units the logic model counts, by the instance names of their components under a layer (or the head):
#: ``activation`` (every sigmoid/tanh unit), ``cell`` (the cell lanes: each cell update and its state memory),
#: ``accumulator``, ``vector`` (the vector store), ``matrix`` (the rest of the matrix unit: issue control,
#: MAC-array chain skew, adder tree, output stage, delay lines), ``layer`` (loader, h writer, step control,
#: output FIFO, gate gather) and ``top`` (framer, weight loader, ports).
CATEGORIES = ("activation", "cell", "accumulator", "vector", "matrix", "layer", "top")

#: LUTs and FFs of logic per unit and feature (:func:`unit_features`), fitted on benchmarks/estimate.py's
#: designs by non-negative least squares (``python benchmarks/estimate.py --fit``).
LOGIC = {
    "luts": {
        "activation": {"out_bits": 4.8248, "read_bits": 1.1438, "rom_bits": 0.0067},
        "cell": {"lanes": 32.8641, "mux_bits": 1.1269, "pipe_bits": 0.0014, "width_bits": 0.0282},
        "accumulator": {
            "deskew_bits": 0.2061, "lane_bits": 1.4408, "lanes": 6.6904, "mux_bits": 0.8104, "read_bits": 0.3114,
            "rom_bits": 0.0088},
        "vector": {"mux_bits": 1.035, "pe_bits": 0.0683, "pes": 0.9135, "port_bits": 0.3734, "position_bits": 0.2954},
        "matrix": {
            "delay_bits": 0.0801, "fabric_mac_bits": 0.3654, "mux_bits": 0.5068, "tree_bits": 0.9888, "units": 12.2114},
        "layer": {
            "element_bits": 6.2393, "extra_lane_bits": 1.7669, "mux_bits": 1.3128, "queue_bits": 3.9886,
            "units": 27.6245},
        "top": {"loader": 97.0989, "units": 18.694},
    },
    "ffs": {
        "activation": {"adder_bits": 1.4416, "pipe_bits": 0.5708, "rom_bits": 0.0019},
        "cell": {"mux_bits": 2.7822, "pipe_bits": 1.1907, "width_bits": 0.5584},
        "accumulator": {"deskew_bits": 1.1624, "lane_bits": 1.5238, "mux_bits": 0.0752, "read_bits": 0.8381},
        "vector": {
            "mux_bits": 0.0969, "pe_bits": 0.0195, "pes": 0.5188, "port_bits": 0.2002, "position_bits": 0.9779,
            "read_bits": 0.9773},
        "matrix": {
            "delay_bits": 0.9036, "fabric_mac_bits": 0.6958, "mux_bits": 0.0163, "out_bits": 0.5922,
            "skew_bits": 0.9297, "tree_bits": 1.0266, "units": 11.3963},
        "layer": {
            "element_bits": 2.1945, "extra_lane_bits": 0.7987, "mux_bits": 1.2396, "queue_bits": 4.6577,
            "units": 104.6203},
        "top": {"extra_lane_bits": 1.0425, "loader": 69.2502, "units": 24.1397},
    },
}

FMAX_RULE = ("lstm-hw report's delay rule (lstm_hw.synth.yosys.DELAY_MODEL) on the paths that limit the "
             "calibration designs: an activation unit's clamp (a CARRY4 compare and four LUTs, 4.0 ns at speed "
             "grade -1); a weight memory's block-RAM read (no output register) through its slices' read "
             "multiplexer (a LUT level per factor of four slices) into a distributed-RAM vector store's read "
             "address; a multiplier wider than 25 x 18, whose DSP48E1 pieces' products are registered in the "
             "fabric. Scaled by the speed grade and capped as report caps it")


def _mux_levels(inputs: int) -> int:
    """LUT levels of a multiplexer of ``inputs`` (a LUT6 picks one of four)."""
    levels = 0
    while inputs > 1:
        inputs, levels = -(-inputs // 4), levels + 1
    return levels


def clock_estimate(design: Design, mapped: list[tuple["Memory", tuple[str, int, int]]], units: dict) -> float:
    """fmax in MHz by :data:`FMAX_RULE`, from the memories as they map (:func:`memory_mapping`)."""
    from .yosys import DELAY_MODEL as d, FMAX_CEILING, SPEED_FACTOR
    period = d["overhead"] + d["CARRY4"] + 4 * d["LUT"]
    vector = [(prim, slices) for mem, (prim, _, slices) in mapped if mem.unit == "vector"]
    lutram = [d["LUTRAM"] + _mux_levels(slices) * d["LUT"] for prim, slices in vector if prim in _LUTRAMS]
    folded = max([rom.ram_shape.slices for rom in units.get("WeightRom", []) if rom.writable], default=1)
    for mem, (prim, _, slices) in mapped:
        if mem.unit == "weights" and prim.startswith("ramb"):
            period = max(period, d["overhead"] + d["BRAM_unreg"] + _mux_levels(slices * folded) * d["LUT"]
                         + max(lutram, default=0.0))
    if any(mul_dsps(a, b, y) > 1 for _, a, b, y in multipliers(units)):
        period = max(period, d["overhead"] + d["DSP_noMREG"])    # a split product registered in the fabric
    grade = parse_part(design.config.hardware.part).speed_grade
    fabric, bram = FMAX_CEILING.get(grade, FMAX_CEILING["-1"])
    ceiling = min(fabric, bram) if any(prim.startswith("ramb") for _, (prim, _, _) in mapped) else fabric
    return round(min(1000.0 / (period * SPEED_FACTOR.get(grade, 1.0)), ceiling), 1)


def _skew_bits(chunks) -> int:
    """Register bits of a chunk-skewed word's deskew (or skew): chunk ``j`` waits ``last - j`` (or ``j``) cycles."""
    return sum((hi - lo) * j for j, (lo, hi) in enumerate(chunks))


def unit_features(units: dict, mapped: list | None = None) -> dict[str, Counter]:
    """Per unit of :data:`CATEGORIES`, the counts its LUTs and FFs scale with (summed over its instances);
    ``mapped``: the memories with their :func:`memory_mapping` (default: worked out here)."""
    from ..generators.activation import horner_ranges
    from ..generators.mvm_vector import write_ports
    from ..numerics.fixed import signed_bits
    f = {c: Counter() for c in CATEGORIES}
    for act in units.get("PolyActivation", []):
        t, a = act.table, f["activation"]
        d = t.degree
        abits = max(1, (t.segments - 1).bit_length())
        tbits = signed_bits(-t.centre, (1 << t.seg_shift) - 1 - t.centre) if d else 0
        pipe = t.in_fmt.bits + sum(t.coef_widths) + tbits + 2 * (3 * d + 2) + 2 * t.out_fmt.bits + act.latency
        for n, (p_lo, p_hi, a_lo, a_hi) in enumerate(horner_ranges(t) if d else []):
            pipe += signed_bits(p_lo, p_hi) + signed_bits(a_lo, a_hi) + (tbits + t.coef_widths[d - 1 - n]) * (3 * n + 1)
        a["units"] += 1
        a["adder_bits"] += sum(signed_bits(a_lo, a_hi) for _, _, a_lo, a_hi in (horner_ranges(t) if d else []))
        a["rom_bits"] += max(2, 1 << abits) * sum(t.coef_widths)
        a["pipe_bits"] += pipe
        a["out_bits"] += t.out_fmt.bits
    for lanes in units.get("CellLanes", []):
        m, c = lanes.math, f["cell"]
        for cell in lanes.cells:
            tanh = cell.tanh_cell.latency
            c["lanes"] += 1
            c["pipe_bits"] += (m.nonlin.bits * (cell.latency - cell.c_lag - 2) + m.cell.bits * (tanh + 2)
                               + cell.latency)
            c["width_bits"] += 2 * m.cell.bits + m.activation.bits + 2 * m.nonlin.bits
    for acc in units.get("Accumulator", []):
        a, rows, bits = f["accumulator"], acc.rows, acc.sum_bits
        a["lanes"] += rows
        a["lane_bits"] += rows * bits
        a["deskew_bits"] += rows * (_skew_bits(acc.chunks) + _skew_bits(acc.chunks[::-1]))
        if acc.start_code is None:
            a["rom_bits"] += rows * acc.passes * bits
    for store in units.get("VectorStore", []):
        p, v = store.plan, f["vector"]
        element = _width(store.element)
        ports = len(write_ports(store))
        v["pes"] += p.rows * p.banks
        v["pe_bits"] += p.rows * p.banks * element
        v["position_bits"] += sum(store.positions) * (element + p.index_bits + 2)
        v["port_bits"] += ports * p.banks * (element + p.index_bits + 2)
    for mvm in units.get("SparseMatVec", []):
        p, x = mvm.plan, f["matrix"]
        x["units"] += 1
        x["out_bits"] += p.rows * mvm.quant.preact.bits
        x["delay_bits"] += mvm.latency * (p.rows + (p.passes * p.k).bit_length())
    for mac in units.get("MacArray", []):
        f["matrix"]["skew_bits"] += mac.rows * len(mac.groups) * _skew_bits(mac.chunks)
        w, v, prod = mac.weight.width, mac.element.width, mac.product.width
        if mul_dsps(w, v, prod) > 1:   # split across DSP48E1s: operand and product registers stay in the fabric
            f["matrix"]["fabric_mac_bits"] += mac.rows * len(mac.bank_positions) * (w + v + prod)
    for tree in units.get("AdderTree", []):
        f["matrix"]["tree_bits"] += tree.rows * (tree.term_count - 1) * tree.chunks[-1][1]
    for queue in units.get("WordQueue", []):
        if queue.hold:
            f["layer"]["queue_bits"] += _width(queue.word)
    for top in units.get("LSTMTop", []):
        lanes = top.design.lanes
        f["top"]["units"] += 1
        f["top"]["extra_lane_bits"] += _width(top.signature.members["s_axis_tdata"].shape) * (lanes - 1) // lanes
        f["top"]["loader"] += len(units.get("WeightLoader", []))
        for layer in units.get("LSTMLayer", []) + units.get("DenseHead", []):
            beat = _width(layer.signature.members["o"].signature.members["payload"].shape)
            f["layer"]["units"] += 1
            f["layer"]["element_bits"] += beat // lanes
            f["layer"]["extra_lane_bits"] += beat * (lanes - 1) // lanes
    # The read multiplexers of memories deeper than one primitive (each slice an input), and the read
    # registers of memories outside block RAM.
    category = {"weights": "matrix", "vector": "vector", "start values": "accumulator", "partial sums": "accumulator",
                "cell state": "cell", "activation": "activation", "fifo": "layer"}
    if mapped is None:
        mapped = [(mem, memory_mapping(mem)) for mem in memories(units)]
    for mem, (prim, _, slices) in mapped:
        f[category[mem.unit]]["mux_bits"] += mem.width * (slices - 1)
        if not prim.startswith("ramb"):     # the read register in flip-flops, not inside a block RAM
            f[category[mem.unit]]["read_bits"] += mem.width
    for rom in units.get("WeightRom", []):
        if rom.writable:
            f["matrix"]["mux_bits"] += rom.layout.size * (rom.ram_shape.slices - 1)
    return f


def logic_counts(features: dict, logic: dict | None = None) -> dict[str, float]:
    """LUTs and FFs of logic (distributed RAM not included) for :func:`unit_features`, with ``logic``'s
    coefficients (default :data:`LOGIC`)."""
    logic = LOGIC if logic is None else logic
    return {res: sum(coefs.get(k, 0.0) * v for c, coefs in per.items() for k, v in features[c].items())
            for res, per in logic.items()}


def estimate(design: Design, top=None) -> dict:
    """Resources and clock of ``design`` as ``lstm-hw report`` would find them, from its structure.

    Returns the report's count keys (``luts``, ``lut_logic``, ``lutram_luts``, ``ffs``, ``dsps``,
    ``ramb18``, ``ramb36``, ``bram36``), ``fmax_mhz`` (:data:`FMAX_RULE`), and the figures behind them:
    ``dsps_by_unit`` and ``memories`` (each kind of memory, its shape, what it maps to and how many).
    ``top`` is the design's top as :func:`~lstm_hw.emit.files.build_top` builds it, when the caller has
    one already (built here otherwise).
    """
    if not isinstance(design, Design):
        raise UsageError(f"estimate: expected a Design, got {type(design).__name__}")
    if top is None:
        from ..emit.files import build_top
        top = build_top(design)
    units = _units(top)
    mapped = [(mem, memory_mapping(mem)) for mem in memories(units)]
    prims: Counter = Counter()
    for _, (prim, n, _) in mapped:
        prims[prim] += n
    dsps: Counter = Counter()
    for unit, a, b, y in multipliers(units):
        dsps[unit] += mul_dsps(a, b, y)
    logic = logic_counts(unit_features(units, mapped))
    lutram = sum(_LUTRAM_LUTS[prim] * prims[prim] for prim in _LUTRAMS)
    lut_logic = round(logic["luts"])
    return {
        "luts": lut_logic + lutram,
        "lut_logic": lut_logic,
        "lutram_luts": lutram,
        "ffs": round(logic["ffs"]),
        "dsps": sum(dsps.values()),
        "ramb18": prims["ramb18"],
        "ramb36": prims["ramb36"],
        "bram36": prims["ramb36"] + prims["ramb18"] / 2,
        "fmax_mhz": clock_estimate(design, mapped, units),
        "dsps_by_unit": dict(dsps),
        "memories": _summary(mapped),
    }


MODEL_RULE = ("DSP48E1s and block RAM as Yosys 0.23 maps the design's multipliers and memories, LUT and FF "
              "from per-unit coefficients fitted against Yosys (docs/measurements.md, Resource estimate)")


def estimate_report(design: Design) -> dict:
    """What ``lstm-hw report --estimate`` prints: :func:`estimate`'s figures, the fit on the part, the clock
    estimate and the throughput from the metadata, as a JSON-ready dict shaped like
    :func:`~lstm_hw.synth.report.build_report`'s where the figures are the same."""
    from ..emit.files import build_top, metadata
    from .report import OPS_RULE, throughput, utilization, verdict
    if not isinstance(design, Design):
        raise UsageError(f"estimate: expected a Design, got {type(design).__name__}")
    top = build_top(design)
    est = estimate(design, top)
    meta = metadata(design, top, [])
    config = design.config
    part = parse_part(config.hardware.part)
    counts = {k: est[k] for k in ("luts", "lut_logic", "lutram_luts", "ffs", "dsps", "ramb18", "ramb36", "bram36")}
    util = utilization(counts, part)
    clock = float(meta["clock_mhz"])
    return {
        "top": config.hardware.top,
        "part": {"name": part.name, "device": part.device.name, "family": part.device.family,
                 "package": part.package, "speed_grade": part.speed_grade},
        "estimate": {"model": MODEL_RULE},
        "resources": counts,
        "utilization": util,
        "verdict": verdict(util),
        "dsp": {"total": est["dsps"], "by_unit": est["dsps_by_unit"], "macs": meta["macs"]},
        "memories": est["memories"],
        "timing": {"estimated_fmax_mhz": est["fmax_mhz"], "clock_mhz": clock,
                   "meets_clock_estimate": est["fmax_mhz"] >= clock, "rule": FMAX_RULE},
        "performance": {**throughput(meta, clock), "rule": OPS_RULE},
    }


def format_text(rep: dict) -> str:
    """:func:`estimate_report` as an engineer reads it, in the layout of ``lstm-hw report``'s text."""
    from .report import _pct
    r, u, d, t, p = rep["resources"], rep["utilization"], rep["dsp"], rep["timing"], rep["performance"]
    part = rep["part"]
    by_unit = ", ".join(f"{unit} {n}" for unit, n in d["by_unit"].items())
    lines = [
        f"{rep['top']} on {part['name']} ({part['family']} {part['device']}, speed grade {part['speed_grade']})",
        f"ESTIMATE without synthesis (an analytical model): {rep['estimate']['model']}",
        "",
        f"{'resource':<10} {'estimate':>9} {'available':>10} {'util':>7}",
        f"{'LUT':<10} {r['luts']:>9} {u['luts']['available']:>10} {_pct(u['luts']):>7}   "
        f"logic {r['lut_logic']}, LUTRAM {r['lutram_luts']}",
        f"{'FF':<10} {r['ffs']:>9} {u['ffs']['available']:>10} {_pct(u['ffs']):>7}",
        f"{'DSP48E1':<10} {r['dsps']:>9} {u['dsps']['available']:>10} {_pct(u['dsps']):>7}   "
        f"{by_unit or 'none'} (macs {d['macs']})",
        f"{'BRAM36':<10} {r['bram36']:>9g} {u['bram36']['available']:>10} {_pct(u['bram36']):>7}   "
        f"RAMB36E1 {r['ramb36']}, RAMB18E1 {r['ramb18']} (a RAMB18E1 is half a BRAM36)",
    ]
    blocks: Counter = Counter()
    for m in rep["memories"]:
        if m["mapped"] in ("ramb18", "ramb36"):
            blocks[m["unit"], m["mapped"]] += m["count"] * m["instances"]
    if blocks:
        names = {"ramb18": "RAMB18E1", "ramb36": "RAMB36E1"}
        lines.append("block RAM by unit: " + ", ".join(f"{unit} {n} {names[prim]}"
                                                      for (unit, prim), n in sorted(blocks.items())))
    v = rep["verdict"]
    if v["fits"]:
        lines.append(f"verdict (estimate): fits {part['name']} (fullest: {v['fullest']['resource']} at "
                     f"{v['fullest']['percent']:.1f}%)")
    else:
        over = "; ".join(f"{o['resource']} needs {o['used']:g} of {o['available']} ({o['percent']:.0f}%, "
                         f"{o['over']:g} over)" for o in v["overflows"])
        lines.append(f"verdict (estimate): DOES NOT FIT {part['name']}: {over}")
    lines += [
        "",
        f"clock estimate: fmax ~{t['estimated_fmax_mhz']:.0f} MHz; clock_mhz {t['clock_mhz']:g} "
        + ("is within the estimate" if t["meets_clock_estimate"] else "is above the estimate"),
        f"  rule: {t['rule']}.",
        "",
        f"cycles per timestep: {p['cycles_per_timestep']} (ideal {p['ideal_cycles_per_timestep']:g}); "
        f"latency {p['latency_cycles']} cycles = {p['latency_us']:g} us at {p['clock_mhz']:g} MHz; "
        f"{p['timesteps_per_second'] / 1e6:.3g} M timesteps/s",
        f"throughput at {p['clock_mhz']:g} MHz: {p['real_gops']:.3f} GOP/s real "
        f"({p['real_per_timestep']} ops/timestep), {p['effective_gops']:.3f} GOP/s effective "
        f"({p['effective_per_timestep']} dense-equivalent ops/timestep)",
        f"  at the ideal cycle count: {p['ideal_real_gops']:.3f} GOP/s real, "
        f"{p['ideal_effective_gops']:.3f} GOP/s effective",
        f"  {p['rule']}.",
    ]
    return "\n".join(lines)


def _summary(mapped: list) -> list[dict]:
    """The memories and what they map to, identical ones counted together."""
    counts = Counter((mem.unit, mem.depth, mem.width, mem.writable, prim, n) for mem, (prim, n, _) in mapped)
    return [{"unit": unit, "depth": depth, "width": width, "writable": writable, "mapped": prim, "count": n,
             "instances": k} for (unit, depth, width, writable, prim, n), k in counts.items()]
