"""How good and how costly one sigmoid/tanh table is, a sweep over methods and sizes, and its plot.

The tables come from :func:`lstm_hw.numerics.activations.build_table`, with the input
format ``quant.preact``, the output format ``quant.nonlin`` and everything
else from the configuration unless overridden. Errors are measured over every
input code against float64, as :meth:`~lstm_hw.numerics.activations.PolyTable.errors`
does.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np

from .activations import FUNCTIONS, VARIANTS as _TABLE_VARIANTS, PolyTable, build_table, variant_name
from ..config.schema import Config
from ..errors import ConfigError

__all__ = ["FUNCTION_NAMES", "SWEEP_SEGMENTS", "VARIANTS", "with_overrides", "build", "label", "report",
           "format_report", "sweep", "format_sweep", "plot_name", "plot_png", "plot"]

FUNCTION_NAMES = tuple(FUNCTIONS)
#: Every (method, Taylor order) the sweep tries; the order only matters for Taylor.
VARIANTS = tuple((m, o if m == "taylor" else None) for m, o in _TABLE_VARIANTS)
SWEEP_SEGMENTS = (8, 16, 32, 64, 128, 256)

# The plot shows this much of the saturated tails beyond the table range, as a
# fraction of the range, and draws at most this many input codes per curve.
_PLOT_MARGIN = 0.25
_PLOT_POINTS = 1 << 14
_PLOT_SIZE = (8.0, 6.0)
_PLOT_DPI = 100


def with_overrides(config: Config, fns=FUNCTION_NAMES, *, segments: int | None = None,
                   range_real: float | None = None, coef_bits: int | None = None) -> Config:
    """``config`` with its activation settings replaced, validated as a config file is.

    ``range_real`` replaces the range of every function in ``fns``. Bad values
    raise :class:`~lstm_hw.errors.ConfigError` naming the ``activation.*`` key.
    """
    changes = {}
    if segments is not None:
        changes["segments"] = segments
    if range_real is not None:
        changes.update({f"{fn}_range": float(range_real) for fn in fns})
    if coef_bits is not None:
        changes["coef_bits"] = coef_bits
    if not changes:
        return config
    return replace(config, activation=replace(config.activation, **changes))


def build(config: Config, fn: str, method: str, segments: int, *, order: int | None = None,
          fold: bool | None = None) -> PolyTable:
    """The table of ``fn`` by ``method``; ``order`` and ``fold`` default to the config's."""
    a = config.activation
    return build_table(fn, method, in_fmt=config.quant.preact, out_fmt=config.quant.nonlin, segments=segments,
                       range_real=getattr(a, f"{fn}_range"), coef_bits=a.coef_bits,
                       rounding=config.quant.rounding,
                       fold=a.fold if fold is None else fold,
                       order=a.taylor_order if order is None else order)


def label(table: PolyTable) -> str:
    """``"pwl"``, ``"taylor2"``, ...: the method, with the order for Taylor."""
    return variant_name(table.method, table.degree)


def report(table: PolyTable) -> dict:
    """Error and cost of ``table``: plain values, ready to print or to serialise."""
    max_abs, mean_abs = table.errors()
    return {
        "fn": table.fn,
        "method": table.method,
        "order": table.degree if table.method == "taylor" else None,
        "label": label(table),
        "segments": table.segments,
        "fold": table.fold,
        "range": table.range_codes * table.in_fmt.lsb,
        "in_fmt": str(table.in_fmt),
        "out_fmt": str(table.out_fmt),
        "max_abs_error": max_abs,
        "mean_abs_error": mean_abs,
        "max_error_lsb": max_abs / table.out_fmt.lsb,
        "multipliers": table.multipliers,
        "table_bits": table.table_bits,
        "coef_widths": list(table.coef_widths),
    }


def format_report(rep: dict) -> str:
    method = f"taylor (order {rep['order']})" if rep["order"] is not None else rep["method"]
    widths = " + ".join(str(w) for w in rep["coef_widths"])
    lines = [
        ("function", rep["fn"]),
        ("method", method),
        ("segments", f"{rep['segments']} ({'folded: |x| < range' if rep['fold'] else 'unfolded'})"),
        ("range", f"[-{rep['range']:g}, {rep['range']:g})"),
        ("input", rep["in_fmt"]),
        ("output", rep["out_fmt"]),
        ("max abs error", f"{rep['max_abs_error']:.6e} ({rep['max_error_lsb']:.2f} LSB)"),
        ("mean abs error", f"{rep['mean_abs_error']:.6e}"),
        ("multipliers", str(rep["multipliers"])),
        ("table bits", f"{rep['table_bits']} ({rep['segments']} x ({widths}) coefficient bits)"),
    ]
    return "\n".join(f"{name:<15} {value}" for name, value in lines)


