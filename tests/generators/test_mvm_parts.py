# amaranth: UnusedElaboratable=no
"""The units of SparseMatVec, each on its own in Amaranth's simulator against a small Python model of it.

Every bench drives seeded random inputs for some cycles and compares every output, cycle by cycle, with what
the model says that cycle should show; the model's timing is the unit's stated latency, so a unit whose
latency is off fails. Convention: "cycle c" is what the outputs show after the inputs of cycle c are set and
before the clock edge that ends it.
"""

import re
import subprocess

import numpy as np
import pytest
from amaranth.hdl import Fragment, Instance, signed
from amaranth.sim import Simulator

from lstm_hw.config.schema import parse_config
from lstm_hw.generators.fixed import counter_shape
from lstm_hw.generators.mvm import SparseMatVec
from lstm_hw.generators.mvm_issue import IssueSequencer
from lstm_hw.generators.mvm_mac import MacArray, chain_groups, chain_positions
from lstm_hw.generators.mvm_output import OutputStage
from lstm_hw.generators.image import column_fields
from lstm_hw.generators.mvm_rom import (LANE_BITS, SLICE_DEPTH, RamShape, WeightRom, ram_mem_texts, ram_module,
                                        rom_module, rom_word_layout)
from lstm_hw.generators.mvm_sum import (Accumulator, AdderTree, StartCode, carry_add, carry_add_onto,
                                        chunk_bounds)
from lstm_hw.generators.mvm_vector import VectorStore, write_ports
from lstm_hw.model.design import build_design
from lstm_hw.numerics.fixed import Fixed, requantize
from lstm_hw.sim.tools import ensure_simulators_on_path

PLANS = {
    "default": {},
    "one_pass": {"sparsity": {"banks": 3, "density": 0.5}, "hardware": {"rows": 8},
                 "model": {"input_size": 3, "hidden_size": 2, "num_layers": 1}},
    "sparse_r2": {"sparsity": {"banks": 5, "density": 0.3}, "hardware": {"rows": 2},
                  "model": {"input_size": 4, "hidden_size": 9, "num_layers": 1}},
}
HEAD = {"model": {"input_size": 3, "hidden_size": 6, "num_layers": 1, "output_size": 5},
        "sparsity": {"banks": 3, "head_density": 0.5}}


def plan_of(name):
    if name == "head":
        return build_design(parse_config(HEAD)).head
    return build_design(parse_config(PLANS[name])).layers[0]


