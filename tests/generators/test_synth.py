# amaranth: UnusedElaboratable=no
"""Hardware quality after Yosys ``synth_xilinx -family xc7``: no latches, MACs in DSP48E1s, weight ROMs in block RAM,
accumulator carry chains with registers at DI.

Four small configs (about two minutes of synthesis in all): a dense one-row
design, one with a sparse head, one whose weight ROM is large, and one whose
gate sums are 31 bits wide (the widest adder chunks). The default design is synthesized by
``tests/test_report.py``, which checks the same DSP rule on it.

DSP48E1s are told apart by the hierarchy that survives flattening in their
names: under ``mvm`` (the MAC arrays, one per multiplier of every
``SparseMatVec``), under ``<gate>_gate`` or ``tanh_cell`` (the activation
units, ``multipliers_per_unit`` each) and directly under ``cell<u>`` (the
cell update: f*c, i*g and o*tanh(c)).
"""

import json
from collections import Counter

import numpy as np
import pytest

from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files, write_files
from lstm_hw.generators.mvm import CHUNK_BITS, SparseMatVec, chain_groups, chunk_bounds
from lstm_hw.generators.mvm_sum import SHALLOW_MEMORY_DEPTH
from lstm_hw.model.design import build_design
from lstm_hw.model.weights import random_weights
from lstm_hw.synth import yosys as synth

from configs import E2E_CONFIGS

pytestmark = pytest.mark.synth

BRAM_ROMS = {"model": {"input_size": 4, "hidden_size": 32, "num_layers": 1},
             "sparsity": {"banks": 2, "density": 1.0}, "hardware": {"rows": 1}}
CONFIGS = {
    "dense_awkward_r1": E2E_CONFIGS["dense_awkward_r1"],
    "head": {"model": {"input_size": 3, "hidden_size": 6, "num_layers": 1, "output_size": 3},
             "sparsity": {"banks": 3, "head_density": 0.5}},
    "bram_roms": BRAM_ROMS,     # two PEs, sharing a 2304 x 26-bit ROM (59904 bits)
    # Every weight at one end of its format (WIDE_WEIGHTS): a 30-bit gate sum, so the
    # accumulator's chunks are at their widest (CHUNK_BITS), its mux in front.
    "wide_sums": {"model": {"input_size": 84, "hidden_size": 16, "num_layers": 1},
                  "sparsity": {"banks": 4, "density": 1.0}},
    # 114 passes of 26-bit partial sums: without its ram_style, each lane's would be a RAMB18E1.
    "shallow_psums": {"model": {"input_size": 16, "hidden_size": 228, "num_layers": 1},
                      "sparsity": {"banks": 4, "density": 0.125}, "hardware": {"rows": 8}},
}


def _extreme_weights(config):
    """Every weight at a random end of its format (not all alike, or synthesis would fold the
    ROM's constant bits away), the biases at their top."""
    rng = np.random.default_rng(5)
    return {name: np.where(rng.random(arr.shape) < 0.5, -1e9, 1e9) if name.startswith("weight")
            else np.full(arr.shape, 1e9) for name, arr in random_weights(config).items()}


#: Configs synthesized with weights of their own (the others: the seeded random weights).
WIDE_WEIGHTS = {"wide_sums": _extreme_weights}


# One xdist group per config (run.sh passes --dist loadgroup), so each is synthesized once.
@pytest.fixture(scope="module", params=[pytest.param(name, id=name, marks=pytest.mark.xdist_group(f"synth-{name}"))
                                        for name in sorted(CONFIGS)])
def synthesized(request, tmp_path_factory):
    command = synth.find_yosys()
    config = parse_config(CONFIGS[request.param])
    weights = WIDE_WEIGHTS[request.param](config) if request.param in WIDE_WEIGHTS else None
    design = build_design(config, weights)
    files = design_files(design)
    work = tmp_path_factory.mktemp(request.param)
    write_files(work, files, force=True)
    top = design.config.hardware.top
    meta = json.loads(files[f"{top}.json"])
    netlist = synth.synthesize(meta["sources"], top, work, command)
    return request.param, design, meta, netlist


def _dsp_groups(netlist) -> Counter:
    groups = Counter()
    for name, cell in netlist.cells.items():
        if cell["type"] != "DSP48E1":
            continue
        path = synth.cell_hierarchy(name)
        if "mvm" in path:
            groups["mac"] += 1
        elif path and (path[-1].endswith("_gate") or path[-1] == "tanh_cell"):
            groups["activation"] += 1
        elif path and path[-1].startswith("cell"):
            groups["cell"] += 1
        else:
            groups[".".join(path) or "top"] += 1
    return groups


def test_no_latches_and_everything_mapped(synthesized):
    _, _, _, netlist = synthesized
    counts = synth.resource_counts(netlist)
    assert counts["latches"] == 0
    assert counts["unmapped"] == []


