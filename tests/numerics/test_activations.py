"""The activation tables (every method) against float64, their fixed-point arithmetic, and ``auto``."""

import math

import numpy as np
import pytest

from lstm_hw.config.schema import parse_config
from lstm_hw.errors import ConfigError
from lstm_hw.numerics.activations import FUNCTIONS, VARIANTS, build_table, choose_auto
from lstm_hw.numerics.cell import ActivationTables
from lstm_hw.numerics.fixed import Fixed

PRE, OUT = Fixed(16, 11), Fixed(16, 14)
RANGES = {"sigmoid": 8.0, "tanh": 4.0}
ALL = [(m, o) for m, o in VARIANTS]


def table(fn, method, order=2, segments=32, fold=True, rounding="half_up", in_fmt=PRE, out_fmt=OUT, coef_bits=18):
    return build_table(fn, method, in_fmt=in_fmt, out_fmt=out_fmt, segments=segments, range_real=RANGES[fn],
                       coef_bits=coef_bits, rounding=rounding, fold=fold, order=order)


def exact_error(t):
    codes = t.in_fmt.codes()
    err = np.abs(t.eval(codes) / 2.0 ** t.out_fmt.frac - FUNCTIONS[t.fn](codes / 2.0 ** t.in_fmt.frac))
    return err.max(), err.mean()


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "unfold"])
@pytest.mark.parametrize("method, order", ALL, ids=[f"{m}{o}" for m, o in ALL])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_polynomial_matches_its_coefficients(fn, method, order, fold):
    """Inside the range, every output is the table's polynomial at that code, within its roundings."""
    t = table(fn, method, order, fold=fold)
    codes = t.in_fmt.codes()
    u = np.abs(codes) if fold else codes + t.range_codes
    codes = codes[(u >= 0) & (u < t.span)]
    u = np.abs(codes) if fold else codes + t.range_codes
    seg = u >> t.seg_shift
    tt = (u & ((1 << t.seg_shift) - 1)) - t.centre
    poly = sum(t.coefs[seg, j] * 2.0 ** -t.scales[j] * tt.astype(float) ** j for j in range(t.degree + 1))
    y, _ = t.horner(codes)
    # Each Horner step rounds once (at most one LSB of its scale, carried through the later multiplies).
    tmax = float(np.abs(tt).max()) if tt.size else 0.0
    slack = 1 + sum(2.0 ** -t.scales[j] * tmax ** j for j in range(t.degree))
    assert np.all(np.abs(y - poly) <= slack + 1e-9)


@pytest.mark.parametrize("method, order", ALL, ids=[f"{m}{o}" for m, o in ALL])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_symmetry_is_exact_when_folded(fn, method, order):
    t = table(fn, method, order)
    x = np.arange(1, t.in_fmt.max_int + 1)
    if fn == "sigmoid":
        assert np.array_equal(t.eval(-x), t.one - t.eval(x))
    else:
        assert np.array_equal(t.eval(-x), -t.eval(x))


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "unfold"])
@pytest.mark.parametrize("method, order", ALL, ids=[f"{m}{o}" for m, o in ALL])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_error_is_measured_over_every_code(fn, method, order, fold):
    t = table(fn, method, order, fold=fold)
    assert t.errors() == pytest.approx(exact_error(t), rel=1e-12)


@pytest.mark.parametrize("method, order", [("pwl", 2), ("quadratic", 2), ("taylor", 2), ("taylor", 3)])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_goal_error_within_64_entries(fn, method, order):
    """1e-3 with at most 64 entries, against hls4ml's 1024-entry table (3.9e-3 sigmoid, 7.8e-3 tanh)."""
    assert min(table(fn, method, order, segments=s).errors()[0] for s in (32, 64)) <= 1e-3


@pytest.mark.parametrize("method, order", ALL, ids=[f"{m}{o}" for m, o in ALL])
def test_error_falls_with_segments_to_the_range_floor(method, order):
    """More segments never hurt much, and the error ends at the saturated tail's own error."""
    errs = [table("tanh", method, order, segments=s).errors()[0] for s in (4, 16, 64, 256)]
    assert errs[-1] < errs[0]
    floor = (1 - math.tanh(4.0)) / 2
    assert errs[-1] >= floor - OUT.lsb


