# amaranth: UnusedElaboratable=no
"""PolyActivation against PolyTable.eval: Amaranth's simulator, then cocotb on the Verilog.

The Amaranth bench helpers (``run_stream``, ``write_verilog``, ``UnitBank``) are in ``tests/helpers.py``.
"""

import json

import numpy as np
import pytest
from amaranth.hdl import Fragment

from helpers import SIMULATORS, UnitBank, run_stream, write_verilog
from lstm_hw.config.schema import parse_config
from lstm_hw.generators.activation import PolyActivation, _rounded_bounds, activation_unit
from lstm_hw.numerics.activations import PolyTable, build_table
from lstm_hw.numerics.cell import ActivationTables
from lstm_hw.numerics.fixed import Fixed, round_shift
from lstm_hw.sim.runner import run_cocotb

#: (method, order) of every variant; order only matters for taylor.
VARIANTS = [("lut", 2), ("pwl", 2), ("quadratic", 2), ("taylor", 1), ("taylor", 2), ("taylor", 3)]
RANGES = {"sigmoid": 8.0, "tanh": 4.0}

_DEFAULT = parse_config({})
FORMATS = {
    # The default 16-bit pre-activation into the default nonlinearity format: edges + random codes.
    "default": dict(in_fmt=_DEFAULT.quant.preact, out_fmt=_DEFAULT.quant.nonlin, segments=32, coef_bits=18,
                    rounding="half_up"),
    # 10-bit input whose sigmoid range spans all 2**9 magnitudes; 1.0 does not fit s8.7. Exhaustive.
    "small_truncate": dict(in_fmt=Fixed(10, 6), out_fmt=Fixed(8, 7), segments=8, coef_bits=10, rounding="truncate"),
    # One code per segment folded (seg_shift = 0, no t bits), two unfolded. Exhaustive.
    "one_code_segments": dict(in_fmt=Fixed(8, 2), out_fmt=Fixed(12, 10), segments=16, coef_bits=12,
                              rounding="half_up", ranges={"sigmoid": 4.0, "tanh": 4.0}),
    # A single segment (no address bits), range beyond the input format. Exhaustive.
    "one_segment": dict(in_fmt=Fixed(9, 5), out_fmt=Fixed(10, 8), segments=1, coef_bits=14, rounding="half_up",
                        ranges={"sigmoid": 16.0, "tanh": 2.0}),
    # range_codes == 2**(bits-1) at 16 bits.
    "full_range": dict(in_fmt=Fixed(16, 12), out_fmt=Fixed(16, 15), segments=64, coef_bits=18, rounding="half_up"),
}
# Input formats up to this many codes are simulated exhaustively in Amaranth.
EXHAUSTIVE_CODES = 1 << 12
RANDOM_CODES = 2048


def make_table(fmt: str, fn: str, method: str, order: int, fold: bool) -> PolyTable:
    kw = dict(FORMATS[fmt])
    rng = kw.pop("ranges", RANGES)[fn]
    return build_table(fn, method, range_real=rng, fold=fold, order=order, **kw)


def probe_codes(table: PolyTable, rng) -> np.ndarray:
    """Every code of a small input format; else every edge and random codes, shuffled.

    Edges: both sides of each segment boundary and of the range (mirrored when
    folded), segment centres, 0, +-1, min and max.
    """
    fmt = table.in_fmt
    if fmt.max_int - fmt.min_int < EXHAUSTIVE_CODES:
        codes = fmt.codes()
    else:
        base = 0 if table.fold else -table.range_codes
        bounds = base + (np.arange(table.segments + 1) << table.seg_shift)
        centres = bounds[:-1] + (1 << table.seg_shift) // 2
        edges = np.concatenate([(bounds[:, None] + np.array([-1, 0, 1])).ravel(), centres, [0, 1]])
        codes = np.concatenate([edges, -edges, [fmt.min_int, fmt.max_int],
                                rng.integers(fmt.min_int, fmt.max_int + 1, RANDOM_CODES)])
        codes = np.unique(np.clip(codes, fmt.min_int, fmt.max_int))
    return rng.permutation(codes)


