"""The elementwise LSTM cell update, bit-exact, shared by the golden model and its tests.

With ``nf`` the fraction bits of the sigmoid/tanh outputs and ``cf`` those of
the cell state::

    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)      (nonlin format)
    g       = tanh(z_g)                                       (nonlin format)
    c_t     = sat_cell(round(f * c_{t-1} * 2**a + i * g * 2**b))  one rounding, a + b aligned
    h_t     = sat_act(round(o * tanh(c_t)))

Both products are exact; they are aligned on ``max(nf + cf, 2 nf)`` fraction
bits, summed exactly, and rounded once into the cell format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import PolyTable, build_table, choose_auto
from ..config.schema import Config
from .fixed import Fixed, round_shift, saturate

__all__ = ["ActivationTables", "CellMath", "cell_update"]


@dataclass(frozen=True, eq=False)
class ActivationTables:
    """The three tables of a layer: gate sigmoid, gate tanh (on pre-activations) and cell tanh.

    All three use one method and segment count: the configured ones, or with
    ``method = "auto"`` the cheapest that keeps every table within
    ``max_error`` (:func:`lstm_hw.numerics.activations.choose_auto`); ``auto`` records that.
    """

    sigmoid: PolyTable
    tanh_gate: PolyTable
    tanh_cell: PolyTable
    auto: bool = False

    @classmethod
    def from_config(cls, config: Config) -> "ActivationTables":
        q, a = config.quant, config.activation
        specs = (("sigmoid", q.preact, a.sigmoid_range), ("tanh", q.preact, a.tanh_range),
                 ("tanh", q.cell, a.tanh_range))
        common = dict(out_fmt=q.nonlin, coef_bits=a.coef_bits, rounding=q.rounding, fold=a.fold)
        if a.method == "auto":
            *_, tables = choose_auto(specs, max_error=a.max_error, **common)
            return cls(*tables, auto=True)
        return cls(*(build_table(fn, a.method, in_fmt=fmt, range_real=rng, segments=a.segments,
                                 order=a.taylor_order, **common) for fn, fmt, rng in specs))

    @property
    def method(self) -> str:
        return self.sigmoid.method

    def describe(self) -> dict:
        """Method, segments, cost and measured errors, for the metadata."""
        t = self.sigmoid
        out = {"method": t.method, "segments": t.segments, "fold": t.fold,
               "multipliers_per_unit": t.multipliers, "chosen_by": "auto" if self.auto else "config"}
        if t.method == "taylor":
            out["taylor_order"] = t.degree
        for key in ("sigmoid", "tanh_gate", "tanh_cell"):
            table = getattr(self, key)
            mx, mean = table.errors()
            out[key] = {"max_abs_error": mx, "mean_abs_error": mean, "input": str(table.in_fmt),
                        "range": table.range_codes * table.in_fmt.lsb, "table_bits": table.table_bits,
                        "coef_widths": list(table.coef_widths)}
        return out


@dataclass(frozen=True)
class CellMath:
    """Formats and alignment shifts of the cell update, derived once from the config."""

    nonlin: Fixed
    cell: Fixed
    activation: Fixed
    rounding: str

    @classmethod
    def from_config(cls, config: Config) -> "CellMath":
        q = config.quant
        return cls(nonlin=q.nonlin, cell=q.cell, activation=q.activation, rounding=q.rounding)

    @property
    def sum_frac(self) -> int:
        """Fraction bits of the exact sum f*c + i*g."""
        return max(self.nonlin.frac + self.cell.frac, 2 * self.nonlin.frac)

    @property
    def fc_shift(self) -> int:
        return self.sum_frac - (self.nonlin.frac + self.cell.frac)

    @property
    def ig_shift(self) -> int:
        return self.sum_frac - 2 * self.nonlin.frac

    @property
    def c_shift(self) -> int:
        """Fraction bits that rounding the sum into ``c_t`` drops."""
        return self.sum_frac - self.cell.frac

    @property
    def h_shift(self) -> int:
        """Fraction bits that rounding ``o * tanh(c_t)`` (``2 nf`` fraction bits) into ``h_t`` drops."""
        return 2 * self.nonlin.frac - self.activation.frac

    @property
    def sum_bits(self) -> int:
        """Width that holds f*c*2**fc_shift + i*g*2**ig_shift without overflow."""
        fc = self.nonlin.bits + self.cell.bits + self.fc_shift
        ig = 2 * self.nonlin.bits + self.ig_shift
        return max(fc, ig) + 1


def cell_update(z_i, z_f, z_g, z_o, c_prev, tables: ActivationTables, m: CellMath):
    """Return ``(c_t, h_t)`` codes from pre-activation codes and the previous cell codes."""
    i = tables.sigmoid.eval(z_i)
    f = tables.sigmoid.eval(z_f)
    g = tables.tanh_gate.eval(z_g)
    o = tables.sigmoid.eval(z_o)
    total = ((f * np.asarray(c_prev, dtype=np.int64)) << m.fc_shift) + ((i * g) << m.ig_shift)
    c = saturate(round_shift(total, m.c_shift, m.rounding), m.cell)
    h = saturate(round_shift(o * tables.tanh_cell.eval(c), m.h_shift, m.rounding), m.activation)
    return c, h
