"""The analytical resource model: its multipliers and memories as Yosys maps them, its trends, and (marked
``synth``) its figures against a real synthesis."""

import json
import time
import tomllib

import pytest

from helpers import SMALL_TOML, invoke, write
from lstm_hw.config.parts import parse_part
from lstm_hw.config.schema import parse_config
from lstm_hw.errors import UsageError
from lstm_hw.generators.mvm_mac import chain_groups
from lstm_hw.generators.mvm_rom import RamShape, rom_word_layout
from lstm_hw.model.design import build_design
from lstm_hw.synth import estimate as model
from lstm_hw.synth.report import utilization, verdict

SMALL = {"model": {"input_size": 8, "hidden_size": 16, "num_layers": 1}}


def design(**sections):
    """A design of :data:`SMALL` with ``sections`` merged over it (``hardware={"rows": 2}``)."""
    data = {k: dict(v) for k, v in SMALL.items()}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return build_design(parse_config(data))


# -- multipliers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [(2, 8), (8, 8), (16, 16), (18, 25), (25, 18), (18, 18)])
def test_a_multiplier_within_25_by_18_takes_one_dsp(a, b):
    assert model.mul_dsps(a, b) == 1


@pytest.mark.parametrize("a,b,y", [(1, 16, 17), (16, 1, 17), (4, 4, 8), (3, 5, 8)])
def test_one_bit_operands_and_narrow_products_stay_in_logic(a, b, y):
    assert model.mul_dsps(a, b, y) == 0


def test_wider_multipliers_split_into_pieces_of_17_bits():
    # B beyond 18 bits: a 17-bit piece (18 with its sign) and the rest, each a DSP48E1.
    assert model.mul_dsps(24, 24) == 2
    assert model.mul_dsps(24, 24) == model.mul_dsps(24, 18) + model.mul_dsps(24, 24 - 17)
    # A beyond 25 bits as well.
    assert model.mul_dsps(26, 18) == 2
    assert model.mul_dsps(40, 40) > model.mul_dsps(24, 24)


@pytest.mark.parametrize("method,degree", [("lut", 0), ("pwl", 1), ("quadratic", 2)])
@pytest.mark.parametrize("rows", [1, 4, 8])
def test_dsps_are_the_macs_plus_the_cell_lanes_multipliers(method, degree, rows):
    d = design(activation={"method": method, "segments": 16}, hardware={"rows": rows})
    plan = d.layers[0]
    lanes = plan.units_per_pass
    # A MAC per PE; per cell lane five activation units of `degree` Horner steps and the cell's three products.
    assert model.estimate(d)["dsps"] == plan.rows * plan.banks + lanes * (5 * degree + 3)


def test_a_head_adds_its_macs():
    with_head = design(model={"output_size": 3})
    assert model.estimate(with_head)["dsps"] == model.estimate(design())["dsps"] + with_head.head.banks


# -- memories ----------------------------------------------------------------------------------------

def test_block_ram_shapes():
    block = dict(writable=True, style="block")
    assert model.map_memory(model.Memory("m", 512, 36, **block)) == ("ramb18", 1)
    assert model.map_memory(model.Memory("m", 512, 72, **block)) == ("ramb36", 1)
    assert model.map_memory(model.Memory("m", 1024, 36, **block)) == ("ramb36", 1)
    assert model.map_memory(model.Memory("m", 513, 36, **block)) == ("ramb36", 1)
    assert model.map_memory(model.Memory("m", 512, 144, **block)) == ("ramb36", 2)
    # A ROM of 44-bit words: one RAMB36E1 at 72 bits rather than two RAMB18E1s at 36.
    assert model.map_memory(model.Memory("m", 48, 44, False, "block")) == ("ramb36", 1)