def check_unit(table: PolyTable, seed: int = 1) -> None:
    codes = probe_codes(table, np.random.default_rng(seed))
    dut = activation_unit(table)
    latency, got = run_stream(dut, [int(x) for x in codes])
    assert latency == dut.latency
    want = table.eval(codes)
    mismatch = np.flatnonzero(np.array(got) != want)
    assert mismatch.size == 0, [(int(codes[k]), got[k], int(want[k])) for k in mismatch[:10]]


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "unfold"])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
@pytest.mark.parametrize("method,order", VARIANTS, ids=[m if m != "taylor" else f"taylor{o}" for m, o in VARIANTS])
@pytest.mark.parametrize("fmt", FORMATS)
def test_matches_table(fmt, method, order, fn, fold):
    check_unit(make_table(fmt, fn, method, order, fold))


@pytest.mark.parametrize("fn", ["sigmoid", "tanh_gate", "tanh_cell"])
def test_matches_config_tables(fn):
    """The tables CellUpdate receives from the default config."""
    check_unit(getattr(ActivationTables.from_config(_DEFAULT), fn))


@pytest.mark.parametrize("mode", ["half_up", "truncate"])
@pytest.mark.parametrize("shift", [-3, 0, 1, 4])
def test_rounded_bounds(shift, mode):
    """The clamp compares on acc agree with comparing its rounded value."""
    acc = np.arange(-300, 300)
    rounded = round_shift(acc, shift, mode)
    for lo, hi in [(-5, 5), (0, 16), (-16, 0), (3, 3)]:
        a_lo, a_hi = _rounded_bounds(lo, hi, shift, mode)
        assert np.array_equal(acc < a_lo, rounded < lo)
        assert np.array_equal(acc > a_hi, rounded > hi)


def test_interface():
    table = make_table("default", "sigmoid", "quadratic", 2, True)
    unit = activation_unit(table)
    assert isinstance(unit, PolyActivation) and unit.table is table
    assert unit.latency == 3 * table.degree + 4
    assert unit.i.payload.shape() == table.in_fmt.shape()
    assert unit.o.payload.shape() == table.out_fmt.shape()
    Fragment.get(unit, None)  # elaborates on its own
    with pytest.raises(TypeError, match="PolyTable"):
        PolyActivation(table="sigmoid")
    with pytest.raises(TypeError, match="PolyTable"):
        PolyActivation(table=None)
    with pytest.raises(TypeError):
        PolyActivation(make_table("default", "sigmoid", "pwl", 2, True))  # keyword-only
    with pytest.raises(TypeError, match="no activation unit"):
        activation_unit(object())


def verilog_units() -> dict:
    """Every method for sigmoid and tanh at the default format, folded, plus unfolded pwl and taylor3."""
    units = {}
    for method, order in VARIANTS:
        name = method if method != "taylor" else f"taylor{order}"
        for fn in ("sigmoid", "tanh"):
            units[f"{fn}_{name}"] = PolyActivation(table=make_table("default", fn, method, order, True))
    for fn in ("sigmoid", "tanh"):
        units[f"{fn}_pwl_unfold"] = PolyActivation(table=make_table("default", fn, "pwl", 2, False))
        units[f"{fn}_taylor3_unfold"] = PolyActivation(table=make_table("default", fn, "taylor", 3, False))
    return units


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_exhaustive_verilog(sim, tmp_path, monkeypatch):
    """Every input code of the default format through every method, side by side in one Verilog top."""
    units = verilog_units()
    write_verilog(UnitBank(units), tmp_path / "activations.v", "activations", monkeypatch)
    codes = _DEFAULT.quant.preact.codes()
    assert codes.size == 1 << 16
    np.save(tmp_path / "x.npy", codes)
    spec = {"stimulus": str(tmp_path / "x.npy"), "units": {}}
    for name, unit in units.items():
        assert unit.table.in_fmt == _DEFAULT.quant.preact
        np.save(tmp_path / f"{name}.npy", unit.table.eval(codes))
        spec["units"][name] = {"expected": str(tmp_path / f"{name}.npy"), "out_bits": unit.table.out_fmt.bits,
                               "latency": unit.latency}
    result = run_cocotb(sim=sim, sources=[tmp_path / "activations.v"], toplevel="activations",
                        test_module="lstm_hw.sim.tb_activation", build_dir=tmp_path / sim,
                        env={"TB_SPEC": json.dumps(spec)})
    assert result == (1, 0), f"see {tmp_path / sim / 'test.log'}"