def test_every_multiplier_in_a_dsp48e1(synthesized):
    name, design, meta, netlist = synthesized
    lanes = max(1, design.config.hardware.rows // 4)
    units = 5 * lanes * len(meta["layers"])
    expected = {"mac": meta["macs"], "activation": units * meta["activation"]["multipliers_per_unit"],
                "cell": 3 * lanes * len(meta["layers"])}
    assert _dsp_groups(netlist) == Counter({k: v for k, v in expected.items() if v})


def test_mac_operand_and_product_registers_absorbed(synthesized):
    _, _, meta, netlist = synthesized
    macs = synth.mac_dsps(netlist)
    assert len(macs) == meta["macs"]
    loose = [d for d in macs if not (d["AREG"] >= 1 and d["BREG"] >= 1 and d["MREG"] == 1)]
    assert loose == []


def test_mac_chain_sum_absorbed(synthesized):
    _, _, _, netlist = synthesized
    assert all(d["PREG"] == 1 for d in synth.mac_dsps(netlist))


def test_weight_roms_in_block_ram(synthesized):
    """Every weight ROM (one per chain position of each MVM) is block RAM, all of it:
    at least its bits' worth of BRAM36, whatever its size."""
    _, design, _, netlist = synthesized
    weight_bits = design.config.quant.weight.bits
    in_bram, positions = Counter(), {}
    for cell_name, cell in netlist.cells.items():
        if cell["type"] in ("RAMB18E1", "RAMB36E1"):
            path = synth.cell_hierarchy(cell_name)
            rom = [part for part in path if part.startswith("rom_p")]
            if rom:
                mvm = ".".join(path[:path.index(rom[0])])
                in_bram[mvm] += 1 if cell["type"] == "RAMB36E1" else 0.5
                positions.setdefault(mvm, set()).add(rom[0])
    plans = {f"layer{n}.mvm": plan for n, plan in enumerate(design.layers)}
    if design.head is not None:
        plans["head.mvm"] = design.head
    bits = {mvm: plan.passes * plan.k * plan.rows * plan.banks * (weight_bits + plan.index_bits)
            for mvm, plan in plans.items()}
    assert {mvm: in_bram[mvm] >= n / (36 * 1024) for mvm, n in bits.items()} == {mvm: True for mvm in plans}
    assert {mvm: len(positions.get(mvm, ())) for mvm in plans} == {
        mvm: max(len(chain) for chain in chain_groups(plan.banks, design.config.hardware.mac_chain))
        for mvm, plan in plans.items()}


def test_shallow_partial_sums_in_distributed_ram(synthesized):
    """Partial-sum memories of at most SHALLOW_MEMORY_DEPTH words take no block RAM."""
    _, design, _, netlist = synthesized
    assert all(plan.passes <= SHALLOW_MEMORY_DEPTH for plan in design.layers)
    in_bram = [name for name, cell in netlist.cells.items() if cell["type"] in ("RAMB18E1", "RAMB36E1")
               and any(part.startswith("psum_") for part in synth.cell_hierarchy(name))]
    assert in_bram == []


def test_accumulator_carry_chains_take_registers_at_di(synthesized):
    """Every carry-chain bit of the accumulators has a register (or a DSP48E1's) at DI, not a LUT: the
    start/feedback mux shares the LUT that drives S (carry_add_onto)."""
    _, _, _, netlist = synthesized
    driver = {bit: cell for cell in netlist.cells.values() for port, way in cell["port_directions"].items()
              if way == "output" for bit in cell["connections"][port]}
    readers = {}
    for cell in netlist.cells.values():
        for port, way in cell["port_directions"].items():
            if way == "input":
                for bit in cell["connections"][port]:
                    readers.setdefault(bit, []).append(cell)

    def accumulates(chain) -> bool:
        """The chain's sum goes into an accumulator register (a flip-flop named ``...mvm.acc.acc_l<lane>...``)."""
        return any(reader["type"] in synth.FLIP_FLOPS
                   and ".acc.acc_l" in netlist.net_names.get(reader["connections"]["Q"][0], "")
                   for bit in chain["connections"].get("O", []) for reader in readers.get(bit, []))

    chains = [cell for cell in netlist.cells.values() if cell["type"] == "CARRY4" and accumulates(cell)]
    assert chains
    at_di = Counter(driver[bit]["type"] if bit in driver else "constant" for chain in chains
                    for bit in chain["connections"]["DI"])
    assert not [kind for kind in at_di if kind.startswith("LUT")], at_di


#: The timing goal: at most this many logic levels (LUT, MUXF7/8, CARRY4) between registers.
MAX_LOGIC_LEVELS = 6


def test_wide_sums_fill_the_widest_chunks():
    """The premise of the wide_sums case: its gate sum is two chunks of CHUNK_BITS."""
    config = parse_config(CONFIGS["wide_sums"])
    design = build_design(config, WIDE_WEIGHTS["wide_sums"](config))
    mvm = SparseMatVec(plan=design.layers[0], quant=config.quant)
    assert chunk_bounds(mvm.sum_bits) == [(0, CHUNK_BITS), (CHUNK_BITS, 2 * CHUNK_BITS)]


def test_logic_depth(synthesized):
    name, _, _, netlist = synthesized
    depth = synth.logic_depth(netlist, over=MAX_LOGIC_LEVELS)
    assert depth["levels"] <= MAX_LOGIC_LEVELS, f"{name}: paths over {MAX_LOGIC_LEVELS} levels: {depth['deep_paths']}"