def sweep(config: Config, fns=FUNCTION_NAMES, variants=VARIANTS, segments=SWEEP_SEGMENTS, *,
          fold: bool | None = None) -> list[dict]:
    """:func:`report` of every (fn, variant, segments) the input format can split into power-of-two spans."""
    rows = []
    for fn in fns:
        for method, order in variants:
            for s in segments:
                try:
                    table = build(config, fn, method, s, order=order, fold=fold)
                except ConfigError as e:
                    if e.path != "activation.segments":
                        raise
                    continue
                rows.append(report(table))
    return rows


def format_sweep(rows: list[dict], max_error: float = 1e-3) -> str:
    """A Markdown table of ``rows``; ✓ marks those whose max abs error is at most ``max_error``."""
    head = ["fn", "method", "segments", "max abs error", "mean abs error", "multipliers", "table bits",
            f"≤ {max_error:g}"]
    body = [[r["fn"], r["label"], str(r["segments"]), f"{r['max_abs_error']:.3e}", f"{r['mean_abs_error']:.3e}",
             str(r["multipliers"]), str(r["table_bits"]), "✓" if r["max_abs_error"] <= max_error else ""]
            for r in rows]
    right = [False, False] + [True] * 5 + [False]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right)) + "|"
    return "\n".join([line(head), rule, *(line(row) for row in body)])


def plot_name(rep: dict) -> str:
    """Default file name of the plot: ``approx_<fn>_<method>_<segments>.png``."""
    return f"approx_{rep['fn']}_{rep['label']}_{rep['segments']}.png"


def plot_png(table: PolyTable) -> bytes:
    """A PNG of ``fn`` and ``table`` over the range and a bit beyond it (top) and of their difference (bottom).

    Deterministic: fixed size and resolution, matplotlib's default style
    whatever the user's matplotlibrc, and no software or date in the metadata.
    """
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    in_fmt, out_fmt, f = table.in_fmt, table.out_fmt, FUNCTIONS[table.fn]
    codes = in_fmt.codes()
    err = out_fmt.to_real(table.eval(codes)) - f(in_fmt.to_real(codes))
    worst = int(np.argmax(np.abs(err)))
    worst_x, worst_err = float(in_fmt.to_real(codes[worst])), float(err[worst])

    # The window: the table range plus a margin of saturated tail, widened to
    # show the worst code wherever it lies. Wide windows are drawn in bins:
    # the function by each bin's first code, the error as each bin's min-max
    # band, so no code's error is lost.
    margin = int(table.range_codes * (1 + _PLOT_MARGIN))
    lo = max(in_fmt.min_int, min(-margin, worst + in_fmt.min_int))
    hi = min(in_fmt.max_int, max(margin, worst + in_fmt.min_int))
    window = slice(lo - in_fmt.min_int, hi - in_fmt.min_int + 1)
    per_bin = -(-(hi - lo + 1) // _PLOT_POINTS)
    pad = -(hi - lo + 1) % per_bin
    binned = np.pad(err[window], (0, pad), mode="edge").reshape(-1, per_bin)
    starts = codes[window][::per_bin]
    x = in_fmt.to_real(starts)
    edge = table.range_codes * in_fmt.lsb

    method = f"taylor order {table.degree}" if table.method == "taylor" else table.method
    with matplotlib.style.context("default"):
        fig = Figure(figsize=_PLOT_SIZE, dpi=_PLOT_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(x, f(x), color="0.6", linewidth=3, label=f"{table.fn} (float64)")
        top.step(x, out_fmt.to_real(table.eval(starts)), where="post", color="C0", linewidth=1,
                 label="approximation")
        top.set_ylabel(table.fn)
        top.set_title(f"{table.fn}: {method}, {table.segments} segments{'' if table.fold else ' (unfolded)'}, "
                      f"{in_fmt} → {out_fmt}")
        top.legend(loc="upper left")
        bottom.fill_between(x, binned.min(axis=1), binned.max(axis=1), step="post", color="C0", linewidth=0.6)
        bottom.plot([worst_x], [worst_err], "o", color="C3")
        bottom.axhline(0, color="0.6", linewidth=0.8)
        bottom.set_title(f"max |error| {abs(worst_err):.3e} ({abs(worst_err) / out_fmt.lsb:.2f} LSB) "
                         f"at x = {worst_x:g}", color="C3")
        bottom.set_xlabel("x")
        bottom.set_ylabel("approximation − exact")
        for ax in (top, bottom):
            for v in (-edge, edge):
                ax.axvline(v, color="0.3", linestyle="--", linewidth=0.8)
            ax.grid(True, linewidth=0.3)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_PLOT_DPI, metadata={"Software": None})
    return buf.getvalue()


def plot(table: PolyTable, path: str | Path) -> Path:
    """Write :func:`plot_png` of ``table`` to ``path`` atomically (a temporary file, then a rename)."""
    from ..compression.plots import check_path, write_png
    check_path(path)  # before the slow part
    return write_png(path, plot_png(table))