def run(dut, cycles, drive, sample):
    """``cycles`` cycles of ``dut``: each sets its inputs with ``drive(ctx, c)``, then reads with ``sample(ctx, c)``."""
    async def bench(ctx):
        for c in range(cycles):
            drive(ctx, c)
            sample(ctx, c)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def wrap(value: int, bits: int) -> int:
    """``value`` modulo ``2**bits``, as a signed number."""
    return ((value + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def field(value: int, lo: int, hi: int) -> int:
    """Bits ``[lo, hi)`` of ``value`` (two's complement)."""
    return (value >> lo) & ((1 << (hi - lo)) - 1)


def randoms(rng, bits: int, size, *, signed_=True):
    lo = -(1 << (bits - 1)) if signed_ else 0
    return rng.integers(lo, lo + (1 << bits), size=size)


# -- IssueSequencer ------------------------------------------------------------------------------

def issue_model(plan, gap, arrivals, firsts, h_ready, cycles):
    """Per cycle, what the issue unit should show: ``ready``, ``h_go`` and the slot issuing (or None).

    Command ``i`` is offered from cycle ``arrivals[i]`` (or from the cycle after the one before it was taken,
    if later) until taken; returns the cycles the commands are taken in too.
    """
    ready, go = [False] * cycles, [False] * cycles
    slots = [None] * cycles
    free, taken = 0, []
    for i, arrival in enumerate(arrivals):
        take = max(arrival, free, taken[-1] + 1 if taken else 0)
        if take >= cycles:
            break
        for c in range(free, take + 1):
            ready[c] = True
        taken.append(take)
        phases = [(0, plan.k_x, take + 1)]
        if plan.k_h:
            wait_from = take + 1 + plan.passes * plan.k_x
            h_go = next((c for c in range(wait_from + gap, cycles) if h_ready[c]), None)
            if h_go is not None:
                go[h_go] = True
                phases.append((1, plan.k_h, h_go + 1))
        base = 0
        for phase, k, start in phases:
            for s in range(plan.passes * k):
                if start + s < cycles:
                    slots[start + s] = {"addr": base + s, "pass": s // k, "first": s % k == 0, "last": s % k == k - 1,
                                        "phase": phase, "buf": i % 2, "mask": phase and firsts[i]}
            base += plan.passes * k
            free = start + plan.passes * k
        if len(phases) < 1 + bool(plan.k_h):       # still waiting for h_ready at the end
            free = cycles
    for c in range(free, cycles):
        ready[c] = True
    return ready, go, slots, taken


@pytest.mark.parametrize("name, gap", [("default", 0), ("default", 3), ("one_pass", 5), ("sparse_r2", 1),
                                       ("head", 0)])
def test_issue_sequencer_matches_model(name, gap):
    plan = plan_of(name)
    rng = np.random.default_rng(len(name) * 10 + gap)
    step = plan.passes * (plan.k_x + plan.k_h) + gap + 4
    cycles = 6 * step
    arrivals = np.cumsum(rng.integers(0, step + 3, 6)).tolist()
    firsts = rng.integers(0, 2, 6).tolist()
    h_ready = (rng.random(cycles) < 0.6).tolist()
    dut = IssueSequencer(plan=plan, gap=gap)
    ready, go, slots, taken = issue_model(plan, gap, arrivals, firsts, h_ready, cycles)
    assert dut.latency == 1 and dut.gap == gap
    got_taken = []

    def drive(ctx, c):
        i = len(got_taken)
        offered = i < len(arrivals) and c >= arrivals[i]
        ctx.set(dut.cmd.valid, offered)
        ctx.set(dut.cmd.payload, {"buf": i % 2, **({"first": firsts[i % len(firsts)]} if plan.k_h else {})})
        if plan.k_h:
            ctx.set(dut.h_ready, h_ready[c])

    def sample(ctx, c):
        assert bool(ctx.get(dut.cmd.ready)) == ready[c], f"cmd.ready, cycle {c}"
        if ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready):
            got_taken.append(c)
        if plan.k_h:
            assert bool(ctx.get(dut.h_go)) == go[c], f"h_go, cycle {c}"
        slot, want = ctx.get(dut.slot), slots[c]
        if want is None:
            assert not slot.first and not slot.last, f"a slot issues in cycle {c}"
            return
        fields = ["addr", "pass", "first", "last", "buf"] + (["phase", "mask"] if plan.k_h else [])
        assert {f: int(slot[f]) for f in fields} == {f: int(want[f]) for f in fields}, f"cycle {c}"

    run(dut, cycles, drive, sample)
    assert got_taken == taken and len(taken) >= 3


def test_issue_sequencer_x_cycles():
    """With h_ready high, h_go comes x_cycles after the command is taken."""
    plan = plan_of("sparse_r2")
    dut = IssueSequencer(plan=plan, gap=2)
    seen = []

    def drive(ctx, c):
        ctx.set(dut.cmd.valid, c == 3)
        ctx.set(dut.h_ready, 1)

    def sample(ctx, c):
        if ctx.get(dut.h_go):
            seen.append(c)

    run(dut, 3 + dut.x_cycles + 4, drive, sample)
    assert seen == [3 + dut.x_cycles]
    assert dut.x_cycles == plan.passes * plan.k_x + dut.latency + 2


@pytest.mark.parametrize("name", ["default", "one_pass", "sparse_r2", "head"])
def test_least_gap_is_the_least_for_every_pass(name):
    """The least gap, by brute force over every pass (not only the first and the last) and every gap."""
    plan = plan_of(name)
    rng = np.random.default_rng(len(name))
    for _ in range(20):
        sum_read, sum_write = (int(x) for x in rng.integers(0, 30, 2))
        gap = IssueSequencer.least_gap(plan, sum_read=sum_read, sum_write=sum_write)
        if not plan.k_h:
            assert gap == 0
            continue

        def safe(g):
            x_cycles = plan.passes * plan.k_x + 1 + g
            return all(x_cycles + 1 + n * plan.k_h + sum_read > 1 + (n + 1) * plan.k_x - 1 + sum_write
                       for n in range(plan.passes))

        assert safe(gap) and (gap == 0 or not safe(gap - 1))


# -- WeightRom -----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 13])
def test_weight_rom_reads_a_word_a_cycle(depth):
    rng = np.random.default_rng(depth)
    layout = rom_word_layout(rows=2, banks=3, weight=signed(5), index_bits=3)
    words = [int(w) for w in rng.integers(0, 1 << 62, depth, dtype=np.uint64) % (1 << layout.size)]
    dut = WeightRom(layout=layout, depth=depth, words=words)
    addrs = rng.integers(0, depth, 40).tolist()
    assert dut.latency == 1

    def sample(ctx, c):
        if c >= dut.latency:
            assert ctx.get(dut.data).as_value().value == words[addrs[c - dut.latency]], f"cycle {c}"

    run(dut, len(addrs), lambda ctx, c: ctx.set(dut.addr, addrs[c]), sample)


def test_weight_rom_module_is_an_instance_of_the_rom_file():
    """With a module, the ROM elaborates to an instance of it, whose ports match rom_module's Verilog."""
    layout = rom_word_layout(rows=3, banks=2, weight=signed(8), index_bits=4)
    dut = WeightRom(layout=layout, depth=37, module="top__layer0__mvm__rom_p1")
    inst = Fragment.get(dut, None)
    assert isinstance(inst, Instance) and inst.type == "top__layer0__mvm__rom_p1"
    assert {name: kind for name, (_, kind) in inst.ports.items()} == {"clk": "i", "addr": "i", "data": "o"}
    text = rom_module("top__layer0__mvm__rom_p1", layout.size, 37)
    assert re.search(rf"input \[{len(dut.addr) - 1}:0\] addr;", text)
    assert re.search(rf"output \[{layout.size - 1}:0\] data;", text)


@pytest.mark.parametrize("depth, width, slices", [
    (12288, 60, 3),     # three 4K x 9 slices of 7 lanes, 20 when folded: hidden256's
    (12288, 63, 1),     # whole lanes already
    (8192, 60, 1),      # 14 lanes either way
    (4096, 60, 1),      # one slice
    (4097, 4, 2),       # two slices of a lane, one when folded
    (9000, 300, 3),     # columns of 288 bits: 3 x (32 + 2) lanes against 100
])
def test_ram_shape_folds_where_it_saves_lanes(depth, width, slices):
    shape = RamShape.of(depth, width)
    assert shape.slices == slices and shape.rows == (SLICE_DEPTH if slices > 1 else depth)
    assert shape.row_bits == slices * width


def test_ram_shape_puts_word_a_in_slice_a_div_rows_of_row_a_mod_rows():
    rng = np.random.default_rng(5)
    for _ in range(20):
        depth, width, slice_depth = int(rng.integers(1, 70)), int(rng.integers(1, 40)), 1 << int(rng.integers(2, 5))
        shape = RamShape.of(depth, width, slice_depth)
        lanes = [sum(-(-c // LANE_BITS) for c in fields) for fields in (column_fields(width), shape.fields)]
        assert shape.slices * lanes[0] >= lanes[1] and sum(shape.fields) == shape.row_bits
        words = [int(w) for w in rng.integers(0, 1 << width, depth, dtype=np.uint64)]
        rows = shape.fold(words)
        assert len(rows) == shape.rows
        for a, word in enumerate(words):
            assert rows[a % shape.rows] >> (a // shape.rows * width) & ((1 << width) - 1) == word
    with pytest.raises(ValueError, match="power of two"):
        RamShape.of(10, 10, 6)


@pytest.mark.parametrize("depth, slice_depth", [(11, 4), (11, 16), (8, 4)])
def test_writable_weight_rom_reads_what_was_written(depth, slice_depth):
    """Reads a word a cycle of the generate-time words, then of words written as rows through ``wr`` (folded or not)."""
    rng = np.random.default_rng(depth * slice_depth)
    layout = rom_word_layout(rows=1, banks=1, weight=signed(7), index_bits=3)            # 10 bits: 2 lanes
    old, new = ([int(w) for w in rng.integers(0, 1 << layout.size, depth)] for _ in range(2))
    dut = WeightRom(layout=layout, depth=depth, words=old, writable=True, slice_depth=slice_depth)
    shape = RamShape.of(depth, layout.size, slice_depth)
    assert shape.slices == (1 if slice_depth > depth else -(-depth // slice_depth))
    rows = shape.fold(new)
    reads = rng.integers(0, depth, 30).tolist()
    script = [("read", a) for a in reads] + [("write", r) for r in range(shape.rows)] + [("read", a) for a in reads]
    columns = len(shape.fields)

    def drive(ctx, c):
        kind, at = script[c] if c < len(script) else ("read", 0)
        ctx.set(dut.addr, at if kind == "read" else 0)
        ctx.set(dut.wr, {"addr": at if kind == "write" else 0, "data": rows[at] if kind == "write" else 0,
                         "en": (1 << columns) - 1 if kind == "write" else 0})

    def sample(ctx, c):
        if c >= 1 and script[c - 1][0] == "read":
            words = old if c - 1 < len(reads) else new
            assert ctx.get(dut.data).as_value().value == words[script[c - 1][1]], f"cycle {c}"

    run(dut, len(script) + 1, drive, sample)


def test_ram_module_reads_what_its_files_hold_and_what_it_is_written(tmp_path):
    """The folded Verilog memory (hidden256's shape) under Icarus: every address reads its word from the .mem
    files, then a row written through its three fields' enables gives its three words."""
    ensure_simulators_on_path()
    depth, width = 12288, 60
    shape = RamShape.of(depth, width)
    assert shape.slices == 3 and shape.fields == (63, 63, 54)     # 20 lanes, against 3 x 7
    rng = np.random.default_rng(0)
    words = [int(w) for w in rng.integers(0, 1 << 60, depth, dtype=np.uint64)]
    (tmp_path / "mem.v").write_text(ram_module("mem", width, depth))
    for name, text in ram_mem_texts("mem", words, width).items():
        (tmp_path / name).write_text(text)
    row, new = 4095, [int(w) for w in rng.integers(0, 1 << 60, 3, dtype=np.uint64)]
    wdata = sum(w << (n * width) for n, w in enumerate(new))
    checks = list(range(depth)) + [row, row + 4096, row + 8192]
    (tmp_path / "tb.v").write_text(
        "module tb; reg clk = 0; reg [13:0] addr = 0; wire [59:0] data; reg [11:0] waddr = 0;\n"
        f"reg [179:0] wdata = 0; reg [2:0] we = 0; integer i;\n"
        "mem dut(.clk(clk), .addr(addr), .data(data), .waddr(waddr), .wdata(wdata), .we(we));\n"
        "initial begin\n"
        f"  for (i = 0; i < {depth}; i = i + 1) begin addr = i; #1 clk = 1; #1 clk = 0; $display(\"%h\", data); end\n"
        f"  waddr = {row}; wdata = 180'h{wdata:045x}; we = 3'b111; #1 clk = 1; #1 clk = 0; we = 0;\n"
        + "".join(f"  addr = {a}; #1 clk = 1; #1 clk = 0; $display(\"%h\", data);\n" for a in checks[depth:])
        + "  $finish;\nend\nendmodule\n")
    subprocess.run(["iverilog", "-o", tmp_path / "sim", tmp_path / "tb.v", tmp_path / "mem.v"], check=True)
    out = subprocess.run(["vvp", "-n", tmp_path / "sim"], cwd=tmp_path, check=True, capture_output=True, text=True)
    got = [int(line, 16) for line in out.stdout.split() if not line.startswith("VCD")][:len(checks)]
    assert got == [words[a] for a in checks[:depth]] + new


# -- VectorStore ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, group_writes", [("default", 0), ("default", 2), ("sparse_r2", 4)])
def test_vector_store_matches_model(name, group_writes):
    plan = plan_of(name)
    rng = np.random.default_rng(group_writes + len(name))
    positions = rng.integers(0, 4, plan.banks).tolist()
    elem = signed(6)
    dut = VectorStore(plan=plan, element=elem, group_writes=group_writes, positions=positions)
    assert dut.latency == 1 and dut.write_latency == 2
    cycles, pes = 120, plan.rows * plan.banks
    entries = 1 << plan.index_bits
    writes = []                                    # per cycle: [(bank, buf, addr, data)], banks all different
    for _ in range(cycles):
        banks = rng.permutation(plan.banks)[:1 + group_writes]
        writes.append([(int(b), int(rng.integers(0, 2)), int(rng.integers(0, entries)), int(randoms(rng, 6, None)))
                       for b in banks if rng.random() < 0.7])
    bufs = rng.integers(0, 2, cycles).tolist()
    idx = rng.integers(0, entries, (cycles, pes)).tolist()

    def stored(bank, buf, addr, cycle):
        """The element at (bank, buf, addr) for a read of cycle ``cycle``: the last write 2 cycles before."""
        value = 0
        for c in range(max(0, cycle - dut.write_latency + 1)):
            for b, half, a, d in writes[c]:
                if (b, half, a) == (bank, buf, addr):
                    value = d
        return value

    def drive(ctx, c):
        for e, port in enumerate(write_ports(dut)):
            if e < len(writes[c]):
                b, half, a, d = writes[c][e]
                ctx.set(port.payload, {"buf": half, "bank": b, "addr": a, "data": d})
            ctx.set(port.valid, e < len(writes[c]))
        ctx.set(dut.buf, bufs[c])
        ctx.set(dut.idx, idx[c])

    def sample(ctx, c):
        r = c - dut.latency                        # the read cycle of what shows now
        if r < max(positions):
            return
        got = list(ctx.get(dut.v))
        for lane in range(plan.rows):
            for bank, j in enumerate(positions):
                pe = lane * plan.banks + bank
                # Position j reads with the half of j cycles before, and sees the writes j cycles late.
                want = stored(bank, bufs[r - j], idx[r][pe], r - j)
                assert got[pe] == want, f"PE ({lane}, {bank}) at position {j}, read of cycle {r}"

    run(dut, cycles, drive, sample)


# -- MacArray ------------------------------------------------------------------------------------

@pytest.mark.parametrize("banks, chain, sum_bits, mask", [(5, 3, 20, True), (7, 4, 9, False), (4, 1, 31, True),
                                                          (1, 4, 12, False)])
def test_mac_array_matches_model(banks, chain, sum_bits, mask):
    rng = np.random.default_rng(banks * 100 + chain)
    rows, wb, eb = 2, 7, 6
    groups = chain_groups(banks, chain)
    pos = chain_positions(groups)
    dut = MacArray(rows=rows, groups=groups, weight=signed(wb), element=signed(eb), product_bits=wb + eb,
                   sum_bits=sum_bits, mask=mask)
    G, lat, chunks = max(pos) + 1, dut.latency, chunk_bounds(sum_bits)
    assert dut.positions == G and lat == 2 + G
    slots = 50
    W = randoms(rng, wb, (slots + 2 * G + 4, rows, banks))
    V = randoms(rng, eb, (slots + 2 * G + 4, rows, banks))
    M = rng.integers(0, 2, slots + 2 * G + 4) if mask else np.zeros(slots + 2 * G + 4, dtype=int)

    def at(arr, tau):
        return arr[tau] if 0 <= tau < len(arr) else arr[0] * 0

    def chain_sum(tau, lane, banks_):
        total = 0
        for bank in banks_:
            product = 0 if M[tau] else int(W[tau, lane, bank]) * int(V[tau, lane, bank])
            total += wrap(product, min(wb + eb, sum_bits))
        return wrap(total, sum_bits)

    def drive(ctx, c):
        # Slot tau: its weights and mask in cycle tau - 1 (+ j at position j), its elements in cycle tau (+ j).
        ctx.set(dut.w, [int(at(W, c + 1 - pos[b])[lane][b]) for lane in range(rows) for b in range(banks)])
        ctx.set(dut.v, [int(at(V, c - pos[b])[lane][b]) for lane in range(rows) for b in range(banks)])
        if mask:
            ctx.set(dut.mask, int(at(M, c + 1)))

    def sample(ctx, c):
        got = ctx.get(dut.chains)
        for j, (lo, hi) in enumerate(chunks):
            tau = c - lat - j
            if not 1 <= tau < slots:                # (slot 0's weights would have come before cycle 0)
                continue
            for lane in range(rows):
                for g, banks_ in enumerate(groups):
                    assert field(got[lane][g], lo, hi) == field(chain_sum(tau, lane, banks_), lo, hi), \
                        f"slot {tau}, lane {lane}, chain {g}, chunk {j}"

    run(dut, slots + lat + len(chunks), drive, sample)


# -- AdderTree -----------------------------------------------------------------------------------

@pytest.mark.parametrize("terms, sum_bits", [(2, 10), (3, 31), (5, 16), (7, 44)])
def test_adder_tree_matches_model(terms, sum_bits):
    rng = np.random.default_rng(terms * 7 + sum_bits)
    rows = 2
    dut = AdderTree(rows=rows, terms=terms, sum_bits=sum_bits)
    chunks = chunk_bounds(sum_bits)
    assert dut.latency == (terms - 1).bit_length() and dut.chunks == chunks
    slots = 40
    T = [[[int(x) for x in randoms(rng, sum_bits, terms, signed_=False)] for _ in range(rows)]
         for _ in range(slots + dut.latency + len(chunks))]

    def drive(ctx, c):
        # Chunk j of slot tau's terms in cycle tau + j.
        value = []
        for lane in range(rows):
            row = []
            for n in range(terms):
                row.append(sum(field(T[c - j][lane][n], lo, hi) << lo for j, (lo, hi) in enumerate(chunks)
                               if c - j >= 0))
            value.append(row)
        ctx.set(dut.terms, value)

    def sample(ctx, c):
        got = ctx.get(dut.sum)
        for j, (lo, hi) in enumerate(chunks):
            tau = c - dut.latency - j
            if 0 <= tau < slots:
                for lane in range(rows):
                    want = sum(T[tau][lane]) % (1 << sum_bits)
                    assert field(got[lane], lo, hi) == field(want, lo, hi), f"slot {tau}, lane {lane}, chunk {j}"

    run(dut, slots + dut.latency + len(chunks), drive, sample)


@pytest.mark.parametrize("adder", [carry_add, carry_add_onto])
def test_carry_add_is_a_wide_add(adder):
    """Chunk by chunk, skewed, the sums of carry_add and carry_add_onto are those of one wide adder modulo its
    width, carries between chunks included (operands at their ends and random ones)."""
    from amaranth.hdl import Module, Signal
    rng = np.random.default_rng(4)
    chunks = chunk_bounds(40)
    m = Module()
    a = [Signal(hi - lo, name=f"a{j}") for j, (lo, hi) in enumerate(chunks)]
    b = [Signal(hi - lo, name=f"b{j}") for j, (lo, hi) in enumerate(chunks)]
    s = adder(m, a, b, [Signal(hi - lo, name=f"s{j}") for j, (lo, hi) in enumerate(chunks)])
    top = (1 << 40) - 1
    pairs = [(int(x), int(y)) for x, y in randoms(rng, 40, (30, 2), signed_=False)]
    pairs += [(0, 0), (top, 0), (0, top), (top, top), (top, 1), (1, top), (1 << 20, (1 << 20) - 1)]

    async def bench(ctx):
        for c in range(len(pairs) + len(chunks)):
            for j, (lo, hi) in enumerate(chunks):
                if c - j < len(pairs) and c >= j:
                    ctx.set(a[j], field(pairs[c - j][0], lo, hi))
                    ctx.set(b[j], field(pairs[c - j][1], lo, hi))
                tau = c - 1 - j
                if 0 <= tau < len(pairs):
                    assert ctx.get(s[j]) == field(sum(pairs[tau]), lo, hi), f"pair {tau}, chunk {j}"
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


# -- Accumulator ---------------------------------------------------------------------------------

def pass_schedule(rng, passes, recurrent, count):
    """``count`` passes to run: (pass, phase, slots, idle cycles before); with ``recurrent``, each phase in turn
    runs every pass in order, the input phase first, as the issue unit does."""
    out = []
    while len(out) < count:
        for phase in ([0, 1] if recurrent else [0]):
            for p in range(passes):
                out.append((p, phase, int(rng.integers(1, 5)), int(rng.integers(0, 4) * (rng.random() < 0.5))))
    return out[:count]


@pytest.mark.parametrize("rows, passes, sum_bits, drop, recurrent", [
    (2, 3, 20, 0, True), (1, 1, 33, 0, True), (3, 4, 14, 5, False), (2, 2, 40, 9, True), (1, 5, 7, 6, False)])
def test_accumulator_matches_model(rows, passes, sum_bits, drop, recurrent):
    rng = np.random.default_rng(rows * 1000 + passes * 100 + sum_bits)
    start = randoms(rng, sum_bits, (rows, passes)).tolist()
    dut = Accumulator(rows=rows, passes=passes, sum_bits=sum_bits, drop=drop, start=start, recurrent=recurrent)
    chunks, lead, lat = chunk_bounds(sum_bits), dut.lead, dut.latency
    assert lead == 2 and lat == len(chunks)
    # The slots: first term at cycle `lead` (its control comes in cycle 0).
    tau, occurrences = lead, []
    for p, phase, k, idle in pass_schedule(rng, passes, recurrent, 4 * passes + 2):
        tau += idle
        occurrences.append((p, phase, list(range(tau, tau + k))))
        tau += k
    cycles = tau + lat + 2
    terms = randoms(rng, sum_bits, (cycles + 1, rows), signed_=False).tolist()
    control = {}                                   # slot -> (first, last, pass, phase)
    for p, phase, taus in occurrences:
        for t in taus:
            control[t] = (t == taus[0], t == taus[-1], p, phase)
    # The model: each occurrence's sum, the cycle it shows, and the partial sums written back.
    keep = {o[2][-1] + lat: bool(rng.integers(0, 2)) for o in occurrences}    # sum cycle -> writeback
    psum_writes = []                               # (cycle, pass, per-lane full sums)
    expected = {}                                  # cycle -> (pass, phase, per-lane full sums)
    for p, phase, taus in occurrences:
        read = taus[0] - lead                      # the start value's read: sees the writes before it
        if recurrent and phase:
            earlier = [w for w in psum_writes if w[0] < read and w[1] == p]
            init = earlier[-1][2] if earlier else [0] * rows
        else:
            init = [start[lane][p] for lane in range(rows)]
        totals = [wrap(init[lane] + sum(terms[t][lane] for t in taus), sum_bits) for lane in range(rows)]
        at = taus[-1] + lat
        expected[at] = (p, phase, totals)
        if recurrent and keep[at]:
            psum_writes.append((at, p, totals))

    def drive(ctx, c):
        t = c + lead
        first, last, p, phase = control.get(t, (0, 0, int(rng.integers(0, passes)), int(rng.integers(0, 2))))
        ctx.set(dut.slot, {"first": first, "last": last, "pass": p, **({"phase": phase} if recurrent else {})})
        # Chunk j of slot t's term in cycle t + j.
        ctx.set(dut.term, [sum(field(terms[c - j][lane], lo, hi) << lo for j, (lo, hi) in enumerate(chunks)
                               if c >= j) for lane in range(rows)])
        if recurrent:
            ctx.set(dut.writeback, c in expected and keep[c])

    def sample(ctx, c):
        valid = bool(ctx.get(dut.sum.valid))
        assert valid == (c in expected), f"sum.valid, cycle {c}"
        if valid:
            p, phase, totals = expected[c]
            got = ctx.get(dut.sum.payload)
            assert got["pass"] == p and (not recurrent or got.phase == phase), f"cycle {c}"
            assert list(got.z) == [t >> drop for t in totals], f"sums of pass {p}, phase {phase}, cycle {c}"

    run(dut, cycles, drive, sample)
    assert not recurrent or any(phase for _, phase, _ in occurrences)


def test_start_code_encodes_exactly_the_values_it_stands_for():
    code = StartCode(bits=4, shift=3, low=5)
    assert code.width == 7
    for c in range(-8, 8):
        assert code.encode((c << 3) + 5) == c & 15
    for value in [(-9 << 3) + 5, (8 << 3) + 5, 6, -2]:       # out of range, or not low in the low bits
        with pytest.raises(ValueError, match="is not"):
            code.encode(value)
    with pytest.raises(ValueError, match="low must be"):
        StartCode(bits=4, shift=2, low=4)


@pytest.mark.parametrize("rows, passes, sum_bits, code, recurrent, shared", [
    (2, 3, 20, StartCode(bits=9), True, True), (1, 1, 17, StartCode(bits=12, shift=5, low=17), True, True),
    (2, 16, 18, StartCode(bits=7, shift=2, low=2), True, True), (2, 20, 16, StartCode(bits=10), True, False),
    (3, 5, 14, StartCode(bits=6, shift=3, low=4), False, False), (1, 130, 19, StartCode(bits=8), True, True)])
def test_loadable_start_values(rows, passes, sum_bits, code, recurrent, shared):
    """Start values written through ``start_wr`` (codes, :class:`StartCode`) between runs of every pass (both
    phases when recurrent): each input-phase pass starts from the value of the latest code written, and every
    recurrent-phase pass from its partial sum, whether the start values share the partial-sum memory
    (``shared_start``) or not."""
    rng = np.random.default_rng(rows * 1000 + passes * 10 + sum_bits)

    def values(size):
        return (randoms(rng, code.bits, size) * (1 << code.shift) + code.low).tolist()

    start = values((rows, passes))
    dut = Accumulator(rows=rows, passes=passes, sum_bits=sum_bits, drop=0, start=start, recurrent=recurrent,
                      start_code=code)
    assert dut.shared_start == shared
    chunks, lead, lat = chunk_bounds(sum_bits), dut.lead, dut.latency
    table = [list(lane) for lane in start]       # the start values the model expects now
    controls, loads, expected = {}, {}, {}       # cycle -> slot control / start_wr / (pass, phase, sums)
    held = set()                                 # cycles of start_wr.held: the writes and the cycle before
    psum = [[0] * passes for _ in range(rows)]
    cycle, terms = 0, {}
    for _ in range(3):
        for phase in ([0, 1] if recurrent else [0]):
            for p in rng.permutation(passes)[:min(passes, 6)] if not phase else range(passes):
                p = int(p)
                if phase and p >= min(passes, 6):
                    continue                     # the recurrent phase of the passes the input phase ran
                k = int(rng.integers(1, 4))
                taus = list(range(cycle + lead, cycle + lead + k))
                for t in taus:
                    controls[t - lead] = (t == taus[0], t == taus[-1], p, phase)
                    terms[t] = randoms(rng, sum_bits, rows, signed_=False).tolist()
                init = [psum[lane][p] if phase else table[lane][p] for lane in range(rows)]
                totals = [wrap(init[lane] + sum(terms[t][lane] for t in taus), sum_bits) for lane in range(rows)]
                expected[taus[-1] + lat] = (p, phase, totals)
                if recurrent and not phase:
                    for lane in range(rows):
                        psum[lane][p] = totals[lane]
                cycle += k
            cycle += lead + lat                  # the partial sums written before the recurrent phase reads
        cycle += 2                               # drained: no pass in progress
        held.add(cycle - 1)
        for _ in range(int(rng.integers(1, 2 * passes + 2))):
            held.add(cycle)
            addr, en = int(rng.integers(0, passes)), int(rng.integers(0, 1 << rows))
            value = int(values(1)[0])
            loads[cycle] = (addr, code.encode(value), en)
            for lane in range(rows):
                if en >> lane & 1:
                    table[lane][addr] = value
            cycle += 1
    cycles = cycle + 2

    def drive(ctx, c):
        first, last, p, phase = controls.get(c, (0, 0, 0, 0))
        ctx.set(dut.slot, {"first": first, "last": last, "pass": p, **({"phase": phase} if recurrent else {})})
        ctx.set(dut.term, [sum(field(terms.get(c - j, [0] * rows)[lane], lo, hi) << lo
                               for j, (lo, hi) in enumerate(chunks)) for lane in range(rows)])
        if recurrent:
            ctx.set(dut.writeback, c in expected and not expected[c][1])
        addr, value, en = loads.get(c, (0, 0, 0))
        ctx.set(dut.start_wr, {"addr": addr, "data": value, "en": en, "held": c in held})

    def sample(ctx, c):
        valid = bool(ctx.get(dut.sum.valid))
        assert valid == (c in expected), f"sum.valid, cycle {c}"
        if valid:
            p, phase, totals = expected[c]
            assert list(ctx.get(dut.sum.payload).z) == totals, f"sums of pass {p}, phase {phase}, cycle {c}"

    run(dut, cycles, drive, sample)


# -- OutputStage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width, frac, preact, writeback", [
    (20, 10, Fixed(8, 4), True), (9, 4, Fixed(8, 4), False), (30, 18, Fixed(12, 6), True), (6, 2, Fixed(10, 7), False)])
def test_output_stage_matches_golden(width, frac, preact, writeback):
    rng = np.random.default_rng(width + frac)
    rows, passes, cycles = 3, 5, 60
    dut = OutputStage(rows=rows, passes=passes, width=width, frac=frac, preact=preact, writeback=writeback)
    assert dut.latency == 1
    valid = rng.integers(0, 2, cycles).tolist()
    phase = rng.integers(0, 2, cycles).tolist()
    passes_ = rng.integers(0, passes, cycles).tolist()
    z = randoms(rng, width, (cycles, rows))
    z[::7] = -(1 << (width - 1))                   # the edges saturate
    z[3::7] = (1 << (width - 1)) - 1

    def drive(ctx, c):
        ctx.set(dut.sum.valid, valid[c])
        ctx.set(dut.sum.payload, {"pass": passes_[c], "z": z[c].tolist(), **({"phase": phase[c]} if writeback else {})})

    def sample(ctx, c):
        if writeback:
            assert ctx.get(dut.writeback) == (valid[c] and not phase[c]), f"writeback, cycle {c}"
        if c < dut.latency:
            return
        s = c - dut.latency
        assert ctx.get(dut.o.valid) == (valid[s] and (phase[s] or not writeback)), f"o.valid, cycle {c}"
        o = ctx.get(dut.o.payload)
        assert o["pass"] == passes_[s]
        assert list(o.z) == requantize(z[s], frac, preact, "truncate").tolist(), f"cycle {c}"

    run(dut, cycles, drive, sample)


# -- parameters ----------------------------------------------------------------------------------

LAYOUT = rom_word_layout(rows=1, banks=1, weight=signed(4), index_bits=2)


@pytest.mark.parametrize("make, error, message", [
    (lambda: IssueSequencer(plan="plan", gap=0), TypeError, "plan must be a LayerPlan"),
    (lambda: IssueSequencer(plan=plan_of("default"), gap=-1), ValueError, "gap must be at least 0"),
    (lambda: WeightRom(layout=LAYOUT, depth=2), ValueError, "exactly one of words and module"),
    (lambda: WeightRom(layout=LAYOUT, depth=2, words=[0, 1 << LAYOUT.size]), ValueError, "unsigned integers"),
    (lambda: WeightRom(layout=LAYOUT, depth=0, module="m"), ValueError, "depth must be at least 1"),
    (lambda: WeightRom(layout=LAYOUT, depth=2, module="not a name"), ValueError, "Verilog module name"),
    (lambda: VectorStore(plan=plan_of("default"), element=signed(4), group_writes=9, positions=[0] * 4),
     ValueError, "group_writes must be below banks"),
    (lambda: VectorStore(plan=plan_of("default"), element=signed(4), group_writes=0, positions=[0]),
     ValueError, "positions must give each"),
    (lambda: MacArray(rows=1, groups=[[0], [2]], weight=signed(4), element=signed(4), product_bits=8, sum_bits=9,
                      mask=False), ValueError, "groups must list every bank"),
    (lambda: MacArray(rows=1, groups=[[0]], weight=signed(4), element=signed(4), product_bits=8, sum_bits=9,
                      mask=1), TypeError, "mask must be a bool"),
    (lambda: AdderTree(rows=1, terms=1, sum_bits=8), ValueError, "terms must be at least 2"),
    (lambda: AdderTree(rows=True, terms=2, sum_bits=8), TypeError, "rows must be an integer"),
    (lambda: Accumulator(rows=1, passes=2, sum_bits=8, drop=8, start=[[0, 0]], recurrent=False),
     ValueError, "drop must be below sum_bits"),
    (lambda: Accumulator(rows=1, passes=2, sum_bits=8, drop=0, start=[[0]], recurrent=False),
     ValueError, "start must hold 2 values"),
    (lambda: Accumulator(rows=1, passes=1, sum_bits=8, drop=0, start=[[128]], recurrent=False),
     ValueError, "start values must fit 8 signed bits"),
    (lambda: OutputStage(rows=1, passes=1, width=8, frac=0, preact=(8, 4), writeback=False),
     TypeError, "preact must be a Fixed"),
    (lambda: OutputStage(rows=1, passes=1, width=8, frac=0.5, preact=Fixed(8, 4), writeback=False),
     TypeError, "frac must be an integer"),
])
def test_parameters_are_checked(make, error, message):
    with pytest.raises(error, match=message):
        make()


# -- the whole -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default", "one_pass", "sparse_r2", "head"])
def test_stage_table_adds_the_units_latencies(name):
    """SparseMatVec's latency is its units' latencies summed, and its issue unit waits its input_gap."""
    design = build_design(parse_config(HEAD if name == "head" else PLANS[name]))
    plan = design.head if name == "head" else design.layers[0]
    mvm = SparseMatVec(plan=plan, quant=design.config.quant)
    units = [mvm._roms[0], mvm._store, mvm._mac, *([mvm._tree] if mvm._tree else []), mvm._acc, mvm._output]
    assert mvm.latency == sum(unit.latency for unit in units)
    assert mvm._issue.gap == mvm.input_gap and mvm.x_cycles == mvm._issue.x_cycles
    assert len(mvm._roms) == mvm._mac.positions
    assert all(len(rom.addr) == counter_shape(plan.passes * plan.k).width for rom in mvm._roms)
    assert (mvm._tree is None) == (len(chain_groups(plan.banks)) == 1)