def test_taylor_order_one_is_a_tangent():
    """Order 1 at the centre code reproduces f(centre) and f'(centre) (before the output rounding)."""
    t = table("sigmoid", "taylor", 1, segments=16)
    c = (np.arange(16) << t.seg_shift) + t.centre
    s = FUNCTIONS["sigmoid"](PRE.to_real(c))
    np.testing.assert_allclose(t.coefs[:, 0] * 2.0 ** -t.scales[0], s * 2 ** OUT.frac, atol=0.5)
    np.testing.assert_allclose(t.coefs[:, 1] * 2.0 ** -t.scales[1], s * (1 - s) * PRE.lsb * 2 ** OUT.frac,
                               rtol=1e-3, atol=2.0 ** -t.scales[1])


def test_cost():
    assert [table("sigmoid", m, o).multipliers for m, o in ALL] == [0, 1, 2, 1, 2, 3]
    t = table("sigmoid", "quadratic")
    assert t.table_bits == 32 * sum(t.coef_widths)
    for col, width in zip(t.coefs.T, t.coef_widths):
        assert -(1 << (width - 1)) <= col.min() and col.max() < 1 << (width - 1)
        assert not (-(1 << (width - 2)) <= col.min() and col.max() < 1 << (width - 2)), "not the narrowest"


@pytest.mark.parametrize("kwargs, path", [
    ({"segments": 24}, "activation.segments"),
    ({"segments": 1 << 15}, "activation.segments"),
    ({"method": "cubic"}, "activation.method"),
    ({"method": "taylor", "order": 4}, "activation.taylor_order"),
])
def test_bad_parameters(kwargs, path):
    args = {"fn": "sigmoid", "method": "pwl", **kwargs}
    with pytest.raises(ConfigError) as info:
        table(**args)
    assert info.value.path == path


@pytest.mark.parametrize("data, path", [
    ({"activation": {"sigmoid_range": 32.0}}, "activation.sigmoid_range"),
    ({"activation": {"tanh_range": 3.0}}, "activation.tanh_range"),
    ({"activation": {"segments": 48}}, "activation.segments"),
    ({"activation": {"taylor_order": 0}}, "activation.taylor_order"),
    ({"activation": {"max_error": 0.0}}, "activation.max_error"),
    ({"activation": {"fold": "yes"}}, "activation.fold"),
    ({"activation": {"method": "spline"}}, "activation.method"),
])
def test_bad_config(data, path):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.path == path


def test_unmeetable_bound():
    with pytest.raises(ConfigError, match="no method meets") as info:
        ActivationTables.from_config(parse_config({"activation": {"method": "auto", "max_error": 1e-4}}))
    assert info.value.path == "activation.max_error"


@pytest.mark.parametrize("bound", [3e-3, 1e-3])
def test_auto_is_the_cheapest_that_meets_the_bound(bound):
    specs = [("sigmoid", PRE, 8.0), ("tanh", PRE, 4.0)]
    common = dict(out_fmt=OUT, coef_bits=18, rounding="half_up", fold=True)
    method, order, segments, tables = choose_auto(specs, max_error=bound, **common)
    assert max(t.errors()[0] for t in tables) <= bound
    chosen = (tables[0].multipliers, sum(t.table_bits for t in tables))
    # Brute force: no variant with any segment count up to 4096 meets the bound more cheaply.
    for m, o in VARIANTS:
        s = 1
        while s <= 4096:
            try:
                cand = [build_table(fn, m, in_fmt=f, range_real=r, segments=s, order=o, **common) for fn, f, r in specs]
            except ConfigError:
                break
            if max(t.errors()[0] for t in cand) <= bound:
                assert (cand[0].multipliers, sum(t.table_bits for t in cand)) >= chosen, (m, o, s)
            s *= 2


def test_auto_through_the_config_is_recorded():
    tables = ActivationTables.from_config(parse_config({"activation": {"method": "auto", "max_error": 2e-3}}))
    info = tables.describe()
    assert info["chosen_by"] == "auto"
    assert all(info[k]["max_abs_error"] <= 2e-3 for k in ("sigmoid", "tanh_gate", "tanh_cell"))
    assert ActivationTables.from_config(parse_config({})).describe()["chosen_by"] == "config"
