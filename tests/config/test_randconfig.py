"""Randomized configs: every draw is valid and builds; a fixed sample runs bit-exact end to end.

``benchmarks/soak.py`` runs as many seeds as asked; a failure there replays
here by adding its seed (and ``max_size``) to ``SIM_SEEDS``.
"""

import numpy as np
import pytest

from lstm_hw.config.randconfig import random_case, random_config
from lstm_hw.config.schema import parse_config
from lstm_hw.model.golden import run_golden

# Small designs keep each Verilator build around 10 s.
SIM_MAX_SIZE = 8
SIM_SEEDS = {"icarus": (101, 102, 103), "verilator": (201, 202, 203)}


def test_random_config_is_seeded():
    a, b = (random_config(np.random.default_rng(7)) for _ in range(2))
    assert a == b
    assert a != random_config(np.random.default_rng(8))


def test_random_config_ranges():
    configs = [random_config(np.random.default_rng(seed)) for seed in range(500)]
    model = [c["model"] for c in configs]
    assert {m["num_layers"] for m in model} == {1, 2, 3}
    assert min(m["input_size"] for m in model) == 1 and max(m["hidden_size"] for m in model) == 40
    assert {m["return_sequences"] for m in model} == {False, True}
    assert {m["sequence_length"] for m in model} == {0, 1, 2, 3, 4}
    assert {m["stateful"] for m in model} == {False, True}
    assert not any(m["stateful"] and m["sequence_length"] for m in model)
    assert {c["activation"]["method"] for c in configs} == {"lut", "pwl", "quadratic", "taylor"}
    assert {c["sparsity"]["pattern"] for c in configs} == {"bank_balanced", "unstructured"}
    assert {c["hardware"]["weights"] for c in configs} == {"rom", "ram"}
    assert all(c["hardware"]["weights"] == "rom" for c in configs if c["sparsity"]["pattern"] == "unstructured")
    bits = {c["quant"][f]["bits"] for c in configs for f in ("weight", "activation")}
    assert bits == set(range(4, 17))


@pytest.mark.parametrize("block", range(4))
def test_random_configs_build_and_run_golden(block):
    """200 seeds: parse, build the design, run the golden model on a short random input."""
    for seed in range(block * 50, (block + 1) * 50):
        config, design, x = random_case(seed)
        assert parse_config(config) == design.config, f"seed {seed}"
        y = run_golden(design, x)
        fmt = design.output_format
        assert y.min() >= fmt.min_int and y.max() <= fmt.max_int, f"seed {seed}: output outside {fmt}"


@pytest.mark.cocotb
@pytest.mark.parametrize("sim, seed", [(sim, s) for sim, seeds in SIM_SEEDS.items() for s in seeds])
def test_random_config_cocotb(sim, seed, tmp_path):
    from lstm_hw.sim.flow import flow_modes
    from lstm_hw.sim.top import simulate_top
    config, design, x = random_case(seed, max_size=SIM_MAX_SIZE)
    res = simulate_top(design, x, sim=sim, build_dir=tmp_path, seed=seed, modes=flow_modes(idle=0.25, backpressure=0.3))
    assert res.passed, f"random config seed {seed} (max_size {SIM_MAX_SIZE}); config {config}\n{res.summary()}"
