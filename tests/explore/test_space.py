"""SPACE.toml: key paths checked against the config schema, the grid, point configs and the sampling rule."""

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_one_line_error, invoke, write
from lstm_hw.compression.compress import split_bits_only
from lstm_hw.config.schema import fit_config
from lstm_hw.errors import ConfigError, UsageError
from lstm_hw.explore.space import (CALIBRATE, check_point, parse_space, point_mapping, select_points)

SIZES = {"input_size": 3, "hidden_size": 8, "num_layers": 1, "output_size": 2}
BASE = {"model": {"return_sequences": False}, "sparsity": {"banks": 2}}

# Every knob the explorer promises, with values that are valid on the base.
KNOBS = {
    "quant.weight.bits": [6, 8], "quant.weight.frac": [5, CALIBRATE], "quant.activation.bits": [12, 16],
    "sparsity.density": [0.25, 0.5], "sparsity.head_density": [0.5, 1.0],
    "sparsity.pattern": ["bank_balanced", "unstructured"], "sparsity.banks": [1, 2],
    "hardware.rows": [1, 4], "hardware.mac_chain": [1, 4], "activation.method": ["pwl", "lut", "auto"],
    "activation.segments": [16, 32], "activation.max_error": [1e-3, 1e-2], "hardware.io_lanes": [1, 2],
}


def config_of(point, base=BASE):
    raw = point_mapping(base, point)
    split_bits_only(raw)
    return fit_config(raw, SIZES)


@pytest.mark.parametrize("path,values", KNOBS.items())
def test_every_promised_knob_reaches_the_config(path, values):
    space = parse_space({path: values})
    sel = select_points(space, BASE, SIZES)
    assert sel.indices == tuple(range(len(values))) and not sel.skipped
    section, key, *sub = path.split(".")
    for i, value in enumerate(values):
        raw = point_mapping(BASE, space.point(i))
        if sub:   # a format: compress reads it, choosing the frac when it is left out
            assert raw[section][key].get(sub[0], CALIBRATE) == value
        else:
            assert getattr(getattr(config_of(space.point(i)), section), key) == value


def test_quoted_dotted_keys_and_nested_tables_are_the_same_space():
    nested = {"quant": {"weight": {"bits": [4, 8]}}, "sparsity": {"density": [0.5]}}
    assert parse_space(nested).knobs == parse_space({"quant.weight.bits": [4, 8], "sparsity.density": [0.5]}).knobs


@pytest.mark.parametrize("raw,needle", [
    ({"quant.wieght.bits": [4]}, "quant.wieght.bits: unknown key"),
    ({"sparsity.densty": [0.5]}, "sparsity.densty: unknown key"),
    ({"hardwar.rows": [4]}, "unknown section 'hardwar'"),
    ({"model.hidden_size": [8]}, "model.hidden_size: the model section comes from the model"),
    ({"quant.weight": [8]}, "quant.weight: a format is swept by its parts"),
    ({"quant.weight.bitz": [8]}, "a format is swept by its parts"),
    ({"sparsity.density.x": [0.5]}, "sparsity.density has no key 'x'"),
    ({"sparsity.density": []}, "sparsity.density: must be a non-empty array"),
    ({"sparsity.density": 0.5}, "sparsity.density: must be a non-empty array"),
    ({"sparsity.density": [0.5, 0.5]}, "lists 0.5 twice"),
    ({"sparsity.density": [[0.5]]}, "values must be numbers"),
    ({"quant.weight.bits": [CALIBRATE]}, "'calibrate' is a value of quant.<format>.frac only"),
    ({"quant.nonlin.frac": [CALIBRATE]}, "'calibrate' is a value of quant.<format>.frac only"),
    ({}, "no knobs"),
])
def test_bad_spaces_name_the_key(raw, needle):
    with pytest.raises(ConfigError) as e:
        parse_space(raw)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("raw,needle", [
    ({"quant.weight.bits": [4, 30]}, "quant.weight.bits: 30 makes no valid point (quant.weight.bits: must be"),
    ({"sparsity.density": [0.5, 1.5]}, "sparsity.density: 1.5 makes no valid point (sparsity.density: must be"),
    ({"activation.method": ["pwl", "cubic"]}, "activation.method: 'cubic' makes no valid point"),
    ({"hardware.io_lanes": [1, 4]}, "hardware.io_lanes: 4 makes no valid point"),    # banks = 2 in the base
    ({"sparsity.pattern": ["bank_balancd"]}, "sparsity.pattern: 'bank_balancd' makes no valid point"),
    ({"hardware.rows": ["4"]}, "hardware.rows: '4' makes no valid point (hardware.rows: must be an integer"),
])
def test_a_value_that_makes_no_valid_point_is_an_error_naming_its_key(raw, needle):
    with pytest.raises(ConfigError) as e:
        select_points(parse_space(raw), BASE, SIZES)
    assert needle in str(e.value)


