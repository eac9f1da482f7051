"""``lstm-hw approx``: the report against errors recomputed here, the plot, the sweep, one-line errors.

The expected errors are recomputed in this file from ``table.eval`` and NumPy
float64, never read back from :mod:`lstm_hw.numerics.approx` or hard-coded.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from lstm_hw.config.schema import Config, load_config
from lstm_hw.numerics import approx
from lstm_hw.numerics.activations import build_table
from helpers import assert_one_line_error, invoke, png_size, write

EXACT = {"sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "tanh": np.tanh}
MULTIPLIERS = {"lut": 0, "pwl": 1, "quadratic": 2, "taylor1": 1, "taylor2": 2, "taylor3": 3}
LABELS = tuple(MULTIPLIERS)
COLUMNS = ["fn", "method", "segments", "max abs error", "mean abs error", "multipliers", "table bits"]


def expected_errors(table) -> tuple[float, float]:
    codes = np.arange(-(1 << (table.in_fmt.bits - 1)), 1 << (table.in_fmt.bits - 1), dtype=np.int64)
    x = codes / 2.0 ** table.in_fmt.frac
    y = table.eval(codes) / 2.0 ** table.out_fmt.frac
    err = np.abs(y - EXACT[table.fn](x))
    return float(err.max()), float(err.mean())


def printed(output: str) -> dict[str, str]:
    """The report block as {name: value}: names and values are split by two or more spaces."""
    fields = {}
    for line in output.splitlines():
        name, _, value = line.partition("  ")
        fields[name] = value.strip()
    return fields


# -- one table ------------------------------------------------------------------------

CASES = {
    "sigmoid_pwl": (("--fn", "sigmoid", "--method", "pwl", "--segments", 32), {}),
    "tanh_lut_range": (("--fn", "tanh", "--method", "lut", "--segments", 64, "--range", 2),
                       {"range_real": 2.0}),
    "sigmoid_quadratic_coef": (("--fn", "sigmoid", "--method", "quadratic", "--segments", 8, "--coef-bits", 12),
                               {"coef_bits": 12}),
    "tanh_taylor3_unfolded": (("--fn", "tanh", "--method", "taylor", "--order", 3, "--segments", 16,
                               "--no-fold"), {"fold": False, "order": 3}),
    "sigmoid_taylor1": (("--fn", "sigmoid", "--method", "taylor", "--order", 1, "--segments", 128),
                        {"order": 1}),
}


@pytest.mark.parametrize("args, changes", CASES.values(), ids=CASES.keys())
def test_report_matches_recomputed_errors(tmp_path, monkeypatch, args, changes):
    monkeypatch.chdir(tmp_path)
    result = invoke("approx", *args, "--no-plot")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert os.listdir(tmp_path) == []

    opts = dict(zip(args[::2], args[1::2]))
    fn, method, segments = opts["--fn"], opts["--method"], int(opts["--segments"])
    cfg = Config()
    table = build_table(fn, method, in_fmt=cfg.quant.preact, out_fmt=cfg.quant.nonlin, segments=segments,
                        range_real=changes.get("range_real", getattr(cfg.activation, f"{fn}_range")),
                        coef_bits=changes.get("coef_bits", cfg.activation.coef_bits),
                        rounding=cfg.quant.rounding, fold=changes.get("fold", True),
                        order=changes.get("order", 2))
    max_abs, mean_abs = expected_errors(table)

    fields = printed(result.stdout)
    assert fields["function"] == fn
    assert fields["method"].startswith(method)
    if method == "taylor":
        assert fields["method"] == f"taylor (order {changes['order']})"
    assert fields["segments"].startswith(f"{segments} (")
    assert ("unfolded" in fields["segments"]) == (not changes.get("fold", True))
    assert fields["input"] == str(cfg.quant.preact)
    assert fields["output"] == str(cfg.quant.nonlin)
    rng = changes.get("range_real", getattr(cfg.activation, f"{fn}_range"))
    assert fields["range"] == f"[-{rng:g}, {rng:g})"
    assert float(fields["max abs error"].split()[0]) == pytest.approx(max_abs, rel=1e-6)
    assert float(fields["mean abs error"]) == pytest.approx(mean_abs, rel=1e-6)
    assert int(fields["multipliers"]) == table.multipliers
    assert int(fields["table bits"].split()[0]) == table.table_bits
    assert table.table_bits == segments * sum(table.coef_widths)

    rep = approx.report(table)
    assert rep["max_abs_error"] == pytest.approx(max_abs, rel=1e-9)
    assert rep["mean_abs_error"] == pytest.approx(mean_abs, rel=1e-9)


def test_report_reads_defaults_from_config(tmp_path):
    cfg_path = write(tmp_path / "cfg.toml", "[quant]\npreact = { bits = 12, frac = 8 }\nrounding = \"truncate\"\n"
                                            "[activation]\nsigmoid_range = 4.0\ncoef_bits = 14\n")
    result = invoke("approx", cfg_path, "--fn", "sigmoid", "--method", "pwl", "--segments", 16, "--no-plot")
    assert result.exit_code == 0, result.output
    cfg = load_config(cfg_path)
    table = build_table("sigmoid", "pwl", in_fmt=cfg.quant.preact, out_fmt=cfg.quant.nonlin, segments=16,
                        range_real=4.0, coef_bits=14, rounding="truncate")
    fields = printed(result.stdout)
    assert fields["input"] == "s12.8"
    assert fields["range"] == "[-4, 4)"
    assert float(fields["max abs error"].split()[0]) == pytest.approx(expected_errors(table)[0], rel=1e-6)


# -- the plot -------------------------------------------------------------------------

def test_plot_default_name_valid_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = invoke("approx", "--fn", "tanh", "--method", "taylor", "--segments", 16)
    assert first.exit_code == 0, first.output
    name = "approx_tanh_taylor2_16.png"
    assert first.stdout.splitlines()[-1] == f"wrote {name}"
    assert os.listdir(tmp_path) == [name]                       # no temporary file left behind
    data = (tmp_path / name).read_bytes()
    assert png_size(data) == (800, 600)
    assert b"Software" not in data and b"matplotlib" not in data.lower()

    (tmp_path / "sub").mkdir()
    again = invoke("approx", "--fn", "tanh", "--method", "taylor", "--segments", 16, "--plot", "sub/other.png")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "sub" / "other.png").read_bytes() == data
    assert os.listdir(tmp_path / "sub") == ["other.png"]


def test_plot_ignores_user_style():
    import matplotlib
    table = approx.build(Config(), "sigmoid", "lut", 8)
    plain = approx.plot_png(table)
    with matplotlib.rc_context({"lines.linewidth": 7.0, "axes.facecolor": "yellow", "font.size": 20}):
        assert approx.plot_png(table) == plain


def test_cli_import_leaves_matplotlib_alone():
    code = "import sys, lstm_hw.cli; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the sweep ------------------------------------------------------------------------

def parse_table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = text.strip().splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    assert re.fullmatch(r"\|(-+:?\|)+", lines[1]), lines[1]
    return cells[0], cells[2:]


def test_sweep_default_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("approx", "--sweep")
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path) == []
    head, rows = parse_table(result.stdout)
    assert head == COLUMNS + ["≤ 0.001"]
    segments = [8, 16, 32, 64, 128, 256]
    assert [(r[0], r[1], int(r[2])) for r in rows] == \
        [(fn, label, s) for fn in ("sigmoid", "tanh") for label in LABELS for s in segments]
    for r in rows:
        assert r[7] == ("✓" if float(r[3]) <= 1e-3 else "")
        assert int(r[5]) == MULTIPLIERS[r[1]]
    for fn in ("sigmoid", "tanh"):
        pwl = [float(r[3]) for r in rows if r[:2] == [fn, "pwl"]]
        assert pwl == sorted(pwl, reverse=True), pwl
        bits = [int(r[6]) for r in rows if r[:2] == [fn, "pwl"]]
        assert bits == sorted(bits) and len(set(bits)) == len(bits)

    # A row agrees with the single-table report of the same settings.
    single = invoke("approx", "--fn", "sigmoid", "--method", "pwl", "--segments", 32, "--no-plot")
    max_abs = float(printed(single.stdout)["max abs error"].split()[0])
    row = next(r for r in rows if r[:3] == ["sigmoid", "pwl", "32"])
    assert float(row[3]) == pytest.approx(max_abs, rel=1e-3)


def test_sweep_filters_and_threshold():
    result = invoke("approx", "--sweep", "--fn", "tanh", "--method", "taylor", "--order", 3, "--max-error", 1e-2)
    assert result.exit_code == 0, result.output
    head, rows = parse_table(result.stdout)
    assert head[-1] == "≤ 0.01"
    assert [(r[0], r[1]) for r in rows] == [("tanh", "taylor3")] * 6
    assert all(r[7] == ("✓" if float(r[3]) <= 1e-2 else "") for r in rows)


def test_sweep_skips_what_the_format_cannot_split(tmp_path):
    # 64 input codes below the sigmoid range and 32 below the tanh range.
    cfg = write(tmp_path / "cfg.toml", "[quant]\npreact = { bits = 8, frac = 3 }\n")
    result = invoke("approx", cfg, "--sweep", "--method", "pwl")
    assert result.exit_code == 0, result.output
    _, rows = parse_table(result.stdout)
    assert [(r[0], int(r[2])) for r in rows] == [("sigmoid", s) for s in (8, 16, 32, 64)] + \
        [("tanh", s) for s in (8, 16, 32)]


# -- bad input ------------------------------------------------------------------------

TABLE = ("--fn", "sigmoid", "--method", "pwl", "--segments", "32")
BAD = {
    "unknown_method": (("--fn", "sigmoid", "--method", "spline", "--segments", 32), ["--method", "spline"]),
    "unknown_fn": (("--fn", "relu", "--method", "pwl", "--segments", 32), ["--fn"]),
    "segments_not_pow2": (("--fn", "sigmoid", "--method", "pwl", "--segments", 12), ["--segments", "12"]),
    "segments_zero": (("--fn", "tanh", "--method", "lut", "--segments", 0), ["--segments"]),
    "segments_text": (("--fn", "tanh", "--method", "lut", "--segments", "many"), ["--segments"]),
    "range_too_wide": ((*TABLE, "--range", 64), ["--range", "s16.11"]),
    "range_not_pow2": ((*TABLE, "--range", 3), ["--range", "power of two"]),
    "range_negative": ((*TABLE, "--range", -8), ["--range"]),
    "range_below_segments": (("--fn", "tanh", "--method", "pwl", "--segments", 32, "--range", 0.0078125),
                             ["--range", "32 segments"]),
    "coef_bits": ((*TABLE, "--coef-bits", 2), ["--coef-bits"]),
    "order_range": (("--fn", "tanh", "--method", "taylor", "--segments", 32, "--order", 4), ["--order"]),
    "order_not_taylor": ((*TABLE, "--order", 2), ["--order", "pwl"]),
    "missing_fn": (("--method", "pwl", "--segments", 32), ["--fn", "--sweep"]),
    "missing_all": ((), ["--fn", "--method", "--segments"]),
    "missing_segments": (("--fn", "tanh", "--method", "pwl"), ["--segments"]),
    "plot_and_no_plot": ((*TABLE, "--plot", "a.png", "--no-plot"), ["--no-plot"]),
    "plot_no_dir": ((*TABLE, "--plot", "nowhere/a.png"), ["nowhere"]),
    "plot_under_file": ((*TABLE, "--plot", "file.txt/a.png"), ["file.txt"]),
    "plot_is_dir": ((*TABLE, "--plot", "adir"), ["adir"]),
    "sweep_plot": (("--sweep", "--plot", "a.png"), ["--sweep"]),
    "sweep_segments": (("--sweep", "--segments", 12), ["--segments"]),
    "max_error_zero": (("--sweep", "--max-error", 0), ["--max-error"]),
}


@pytest.mark.parametrize("args, needles", BAD.values(), ids=BAD.keys())
def test_bad_input(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "file.txt", "mine")
    (tmp_path / "adir").mkdir()
    result = invoke("approx", *args)
    assert_one_line_error(result, *needles)
    assert sorted(os.listdir(tmp_path)) == ["adir", "file.txt"]
    assert os.listdir(tmp_path / "adir") == []
    assert result.stdout == ""


def test_bad_config_names_its_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path / "cfg.toml", "[activation]\nsegments = 12\n")
    result = invoke("approx", cfg, *TABLE)
    assert_one_line_error(result, "activation.segments")
    assert result.stderr.startswith("error: activation.segments: ")
    assert os.listdir(tmp_path) == ["cfg.toml"]
