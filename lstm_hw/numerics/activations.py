"""Sigmoid and tanh by table: LUT, LUT-plus-linear, second-order and Taylor, one form for all.

Every method is a polynomial per segment of the input range, evaluated by
Horner's rule in exact integer arithmetic with one rounding per step
(:class:`PolyTable`, see its docstring for the evaluation). The same table
object feeds the golden model (:meth:`PolyTable.eval`) and the Amaranth unit
(:mod:`lstm_hw.generators.activation`), so the two agree bit for bit by
construction. :func:`build_table` fits a table for one method;
:func:`choose_auto` picks the cheapest method and size that meets an error
bound over every input code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .fixed import Fixed, round_shift, saturate, signed_bits

__all__ = ["FUNCTIONS", "METHODS", "VARIANTS", "PolyTable", "build_table", "choose_auto",
           "variant_name"]

FUNCTIONS = {
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),  # overflow-free logistic
    "tanh": np.tanh,
}
# Most points used to fit one segment: wide input formats are subsampled, the
# measured error (:meth:`PolyTable.errors`) always covers every code.
_FIT_POINTS = 1 << 12


METHODS = ("lut", "pwl", "quadratic", "taylor")
#: Multipliers (Horner steps) of each method; Taylor's is its order.
_DEGREE = {"lut": 0, "pwl": 1, "quadratic": 2}


@dataclass(frozen=True, eq=False)
class PolyTable:
    """A piecewise-polynomial approximation of sigmoid or tanh from ``in_fmt`` to ``out_fmt``.

    Every method is this one form, so one golden function and one hardware
    unit serve all of them. For an input code ``x``::

        u      = |x|                  if fold  (sigmoid(-x) = 1 - sigmoid(x), tanh odd)
               = x + range_codes      otherwise (the table spans [-range, range))
        inside = u < span             (span = range_codes folded, 2 * range_codes otherwise;
                                       unfolded, also u >= 0)
        seg    = min(u >> seg_shift, segments - 1)
        t      = (u & (2**seg_shift - 1)) - centre                  (signed for Taylor)
        acc    = coefs[seg, d]
        acc    = round_shift(acc * t, shifts[j - 1]) + coefs[seg, j - 1]   for j = d .. 1
        y      = round_shift(acc, out_shift)
        y      = sat_hi beyond the range (sat_lo below it, unfolded), then clamped to
                 [0, one] folded or [lo, one] unfolded (lo = 0 sigmoid, -one tanh)
        y      = one - y (sigmoid) or -y (tanh) where x < 0, folded
        y      = saturate(y, out_fmt)

    ``round_shift`` rounds with ``rounding`` (a negative shift is an exact left
    shift). ``coefs[:, j]`` is the coefficient of ``t**j`` scaled by
    ``2**scales[j]`` output codes, so ``shifts[j - 1] = scales[j] - scales[j - 1]``
    and ``out_shift = scales[0]``.
    """

    fn: str
    method: str
    in_fmt: Fixed
    out_fmt: Fixed
    segments: int
    range_codes: int
    seg_shift: int
    fold: bool
    centre: int
    coefs: np.ndarray       # int64 (segments, degree + 1)
    scales: tuple           # per coefficient: its scale exponent (output codes x 2**scale)
    sat_lo: int
    sat_hi: int
    coef_bits: int
    rounding: str

    @property
    def degree(self) -> int:
        return self.coefs.shape[1] - 1

    @property
    def multipliers(self) -> int:
        return self.degree

    @property
    def shifts(self) -> tuple:
        return tuple(self.scales[j] - self.scales[j - 1] for j in range(1, self.degree + 1))

    @property
    def out_shift(self) -> int:
        return self.scales[0]

    @property
    def one(self) -> int:
        return 1 << self.out_fmt.frac

    @property
    def span(self) -> int:
        """Input codes the table covers, from ``u = 0``."""
        return self.range_codes if self.fold else 2 * self.range_codes

    @property
    def lo(self) -> int:
        """Smallest output before the sign is restored."""
        return 0 if self.fold or self.fn == "sigmoid" else -self.one

    @property
    def mirror(self) -> int:
        """A folded table's output for ``x < 0`` is ``mirror - y``: ``sigmoid(-x) = 1 - sigmoid(x)``, ``tanh``
        odd. 0 for an unfolded table, which restores no sign."""
        return self.one if self.fold and self.fn == "sigmoid" else 0

    @property
    def coef_widths(self) -> tuple:
        """Signed bits each coefficient column needs."""
        return tuple(signed_bits(int(col.min()), int(col.max())) for col in self.coefs.T)

    @property
    def table_bits(self) -> int:
        return self.segments * sum(self.coef_widths)

    @property
    def t_bits(self) -> int:
        """Signed width of ``t``."""
        return self.seg_shift + 1

    def horner(self, x) -> tuple[np.ndarray, list]:
        """``(y_before_saturation_and_sign, stages)`` for codes ``x`` inside the range.

        ``stages`` lists, per Horner step, ``(product, acc)``: the exact values
        the hardware registers hold, for sizing them.
        """
        u, _ = self._fold(np.asarray(x, dtype=np.int64))
        seg = np.minimum(u >> self.seg_shift, self.segments - 1)
        t = (u & ((1 << self.seg_shift) - 1)) - self.centre
        acc = self.coefs[seg, self.degree]
        stages = []
        for j in range(self.degree, 0, -1):
            product = acc * t
            acc = round_shift(product, self.shifts[j - 1], self.rounding) + self.coefs[seg, j - 1]
            stages.append((product, acc))
        return round_shift(acc, self.out_shift, self.rounding), stages

    def _fold(self, x):
        if self.fold:
            neg = x < 0
            return np.where(neg, -x, x), neg
        return x + self.range_codes, np.zeros(x.shape, dtype=bool)

    def eval(self, x):
        """Bit-exact output code(s) for input code(s) ``x``."""
        x = np.asarray(x, dtype=np.int64)
        u, neg = self._fold(x)
        inside = (u >= 0) & (u < self.span)
        y, _ = self.horner(np.where(inside, x, 0 if self.fold else -self.range_codes))
        y = np.where(inside, y, np.where(u < 0, self.sat_lo, self.sat_hi))
        y = np.clip(y, self.lo, self.one)
        return saturate(np.where(neg, self.mirror - y, y), self.out_fmt)

    def errors(self) -> tuple[float, float]:
        """(max, mean) absolute error over every input code, against float64."""
        codes = self.in_fmt.codes()
        err = np.abs(self.out_fmt.to_real(self.eval(codes)) - FUNCTIONS[self.fn](self.in_fmt.to_real(codes)))
        return float(err.max()), float(err.mean())

    def cost(self) -> dict:
        return {"multipliers": self.multipliers, "table_bits": self.table_bits, "segments": self.segments}


def _derivatives(fn: str, c: np.ndarray, order: int) -> list[np.ndarray]:
    """``f(c), f'(c), ..., f^(order)(c)`` in closed form."""
    if fn == "sigmoid":
        s = FUNCTIONS["sigmoid"](c)
        d1 = s * (1 - s)
        return [s, d1, d1 * (1 - 2 * s), d1 * (1 - 6 * s + 6 * s * s)][:order + 1]
    t = np.tanh(c)
    d1 = 1 - t * t
    return [t, d1, -2 * t * d1, -2 * d1 * (1 - 3 * t * t)][:order + 1]