def test_small_memories_go_to_distributed_ram_or_logic():
    # Writable: RAM32M (6 bits a word up to 32 words) or RAM64M (3 bits up to 64).
    assert model.map_memory(model.Memory("m", 32, 16, True)) == ("ram32m", 3)
    assert model.map_memory(model.Memory("m", 64, 16, True)) == ("ram64m", 6)
    # A small ROM is logic; distributed RAM takes no ROMs.
    assert model.map_memory(model.Memory("m", 32, 33, False))[0] == "logic"
    assert model.map_memory(model.Memory("m", 64, 16, False, "distributed")) == ("logic", 64 * 16)
    # A big writable memory without a style goes to block RAM.
    assert model.map_memory(model.Memory("m", 512, 32, True)) == ("ramb18", 1)
    # One read-write port: RAM32M as 32 x 8 (4 LUTs), then a single-bit primitive a bit (1, 2 and 4 LUTs), as
    # Yosys 0.23 maps them.
    single = {"writable": True, "style": "distributed", "single_port": True}
    assert model.map_memory(model.Memory("m", 32, 16, **single)) == ("ram32m", 2)
    assert model.map_memory(model.Memory("m", 64, 21, **single)) == ("ram64x1s", 21)
    assert model.map_memory(model.Memory("m", 114, 33, **single)) == ("ram128x1s", 33)
    assert model.map_memory(model.Memory("m", 200, 5, **single)) == ("ram256x1s", 5)
    assert model.memory_mapping(model.Memory("m", 300, 5, **single)) == ("ram64x1s", 25, 5)


def test_weight_roms_take_the_block_rams_their_shapes_need():
    d = design()
    plan, q = d.layers[0], d.config.quant
    groups = chain_groups(plan.banks, d.config.hardware.mac_chain)
    positions = max(len(g) for g in groups)
    width = rom_word_layout(rows=plan.rows, banks=len(groups), weight=q.weight.shape(),
                            index_bits=plan.index_bits).size
    depth = plan.passes * plan.k
    assert 36 < width <= 72 and depth <= 512      # one RAMB36E1 each, by the shapes alone
    est = model.estimate(d)
    weights = [m for m in est["memories"] if m["unit"] == "weights"]
    assert sum(m["instances"] for m in weights) == positions
    assert est["bram36"] == positions and est["ramb18"] == 0


def test_writable_weights_take_a_block_ram_per_field_of_their_ram_shape():
    d = design(hardware={"weights": "ram"})
    plan, q = d.layers[0], d.config.quant
    groups = chain_groups(plan.banks, d.config.hardware.mac_chain)
    width = rom_word_layout(rows=plan.rows, banks=len(groups), weight=q.weight.shape(),
                            index_bits=plan.index_bits).size
    shape = RamShape.of(plan.passes * plan.k, width)
    weights = [m for m in model.estimate(d)["memories"] if m["unit"] == "weights"]
    assert sorted(m["width"] for m in weights for _ in range(m["instances"])) == \
        sorted(shape.fields * max(len(g) for g in groups))
    assert all(m["writable"] and m["depth"] == shape.rows for m in weights)


def test_ram_weights_cost_more_logic_than_rom_weights():
    rom, ram = model.estimate(design()), model.estimate(design(hardware={"weights": "ram"}))
    assert ram["luts"] > rom["luts"] and ram["ffs"] > rom["ffs"]
    assert ram["dsps"] == rom["dsps"]


def test_deep_partial_sums_leave_distributed_ram():
    shallow = model.estimate(design(model={"hidden_size": 16}, hardware={"rows": 1}))   # 64 passes
    deep = model.estimate(design(model={"hidden_size": 64}, hardware={"rows": 1}))      # 256 passes
    kinds = {m["unit"]: m["mapped"] for m in shallow["memories"]}
    assert kinds["partial sums"] in ("ram32m", "ram64m")
    assert {m["unit"]: m["mapped"] for m in deep["memories"]}["partial sums"] in ("ramb18", "ramb36")


# -- trends and the interface -----------------------------------------------------------------------

@pytest.mark.parametrize("key,values", [("rows", [1, 2, 4, 8]), ("banks", [2, 4, 8])])
def test_more_macs_never_cost_less(key, values):
    section = "hardware" if key == "rows" else "sparsity"
    ests = [model.estimate(design(**{section: {key: v}})) for v in values]
    for res in ("dsps", "luts", "ffs"):
        figures = [e[res] for e in ests]
        assert figures == sorted(figures), (res, figures)
    assert ests[-1]["dsps"] > ests[0]["dsps"]


def test_wider_formats_cost_more_logic():
    narrow = model.estimate(design(quant={"weight": {"bits": 4, "frac": 3}, "activation": {"bits": 8, "frac": 5}}))
    wide = model.estimate(design())
    assert narrow["luts"] < wide["luts"] and narrow["ffs"] < wide["ffs"]


def test_figures_are_what_report_counts_and_its_verdict_takes():
    d = design()
    est = model.estimate(d)
    assert {"luts", "ffs", "dsps", "bram36", "fmax_mhz"} <= set(est)
    assert est["luts"] == est["lut_logic"] + est["lutram_luts"]
    assert est["bram36"] == est["ramb36"] + est["ramb18"] / 2
    assert verdict(utilization(est, parse_part(d.config.hardware.part)))["fits"]
    tiny = parse_part("xc7a35tcsg324-1")
    big = model.estimate(design(sparsity={"banks": 8}, hardware={"rows": 16}))
    v = verdict(utilization(big, tiny))
    assert not v["fits"] and "DSP48E1" in [o["resource"] for o in v["overflows"]]


