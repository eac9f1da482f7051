"""The gate sums' widths (lstm_hw/model/sums.py): "rom" as the weights need, "ram" as the formats need or
``hardware.sum_bits``, and the refusal of weights whose sums could need more. That sums of these widths run
bit-exact: tests/generators/test_mvm.py; loaded models under the simulators: tests/sim/test_weights.py."""

import numpy as np
import pytest

from lstm_hw.config.randconfig import random_config
from lstm_hw.config.schema import parse_config
from lstm_hw.errors import ConfigError
from lstm_hw.model.design import build_design
from lstm_hw.model.sums import exact_sum_bits, format_sum_bits, gate_sum_bits, need_sum_bits
from lstm_hw.model.weights import random_weights


def units(design):
    return [*design.layers, *([design.head] if design.head is not None else [])]


@pytest.mark.parametrize("seed", range(8))
def test_widths_by_mode_and_bound(seed):
    """For random configs and weights: what the weights need within both the "rom" rule's width and the formats';
    "rom" takes its rule's, "ram" the formats'; a bound narrows either, down to what the weights need."""
    design = build_design(parse_config(random_config(np.random.default_rng(seed))))
    for plan in units(design):
        q = design.unit_quant(plan)
        need, exact, most = need_sum_bits(plan, q), exact_sum_bits(plan, q), format_sum_bits(plan, q)
        assert need <= min(exact, most)
        assert gate_sum_bits(plan, q, writable=False) == exact
        assert gate_sum_bits(plan, q, writable=True) == most
        for bound in range(need, max(exact, most) + 3):
            assert gate_sum_bits(plan, q, writable=True, most=bound) == min(bound, most)
            assert gate_sum_bits(plan, q, writable=False, most=bound) == min(bound, exact)
        for writable in (False, True):
            with pytest.raises(ConfigError, match="hardware.sum_bits"):
                gate_sum_bits(plan, q, writable=writable, most=need - 1)


def test_larger_weights_need_wider_sums():
    """Scaling every weight and bias up widens what they need, never past the formats' bound."""
    config = parse_config({"model": {"output_size": 3}, "hardware": {"weights": "ram"}})
    weights = random_weights(config)
    needs = [[need_sum_bits(p, d.unit_quant(p)) for p in units(d)]
             for d in (build_design(config, {k: s * v for k, v in weights.items()}) for s in (1, 4, 1e9))]
    d = build_design(config)
    most = [format_sum_bits(p, d.unit_quant(p)) for p in units(d)]
    assert all(a < b <= c <= m for a, b, c, m in zip(*needs, most))


def test_build_design_refuses_weights_over_the_bound_naming_the_unit():
    """A bound every layer fits but the head does not: the head is named, with the bits it needs and the source."""
    config = {"model": {"output_size": 3}, "hardware": {"weights": "ram"}}
    weights = random_weights(parse_config(config))
    weights["fc.weight"] = weights["fc.weight"] * 16
    design = build_design(parse_config(config), weights)
    layers = max(need_sum_bits(p, design.unit_quant(p)) for p in design.layers)
    head = need_sum_bits(design.head, design.unit_quant(design.head))
    assert head > layers
    bounded = parse_config({**config, "hardware": {**config["hardware"], "sum_bits": layers}})
    with pytest.raises(ConfigError, match=f"hardware.sum_bits: is {layers}, but the head's gate sums need {head} "
                                          f"bits with big.npz"):
        build_design(bounded, weights, source="big.npz")
    build_design(parse_config({**config, "hardware": {**config["hardware"], "sum_bits": head}}), weights)