def test_invalid_combinations_are_skipped_with_the_reason():
    space = parse_space({"sparsity.banks": [1, 2, 4], "hardware.io_lanes": [1, 2, 4]})
    sel = select_points(space, BASE, SIZES)
    valid = [i for i in range(space.size) if space.point(i)["hardware.io_lanes"] <= space.point(i)["sparsity.banks"]]
    assert list(sel.indices) == valid
    assert [i for i, _ in sel.skipped] == sorted(set(range(space.size)) - set(valid))
    assert all("hardware.io_lanes" in reason for _, reason in sel.skipped)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_the_grid_is_every_combination_once(sizes):
    knobs = ["sparsity.density", "hardware.rows", "activation.segments", "hardware.mac_chain"]
    space = parse_space({k: list(range(n)) for k, n in zip(knobs, sizes)})
    assert space.size == math.prod(sizes)
    points = [tuple(space.point(i).values()) for i in range(space.size)]
    assert points == list(itertools.product(*(range(n) for n in sizes)))   # the last knob varies fastest


def test_the_budget_rule():
    space = parse_space({"sparsity.density": [0.125, 0.25, 0.5, 1.0], "hardware.rows": [1, 2, 4],
                         "hardware.mac_chain": [1, 2, 4]})
    whole = select_points(space, BASE, SIZES)
    assert select_points(space, BASE, SIZES, budget=space.size) == whole and not whole.sampled
    a, b = (select_points(space, BASE, SIZES, budget=10, seed=s) for s in (3, 3))
    assert a == b and a.sampled and len(a.indices) == 10 == len(set(a.indices))
    order = np.random.default_rng(3).permutation(space.size)
    assert set(a.indices) == set(order[:10].tolist())          # all valid: the first 10 of the seeded order
    others = {select_points(space, BASE, SIZES, budget=10, seed=s).indices for s in range(5)}
    assert len(others) > 1


def test_a_sample_takes_valid_points_only():
    space = parse_space({"sparsity.banks": [1, 2, 4], "hardware.io_lanes": [1, 2, 4], "hardware.rows": [1, 4]})
    sel = select_points(space, BASE, SIZES, budget=5, seed=1)
    assert len(sel.indices) == 5
    order = np.random.default_rng(1).permutation(space.size).tolist()
    valid = [i for i in order if check_point(point_mapping(BASE, space.point(i)), SIZES) is None]
    assert set(sel.indices) == set(valid[:5])        # the first 5 valid points of the seeded order
    met = order[:order.index(valid[4]) + 1]
    assert [i for i, _ in sel.skipped] == sorted(set(met) - set(valid))   # the invalid ones met on the way


def test_budget_and_grid_limits():
    space = parse_space({"sparsity.density": [0.25, 0.5]})
    for budget in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="budget"):
            select_points(space, BASE, SIZES, budget=budget)
    huge = parse_space({f"activation.{k}": list(range(1, 80)) for k in ("segments", "coef_bits", "taylor_order")})
    with pytest.raises(UsageError, match="more than"):
        select_points(huge, BASE, SIZES)


def test_point_formats():
    base = {**BASE, "quant": {"weight": {"bits": 8, "frac": 6}}}
    # a frac the base states stays; "calibrate" leaves it to compress; a frac alone takes the default's bits
    assert point_mapping(base, {"quant.weight.bits": 4})["quant"]["weight"] == {"bits": 4, "frac": 6}
    assert point_mapping(base, {"quant.weight.frac": CALIBRATE})["quant"]["weight"] == {"bits": 8}
    assert point_mapping(BASE, {"quant.weight.bits": 6})["quant"]["weight"] == {"bits": 6}
    assert point_mapping(BASE, {"quant.cell.frac": 10})["quant"]["cell"] == {"bits": 18, "frac": 10}
    before = copy.deepcopy(base)
    point_mapping(base, {"quant.weight.bits": 4, "sparsity.density": 0.25})
    assert base == before


def test_cli_space_errors_are_one_line(sweep_files, tmp_path):
    space = write(tmp_path / "space.toml", '"quant.wieght.bits" = [4]\n')
    inputs = (sweep_files / "model.npz", "-d", sweep_files / "val.npz", "-s", space, "-o", tmp_path / "o")
    assert_one_line_error(invoke("explore", *inputs), "space.toml: quant.wieght.bits: unknown key")
    write(space, '"hardware.io_lanes" = [1, 8]\n')
    assert_one_line_error(invoke("explore", *inputs), "hardware.io_lanes: 8 makes no valid point")
    write(space, '"sparsity.density" = [0.5]\n')
    assert_one_line_error(invoke("explore", *inputs, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"),
                          "--workers and --scheduler exclude each other")
    assert_one_line_error(invoke("explore", *inputs, "--finetune-epochs", "1"), "needs --train")
    assert not (tmp_path / "o").exists()