def test_a_faster_speed_grade_clocks_faster():
    slow = model.estimate(design(hardware={"part": "xc7a35tcsg324-1"}))["fmax_mhz"]
    fast = model.estimate(design(hardware={"part": "xc7a35tcsg324-2"}))["fmax_mhz"]
    assert fast > slow > 0


def test_deep_weight_memories_and_split_multipliers_clock_slower():
    base = model.estimate(design())["fmax_mhz"]
    # 2,560 words of 13 bits: five 512-word slices of one RAMB36E1, a read multiplexer before the vector store.
    deep = design(model={"hidden_size": 64}, hardware={"rows": 1})
    assert max(m["depth"] for m in model.estimate(deep)["memories"] if m["unit"] == "weights") > 512
    assert model.estimate(deep)["fmax_mhz"] < base
    wide = design(quant={"weight": {"bits": 20, "frac": 16}, "activation": {"bits": 20, "frac": 14}})
    assert model.mul_dsps(20, 20) > 1 and model.estimate(wide)["fmax_mhz"] < base


def test_estimate_is_quick():
    d = design(model={"input_size": 64, "hidden_size": 128})
    t0 = time.perf_counter()
    model.estimate(d)
    assert time.perf_counter() - t0 < 2.0


def test_estimate_takes_a_design_only():
    with pytest.raises(UsageError, match="expected a Design, got Config"):
        model.estimate(parse_config(SMALL))
    with pytest.raises(UsageError, match="expected a Design, got str"):
        model.estimate_report("lstm.toml")


# -- the command line --------------------------------------------------------------------------------

def test_report_estimate_prints_the_model_without_yosys(tmp_path):
    cfg = write(tmp_path / "c.toml", SMALL_TOML)
    est = model.estimate(build_design(parse_config(tomllib.loads(SMALL_TOML))))
    text = invoke("report", cfg, "--estimate", "--yosys", tmp_path / "no-yosys")
    assert text.exit_code == 0, text.output
    assert "ESTIMATE" in text.stdout and "verdict (estimate): fits" in text.stdout
    assert "block RAM by unit: weights" in text.stdout      # weight ROMs always go to block RAM
    dsp_line = next(line for line in text.stdout.splitlines() if line.startswith("DSP48E1"))
    assert dsp_line.split()[1] == str(est["dsps"])
    js = invoke("report", cfg, "--estimate", "--json")
    assert js.exit_code == 0, js.output
    rep = json.loads(js.stdout)
    assert {k: rep["resources"][k] for k in ("luts", "ffs", "dsps", "bram36")} == \
        {k: est[k] for k in ("luts", "ffs", "dsps", "bram36")}
    assert rep["timing"]["estimated_fmax_mhz"] == est["fmax_mhz"] and "model" in rep["estimate"]
    assert rep["performance"]["cycles_per_timestep"] > 0


def test_report_estimate_exits_1_when_the_design_does_not_fit(tmp_path):
    cfg = write(tmp_path / "c.toml", SMALL_TOML + '[hardware]\npart = "xc7a35tcsg324-1"\nrows = 64\n')
    result = invoke("report", cfg, "--estimate")
    assert result.exit_code == 1, result.output
    assert "DOES NOT FIT" in result.stdout
    assert result.stderr.splitlines()[-1].startswith("error: does not fit xc7a35tcsg324-1 (estimate): DSP48E1")


# -- against Yosys ---------------------------------------------------------------------------------

@pytest.mark.synth
@pytest.mark.xdist_group("synth-estimate")
@pytest.mark.parametrize("sections", [{}, {"hardware": {"weights": "ram", "rows": 2}}], ids=["rom", "ram"])
def test_the_model_matches_yosys(sections):
    from lstm_hw.synth.report import build_report
    d = design(**sections)
    est = model.estimate(d)
    counts = build_report(d)["resources"]
    assert (est["dsps"], est["bram36"], est["lutram_luts"]) == (counts["dsps"], counts["bram36"], counts["lutram_luts"])
    for key in ("luts", "ffs"):
        assert abs(est[key] - counts[key]) <= 0.15 * counts[key], (key, est[key], counts[key])
