# amaranth: UnusedElaboratable=no
"""WeightLoader in Amaranth's simulator: seeded random images offered with random stalls; every write it makes,
decoded back into memory contents, against the image's own contents; rejected images, the hold at a transfer's
end and the drain of the transfers in flight."""

import numpy as np
import pytest

from helpers import run_testbench
from lstm_hw.generators.image import (COLUMN_BITS, DIGEST_WORDS, HEADER_WORDS, MAGIC, LoadableMemory, header_words,
                                      image_words, read_image_header)
from lstm_hw.generators.weight_loader import LOAD_OVERHEAD_CYCLES, PENDING_TRANSFERS, WeightLoader, load_layout

MEMORIES = (LoadableMemory("a", 3, (44,)), LoadableMemory("b", 2, (27, 27, 27)),
            LoadableMemory("c", 2, (COLUMN_BITS, 100)), LoadableMemory("d", 1, (32, 1)))
DIGEST = (0x01234567, 0x89ABCDEF, 0xFEDCBA98, 0x76543210)


def random_contents(rng, memories=MEMORIES):
    return [(mem, [[int.from_bytes(rng.bytes(-(-bits // 8)), "little") & ((1 << bits) - 1) for bits in mem.fields]
                   for _ in range(mem.depth)]) for mem in memories]


def loader():
    return WeightLoader(memories=MEMORIES, header=header_words(DIGEST, MEMORIES), stateful=True)


def offer(dut, transfers, *, seed=0, stall=0.3, beats=None, done=(), cycles=None, start=0, clear=True):
    """Offer ``transfers`` (lists of words, each ending with ``last``) from cycle ``start``, with random idle
    cycles; drive ``beat`` and ``done`` as ``beats`` ({cycle: last}) and ``done`` (cycles) say. Returns every
    cycle's outputs."""
    beats = beats or {}
    rng = np.random.default_rng(seed)
    words = [(int(w), n == len(t) - 1) for t in transfers for n, w in enumerate(t)]
    log = []

    async def bench(ctx):
        pending = iter(words)
        cur = next(pending, None)
        limit = cycles if cycles is not None else 40 + 3 * len(words)
        for cycle in range(limit):
            offered = cur is not None and cycle >= start and rng.random() >= stall
            ctx.set(dut.i.valid, offered)
            if cur is not None:
                ctx.set(dut.i.payload.data, cur[0])
                ctx.set(dut.i.payload.last, cur[1])
            ctx.set(dut.beat.valid, cycle in beats)
            ctx.set(dut.beat.payload.last, beats.get(cycle, 0))
            ctx.set(dut.done, cycle in done)
            _, _, ready, en, addr, data, ok, run, cleared = await ctx.tick().sample(
                dut.i.ready, dut.write.en, dut.write.addr, dut.write.data.as_value(), dut.ok, dut.run,
                dut.clear if clear else dut.ok)
            log.append({"cycle": cycle, "took": offered and ready, "en": int(en), "addr": int(addr),
                        "data": int(data), "ok": int(ok), "run": int(run), "clear": int(cleared) if clear else 0})
            if offered and ready:
                cur = next(pending, None)
        assert cur is None, "the loader did not take every word"

    run_testbench(dut, bench)
    return log


def written(log, memories=MEMORIES):
    """The memories' contents as the logged writes left them: {(memory, address): [field values or None]}."""
    layout = load_layout(memories).members["data"]
    fields = [(m, f, bits) for m, mem in enumerate(memories) for f, bits in enumerate(mem.fields)]
    out = {}
    for entry in log:
        for n, (m, f, bits) in enumerate(fields):
            if entry["en"] >> n & 1:
                value = entry["data"] >> layout[f"bits{bits}"].offset & ((1 << bits) - 1)
                out.setdefault((m, entry["addr"]), [None] * len(memories[m].fields))[f] = value
    return out


def test_a_good_image_writes_every_field_and_raises_ok():
    rng = np.random.default_rng(1)
    contents = random_contents(rng)
    image = image_words(DIGEST, contents)
    log = offer(loader(), [image[:HEADER_WORDS].tolist() + image[HEADER_WORDS:].tolist()], seed=2)
    want = {(m, a): entry for m, (_, entries) in enumerate(contents) for a, entry in enumerate(entries)}
    assert written(log) == want
    assert log[-1]["ok"] == 1 and log[-1]["run"] == 1
    assert sum(e["clear"] for e in log) == 1
    # ok is low from the load's start to its last word
    start = next(e["cycle"] for e in log if e["clear"])
    end = max(e["cycle"] for e in log if e["took"])
    assert all(e["ok"] == 0 for e in log[start + 1:end + 1])


def test_fields_of_one_word_each():
    """Every field within a word: the bus is one word, of the bits the fields read."""
    memories = (LoadableMemory("x", 4, (27, 27)), LoadableMemory("y", 2, (5,)))
    contents = random_contents(np.random.default_rng(11), memories)
    dut = WeightLoader(memories=memories, header=header_words(DIGEST, memories))
    assert "clear" not in dut.signature.members
    log = offer(dut, [image_words(DIGEST, contents).tolist()], seed=12, clear=False)
    assert written(log, memories) == \
        {(m, a): entry for m, (_, entries) in enumerate(contents) for a, entry in enumerate(entries)}
    assert log[-1]["ok"] == 1


@pytest.mark.parametrize("word", range(HEADER_WORDS))
def test_no_write_after_a_bad_header_word_even_in_the_next_cycle(word):
    """A first field of one word is written in the cycle after the header's last word: a bad header word, the
    last one included, stops that write too, with or without stalls."""
    memories = (LoadableMemory("x", 3, (5, 27)), LoadableMemory("y", 2, (32,)))
    rng = np.random.default_rng(word)
    image = image_words(DIGEST, random_contents(rng, memories)).tolist()
    image[word] ^= 1 << int(rng.integers(0, 32))
    for stall in (0.0, 0.3):
        dut = WeightLoader(memories=memories, header=header_words(DIGEST, memories))
        log = offer(dut, [image], seed=word, stall=stall, clear=False)
        assert not any(e["en"] for e in log) and log[-1]["ok"] == 0


def test_the_writes_carry_each_field_width_once():
    layout = loader().write.data.shape()
    assert {name: field.width for name, field in layout} == \
        {f"bits{bits}": bits for bits in {b for mem in MEMORIES for b in mem.fields}}


@pytest.mark.parametrize("fault", ["magic", "digest", "length", "short", "long", "header_only"])
def test_a_rejected_image_leaves_ok_low_until_a_good_one(fault):
    rng = np.random.default_rng(3)
    good = image_words(DIGEST, random_contents(rng)).tolist()
    bad = list(good)
    if fault == "magic":
        bad[0] ^= 1
    elif fault == "digest":
        bad[1 + DIGEST_WORDS - 1] ^= 0x8000_0000
    elif fault == "length":
        bad[1 + DIGEST_WORDS] += 1
    elif fault == "short":
        bad = bad[:-1]
    elif fault == "long":
        bad = bad + [0]
    else:
        bad = bad[:HEADER_WORDS]
    dut = loader()
    log = offer(dut, [bad], seed=4)
    assert log[-1]["ok"] == 0 and log[-1]["run"] == 0
    if fault in ("magic", "digest", "length"):
        assert not any(e["en"] for e in log), "contents written after a bad header"
    # the same loader, a good image after the bad one: ok again, and the good contents in every field
    contents = random_contents(rng)
    log = offer(dut := loader(), [bad, image_words(DIGEST, contents).tolist()], seed=5)
    assert log[-1]["ok"] == 1
    assert written([e for e in log if e["cycle"] > last_took(log, len(bad))]) == \
        {(m, a): entry for m, (_, entries) in enumerate(contents) for a, entry in enumerate(entries)}


def last_took(log, n):
    """The cycle of the ``n``-th word taken."""
    return [e["cycle"] for e in log if e["took"]][n - 1]


def test_back_to_back_images_each_take_effect():
    rng = np.random.default_rng(6)
    first, second = random_contents(rng), random_contents(rng)
    log = offer(loader(), [image_words(DIGEST, first).tolist(), image_words(DIGEST, second).tolist()],
                seed=7, stall=0.0)
    n = len(image_words(DIGEST, first))
    assert written([e for e in log if e["cycle"] <= last_took(log, n) + 1]) == \
        {(m, a): entry for m, (_, entries) in enumerate(first) for a, entry in enumerate(entries)}
    assert written([e for e in log if e["cycle"] > last_took(log, n) + 1]) == \
        {(m, a): entry for m, (_, entries) in enumerate(second) for a, entry in enumerate(entries)}
    assert log[-1]["ok"] == 1
    assert sum(e["clear"] for e in log) == 2


def test_one_word_a_cycle_without_stalls():
    rng = np.random.default_rng(8)
    image = image_words(DIGEST, random_contents(rng)).tolist()
    log = offer(loader(), [image], stall=0.0, start=3)
    took = [e["cycle"] for e in log if e["took"]]
    assert took == list(range(took[0], took[0] + len(image)))
    # ok rises with the edge that ends the load's cycles, counted from the first word offered (cycle 3)
    drop = next(e["cycle"] for e in log if not e["ok"])
    rise = next(e["cycle"] for e in log[drop:] if e["ok"])
    assert rise - 3 == LOAD_OVERHEAD_CYCLES + len(image)


def test_a_load_waits_for_the_transfer_and_the_transfers_in_flight():
    """Transfers taken at cycle 1, 2-4 and 5-10, the image offered from cycle 6, the transfers' outputs done at
    30, 40 and 50: the data stream runs to the end of the third transfer, then stops; the load starts (clear)
    only once every output is out, as the count sees it: a cycle late. (run is a register: low at cycle 0.)"""
    rng = np.random.default_rng(9)
    image = image_words(DIGEST, random_contents(rng)).tolist()
    beats = {1: 1, 2: 0, 3: 0, 4: 1, **{c: int(c == 10) for c in range(5, 11)}}
    log = offer(loader(), [image], stall=0.0, beats=beats, done=(30, 40, 50), cycles=80 + len(image), start=6)
    clear = next(e["cycle"] for e in log if e["clear"])
    assert clear == 52
    took = [e["cycle"] for e in log if e["took"]]
    assert took[0] == clear + 1
    assert all(e["run"] for e in log[1:11])
    assert not any(e["run"] for e in log[11:took[-1] + 2])
    assert log[-1]["ok"] and log[-1]["run"]


def test_the_data_stream_waits_while_transfers_fill_the_count():
    """A one-beat transfer whenever run lets one in, and none leaves: the stream stops, for good, just before
    the count would pass PENDING_TRANSFERS."""
    dut = loader()
    runs = []

    async def bench(ctx):
        for _ in range(PENDING_TRANSFERS + 10):
            run = ctx.get(dut.run)
            ctx.set(dut.beat.valid, run)
            ctx.set(dut.beat.payload.last, 1)
            runs.append(run)
            await ctx.tick()

    run_testbench(dut, bench)
    taken = sum(runs)
    assert taken == PENDING_TRANSFERS
    assert not any(runs[runs.index(1) + taken:])


def test_the_header_reads_back():
    rng = np.random.default_rng(10)
    image = image_words(DIGEST, random_contents(rng))
    digest, length = read_image_header(image.astype("<u4").tobytes())
    assert digest == DIGEST and length == len(image) and int(image[0]) == MAGIC
    with pytest.raises(ValueError, match="header says"):
        read_image_header(image[:-1].astype("<u4").tobytes())
    with pytest.raises(ValueError, match="not a weight image"):
        read_image_header(image[1:].astype("<u4").tobytes())


def test_parameters_are_checked():
    with pytest.raises(TypeError, match="LoadableMemory"):
        WeightLoader(memories=[], header=header_words(DIGEST, MEMORIES))
    with pytest.raises(ValueError, match="header"):
        WeightLoader(memories=MEMORIES, header=[MAGIC])


@pytest.mark.synth
def test_at_most_five_logic_levels_after_yosys(tmp_path):
    """Synthesized alone (Yosys synth_xilinx, flattened), no path between the loader's registers and ports is more
    than five logic levels (the suite's fastest designs' depth): the memory counters meet registered limits,
    not a lookup of the memory number. Memories of three depths and three kinds of entry."""
    from amaranth.back import verilog
    from amaranth.hdl import Elaboratable, Module, Signal

    from lstm_hw.synth import yosys as synth
    memories = (LoadableMemory("a", 80, (COLUMN_BITS, COLUMN_BITS, 100)), LoadableMemory("b", 16, (32,) * 16),
                LoadableMemory("c", 1024, (52,)))
    dut = WeightLoader(memories=memories, header=header_words(DIGEST, memories))

    class Pins(Elaboratable):        # the loader with plain ports (its beat stream's ready is a constant)
        def __init__(self):
            self.inputs = [Signal(len(v), name=n) for n, v in (
                ("data", dut.i.payload.data), ("last", dut.i.payload.last), ("valid", dut.i.valid),
                ("beat_valid", dut.beat.valid), ("beat_last", dut.beat.payload.last), ("done", dut.done))]
            self.outputs = [Signal(len(v), name=n) for n, v in (
                ("ready", dut.i.ready), ("write", dut.write.as_value()), ("ok", dut.ok), ("run", dut.run))]

        def elaborate(self, platform):
            m = Module()
            m.submodules.loader = dut
            m.d.comb += [port.eq(pin) for port, pin in zip(
                (dut.i.payload.data, dut.i.payload.last, dut.i.valid, dut.beat.valid, dut.beat.payload.last,
                 dut.done), self.inputs)]
            m.d.comb += [pin.eq(port) for port, pin in zip(
                (dut.i.ready, dut.write.as_value(), dut.ok, dut.run), self.outputs)]
            return m

    pins = Pins()
    (tmp_path / "loader.v").write_text(verilog.convert(pins, name="loader", emit_src=False,
                                                       ports=pins.inputs + pins.outputs))
    netlist = synth.synthesize(["loader.v"], "loader", tmp_path, synth.find_yosys())
    depth = synth.logic_depth(netlist, over=5)
    assert depth["levels"] <= 5, depth["deep_paths"]
