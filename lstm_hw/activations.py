"""Sigmoid and tanh by LUT-plus-linear (piecewise linear) tables.

The same :class:`PWLTable` feeds the golden model (:meth:`PWLTable.eval`) and
the Amaranth unit (:mod:`lstm_hw.generators.activation`), so the two agree bit
for bit by construction. Evaluation of an input code ``x``::

    ax   = |x|                               (fold: both functions are odd-symmetric)
    seg  = ax >> seg_shift                   (segment index, top bits of ax)
    dx   = ax & (2**seg_shift - 1)           (offset inside the segment, unsigned)
    yp   = intercept[seg] + round(slope[seg] * dx >> slope_shift)   if ax < range_codes
         = sat_value                                                  otherwise
    yp   = clamp(yp, 0, one)                 (both functions lie in [0, 1] for x >= 0)
    y    = one - yp  (sigmoid, x < 0)   or   -yp  (tanh, x < 0)   or   yp  (x >= 0)

``one`` is the output code of 1.0. The slope of each segment is its chord; the
intercept is then the exact minimax offset over every input code of the
segment, with the slope already quantized and the product already rounded.
``sat_value`` is the minimax constant over the saturated tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .numerics import Fixed, round_shift, saturate

__all__ = ["FUNCTIONS", "PWLTable", "build_pwl"]

FUNCTIONS = {
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),  # overflow-free logistic
    "tanh": np.tanh,
}
# Most points used to fit one segment: wide input formats are subsampled, the
# measured error (``max_abs_error``) always covers every code.
_FIT_POINTS = 1 << 12


@dataclass(frozen=True, eq=False)
class PWLTable:
    """A folded piecewise-linear approximation of ``fn`` from ``in_fmt`` to ``out_fmt``."""

    fn: str
    in_fmt: Fixed
    out_fmt: Fixed
    segments: int
    range_codes: int
    seg_shift: int
    slope: np.ndarray       # int64 (segments,), signed, ``coef_bits`` wide
    slope_shift: int
    intercept: np.ndarray   # int64 (segments,), in out_fmt
    sat_value: int
    coef_bits: int
    rounding: str

    @property
    def one(self) -> int:
        return 1 << self.out_fmt.frac

    @property
    def slope_fmt(self) -> Fixed:
        return Fixed(self.coef_bits, 0)

    @property
    def dx_bits(self) -> int:
        return max(1, self.seg_shift)

    def eval(self, x):
        """Bit-exact output code(s) for input code(s) ``x``."""
        x = np.asarray(x, dtype=np.int64)
        neg = x < 0
        ax = np.where(neg, -x, x)
        inside = ax < self.range_codes
        seg = np.minimum(ax >> self.seg_shift, self.segments - 1)
        dx = ax & ((1 << self.seg_shift) - 1)
        yp = self.intercept[seg] + round_shift(self.slope[seg] * dx, self.slope_shift, self.rounding)
        yp = np.clip(np.where(inside, yp, self.sat_value), 0, self.one)
        if self.fn == "sigmoid":
            y = np.where(neg, self.one - yp, yp)
        else:
            y = np.where(neg, -yp, yp)
        return saturate(y, self.out_fmt)

    def max_abs_error(self) -> tuple[float, float]:
        """(max, mean) absolute error over every input code, against float64."""
        codes = self.in_fmt.codes()
        err = np.abs(self.out_fmt.to_real(self.eval(codes)) - FUNCTIONS[self.fn](self.in_fmt.to_real(codes)))
        return float(err.max()), float(err.mean())


def build_pwl(fn: str, *, in_fmt: Fixed, out_fmt: Fixed, segments: int, range_real: float,
              coef_bits: int, rounding: str) -> PWLTable:
    """Fit the table of ``fn`` over ``|x| < range_real`` (a power of two) in ``segments`` pieces."""
    if fn not in FUNCTIONS:
        raise ValueError(f"unknown function {fn!r}")
    f = FUNCTIONS[fn]
    range_codes = int(np.ldexp(range_real, in_fmt.frac))
    seg_width = range_codes // segments
    if seg_width < 1 or seg_width * segments != range_codes or seg_width & (seg_width - 1):
        raise ConfigError("activation.segments",
                          f"{segments} segments do not split {range_real:g} of {in_fmt} into power-of-two spans")
    seg_shift = seg_width.bit_length() - 1

    x0 = np.arange(segments, dtype=np.float64) * seg_width
    chord = (f(in_fmt.to_real(x0 + seg_width)) - f(in_fmt.to_real(x0))) / seg_width  # real per input code
    scaled = chord * 2.0 ** out_fmt.frac                                                # out codes per input code
    coef_max = (1 << (coef_bits - 1)) - 1
    peak = float(np.max(np.abs(scaled)))
    slope_shift = int(np.floor(np.log2(coef_max / peak))) if peak > 0 else 0
    if slope_shift < 0:
        raise ConfigError("activation.coef_bits",
                          f"{coef_bits} bits cannot hold the {fn} slope from {in_fmt} to {out_fmt}")
    slope = np.clip(np.floor(scaled * 2.0 ** slope_shift + 0.5), -coef_max, coef_max).astype(np.int64)

    stride = max(1, seg_width // _FIT_POINTS)
    dx = np.concatenate([np.arange(0, seg_width, stride), [seg_width - 1]]).astype(np.int64)
    lin = round_shift(slope[:, None] * dx[None, :], slope_shift, rounding)          # (segments, points)
    target = f(in_fmt.to_real(x0[:, None] + dx[None, :])) * 2.0 ** out_fmt.frac
    resid = target - lin
    intercept = np.floor((resid.max(axis=1) + resid.min(axis=1)) / 2 + 0.5).astype(np.int64)
    intercept = saturate(intercept, out_fmt)

    tail = (f(range_real) + f(in_fmt.max_real + in_fmt.lsb)) / 2
    sat_value = int(saturate(np.floor(tail * 2.0 ** out_fmt.frac + 0.5), out_fmt))
    return PWLTable(fn=fn, in_fmt=in_fmt, out_fmt=out_fmt, segments=segments, range_codes=range_codes,
                    seg_shift=seg_shift, slope=slope, slope_shift=slope_shift, intercept=intercept,
                    sat_value=sat_value, coef_bits=coef_bits, rounding=rounding)