def _scale_for(values: np.ndarray, coef_bits: int) -> int:
    """Largest exponent ``e`` with ``round(values * 2**e)`` inside ``coef_bits`` signed bits."""
    coef_max = (1 << (coef_bits - 1)) - 1
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if peak == 0:
        return 0
    e = int(np.floor(np.log2(coef_max / peak)))
    while np.max(np.abs(np.floor(values * 2.0 ** e + 0.5))) > coef_max:
        e -= 1
    return e


def build_table(fn: str, method: str, *, in_fmt: Fixed, out_fmt: Fixed, segments: int, range_real: float,
                coef_bits: int, rounding: str, fold: bool = True, order: int = 2) -> PolyTable:
    """Fit ``fn`` over ``[-range_real, range_real)`` (folded: ``|x| < range_real``) with ``method``.

    * ``lut``: one output per segment, the minimax constant of the segment.
    * ``pwl``: chord slope per segment, then the minimax intercept.
    * ``quadratic``: least-squares parabola per segment, then the minimax constant term.
    * ``taylor``: Taylor expansion of order ``order`` about each segment's centre code.

    Coefficients are rounded to ``coef_bits`` (one scale per column), and the
    constant terms of ``lut``, ``pwl`` and ``quadratic`` are re-fitted after
    that, with the exact integer arithmetic of :meth:`PolyTable.horner`, so the
    fit accounts for every rounding.
    """
    if fn not in FUNCTIONS:
        raise ValueError(f"unknown function {fn!r}")
    if method not in METHODS:
        raise ConfigError("activation.method", f"unknown method {method!r} (expected one of: {', '.join(METHODS)})")
    if method == "taylor" and order not in (1, 2, 3):
        raise ConfigError("activation.taylor_order", f"must be 1, 2 or 3, got {order}")
    if segments < 1 or segments & (segments - 1):
        raise ConfigError("activation.segments", f"must be a power of two, got {segments}")
    f = FUNCTIONS[fn]
    range_codes = int(np.ldexp(range_real, in_fmt.frac))
    span = range_codes if fold else 2 * range_codes
    seg_width = span // segments
    if seg_width < 1 or seg_width * segments != span:
        raise ConfigError("activation.segments",
                          f"{segments} segments do not split {span} codes of {in_fmt} into power-of-two spans")
    seg_shift = seg_width.bit_length() - 1
    degree = order if method == "taylor" else _DEGREE[method]
    centre = seg_width // 2 if method == "taylor" else 0
    base = 0 if fold else -range_codes                        # input code of u = 0
    x0 = base + np.arange(segments, dtype=np.int64) * seg_width
    scale_out = 2.0 ** out_fmt.frac
    coef_max = (1 << (coef_bits - 1)) - 1
    # Constant term: guard bits below the output LSB when several products are
    # rounded before it (degree 2 and 3), as many as ``coef_bits`` leaves room for.
    guard = max(0, coef_bits - 2 - out_fmt.frac) if degree > 1 else 0

    stride = max(1, seg_width // _FIT_POINTS)
    dx = np.unique(np.concatenate([np.arange(0, seg_width, stride), [seg_width - 1]])).astype(np.int64)
    t = dx - centre
    target = f(in_fmt.to_real(x0[:, None] + dx[None, :])) * scale_out            # (segments, points), out codes

    real = np.zeros((segments, degree + 1))                                      # per t**j, out codes
    if method == "pwl":
        ends = f(in_fmt.to_real(np.stack([x0, x0 + seg_width])))
        real[:, 1] = (ends[1] - ends[0]) / seg_width * scale_out
    elif method == "quadratic":
        vander = np.vander(t.astype(np.float64), 3, increasing=True)          # (points, 3)
        sol, *_ = np.linalg.lstsq(vander, target.T, rcond=None)
        real[:, 1:] = sol[1:].T
    elif method == "taylor":
        lsb = in_fmt.lsb
        derivs = _derivatives(fn, in_fmt.to_real(x0 + centre), degree)
        for j in range(degree + 1):
            real[:, j] = derivs[j] * lsb ** j / math.factorial(j) * scale_out

    scales = [guard] + [_scale_for(real[:, j], coef_bits) for j in range(1, degree + 1)]
    coefs = np.zeros((segments, degree + 1), dtype=np.int64)
    for j in range(1, degree + 1):
        coefs[:, j] = np.clip(np.floor(real[:, j] * 2.0 ** scales[j] + 0.5), -coef_max, coef_max)
    if method == "taylor":
        coefs[:, 0] = np.floor(real[:, 0] * 2.0 ** guard + 0.5)
    else:
        # Minimax constant term over the points, given the rounded higher terms.
        probe = PolyTable(fn=fn, method=method, in_fmt=in_fmt, out_fmt=out_fmt, segments=segments,
                          range_codes=range_codes, seg_shift=seg_shift, fold=fold, centre=centre, coefs=coefs,
                          scales=tuple(scales), sat_lo=0, sat_hi=0, coef_bits=coef_bits, rounding=rounding)
        _, stages = probe.horner(x0[:, None] + dx[None, :])
        higher = stages[-1][1] if stages else np.zeros_like(target)             # acc with a zero constant
        resid = target * 2.0 ** guard - higher
        coefs[:, 0] = np.floor((resid.max(axis=1) + resid.min(axis=1)) / 2 + 0.5)
    lo_out = 0 if (fold or fn == "sigmoid") else -(1 << out_fmt.frac)
    coefs[:, 0] = np.clip(coefs[:, 0], (lo_out - 1) << guard, ((1 << out_fmt.frac) + 1) << guard)

    hi_tail = (f(range_real) + f(in_fmt.max_real + in_fmt.lsb)) / 2
    lo_tail = (f(-range_real - in_fmt.lsb) + f(in_fmt.min_real)) / 2
    sat_hi = int(saturate(np.floor(hi_tail * scale_out + 0.5), out_fmt))
    sat_lo = int(saturate(np.floor(lo_tail * scale_out + 0.5), out_fmt))
    return PolyTable(fn=fn, method=method, in_fmt=in_fmt, out_fmt=out_fmt, segments=segments,
                     range_codes=range_codes, seg_shift=seg_shift, fold=fold, centre=centre, coefs=coefs,
                     scales=tuple(scales), sat_lo=sat_lo, sat_hi=sat_hi, coef_bits=coef_bits, rounding=rounding)


#: The variants ``auto`` considers: (method, Taylor order).
VARIANTS = (("lut", 2), ("pwl", 2), ("quadratic", 2), ("taylor", 1), ("taylor", 2), ("taylor", 3))
#: Largest table ``auto`` tries.
MAX_SEGMENTS = 4096


def variant_name(method: str, order: int) -> str:
    return f"taylor{order}" if method == "taylor" else method


def choose_auto(specs, *, out_fmt: Fixed, coef_bits: int, rounding: str, fold: bool, max_error: float):
    """The cheapest ``(method, order, segments)`` whose tables all meet ``max_error``.

    ``specs`` lists ``(fn, in_fmt, range_real)`` for every table the design
    needs. For each variant the segment count doubles from 1 until every
    table's maximum absolute error, measured over every input code, is within
    the bound; among those, the cheapest wins: fewest multipliers, then fewest
    table bits (summed over the tables), then the smaller error. Returns
    ``(method, order, segments, tables)``; raises :class:`ConfigError` when no
    variant meets the bound with up to :data:`MAX_SEGMENTS` segments.
    """
    found = []
    best_miss = None
    for method, order in VARIANTS:
        segments = 1
        while segments <= MAX_SEGMENTS:
            try:
                tables = [build_table(fn, method, in_fmt=fmt, out_fmt=out_fmt, segments=segments,
                                      range_real=rng, coef_bits=coef_bits, rounding=rounding, fold=fold,
                                      order=order) for fn, fmt, rng in specs]
            except ConfigError:
                break  # more segments than the input codes allow
            worst = max(t.errors()[0] for t in tables)
            if worst <= max_error:
                cost = (tables[0].multipliers, sum(t.table_bits for t in tables), worst)
                found.append((cost, method, order, segments, tables))
                break
            if best_miss is None or worst < best_miss[0]:
                best_miss = (worst, variant_name(method, order), segments)
            segments *= 2
    if not found:
        detail = f" (best: {best_miss[1]} with {best_miss[2]} segments, {best_miss[0]:.2e})" if best_miss else ""
        raise ConfigError("activation.max_error",
                          f"no method meets {max_error:g} with up to {MAX_SEGMENTS} segments{detail}; "
                          f"widen the ranges or the output format")
    _, method, order, segments, tables = min(found, key=lambda f: f[0])
    return method, order, segments, tables
