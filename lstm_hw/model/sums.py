"""How wide a matrix unit's gate sums are: the one place that sizes them, for the generators and the checks.

A gate sum is a row's products, its bias aligned to the product format
(``bias_shift``) and the rounding offset that lets the output stage drop bits
(:func:`sum_offset`). Every accumulator, adder-tree node and partial sum of a
matrix unit is :func:`gate_sum_bits` wide and wraps modulo its power of two,
so only the whole sum must fit.

- ``hardware.weights = "rom"``: as wide as these weights need with every input
  anywhere in the activation format (:func:`exact_sum_bits`).
- ``"ram"``: as wide as any weights of the formats need (:func:`format_sum_bits`),
  so a loaded model never overflows them; or ``hardware.sum_bits`` where that
  is narrower.
- With ``hardware.sum_bits``, weights that could need more are refused
  (:func:`check_sum_bits`). What they need (:func:`need_sum_bits`) takes the
  inputs as they come: layer 0's ``x`` anywhere in the activation format,
  every ``h`` within ``[-1, 1]`` (:func:`input_ranges`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..numerics.fixed import rounding_offset, signed_bits

__all__ = ["h_codes", "input_ranges", "round_bits", "sum_offset", "start_range", "exact_sum_bits",
           "need_sum_bits", "format_sum_bits", "gate_sum_bits", "check_sum_bits"]


def h_codes(activation) -> tuple[int, int]:
    """The codes an ``h = o tanh(c)`` takes in ``activation``: ``|h| <= 1``, so at most the code of 1.0 (or of
    the next step up, with negative fraction bits), within the format."""
    one = 1 << max(activation.frac, 0)
    return max(activation.min_int, -one), min(activation.max_int, one)


def input_ranges(plan, quant) -> tuple[tuple[int, int], tuple[int, int]]:
    """The least and greatest code of ``plan``'s ``x`` and of its ``h``: layer 0's ``x`` may be anything the
    activation format holds; every ``h`` (the recurrent input, and the ``x`` of later layers and of the head) is
    ``o tanh(c)``, within ``[-1, 1]`` (:func:`h_codes`)."""
    a = quant.activation
    h = h_codes(a)
    return ((a.min_int, a.max_int) if plan.index == 0 else h), h        # (the head's index is past 0)


def round_bits(quant) -> int:
    """Low bits of a gate sum that rounding to the pre-activation format drops."""
    return max(0, quant.product.frac - quant.preact.frac)


def sum_offset(quant) -> int:
    """The rounding constant every gate sum starts with, besides its bias, so the output stage only drops bits."""
    return rounding_offset(quant.product.frac - quant.preact.frac, quant.rounding)


def start_range(quant) -> tuple[int, int]:
    """The start values any bias of the bias format gives: aligned, plus the rounding offset."""
    b, shift, offset = quant.bias_format, quant.bias_shift, sum_offset(quant)
    return (b.min_int << shift) + offset, (b.max_int << shift) + offset


def _bits(plan, quant, lo: int, hi: int) -> int:
    """Signed bits for sums in ``[lo, hi]`` and the offset alone (a padding row's sum); at least one bit above
    the ones a head's output stage drops, should every weight and bias be zero."""
    offset = sum_offset(quant)
    return max(signed_bits(min(lo, offset), max(hi, offset)), (0 if plan.k_h else round_bits(quant)) + 1)


def _weights_bits(plan, quant, lo_in, hi_in) -> int:
    """The widest any row's sum of ``plan``'s own weights and biases can be with column ``j``'s input within
    ``[lo_in[j], hi_in[j]]``."""
    w = np.asarray(plan.w, dtype=np.int64)
    ends = np.stack([w * np.asarray(lo_in, dtype=np.int64), w * np.asarray(hi_in, dtype=np.int64)])
    start = (np.asarray(plan.b, dtype=np.int64) << quant.bias_shift) + sum_offset(quant)
    lo = ends.min(axis=0).sum(axis=1) + start
    hi = ends.max(axis=0).sum(axis=1) + start
    return _bits(plan, quant, int(lo.min()), int(hi.max()))


def exact_sum_bits(plan, quant) -> int:
    """The width of a ``"rom"`` unit's sums: the widest any row's sum of ``plan``'s own weights and biases can
    be, over every input the activation format holds; bounds from the stored weights themselves, not from the
    weight format."""
    a = quant.activation
    return _weights_bits(plan, quant, np.full(plan.columns, a.min_int), np.full(plan.columns, a.max_int))


def need_sum_bits(plan, quant) -> int:
    """What ``plan``'s own weights and biases need of a sum, with the inputs as they come (:func:`input_ranges`):
    at most :func:`exact_sum_bits` and :func:`format_sum_bits`; what ``hardware.sum_bits`` must hold."""
    (x_lo, x_hi), (h_lo, h_hi) = input_ranges(plan, quant)
    n_h = plan.columns - plan.input_size
    return _weights_bits(plan, quant, np.r_[np.full(plan.input_size, x_lo), np.full(n_h, h_lo)],
                         np.r_[np.full(plan.input_size, x_hi), np.full(n_h, h_hi)])


def format_sum_bits(plan, quant) -> int:
    """The widest a row's sum can be for any weights and biases of the formats, with the inputs as they come
    (:func:`input_ranges`): every stored weight of the row at whichever end of the weight format gives the
    widest sum, times whichever input does."""
    w = quant.weight
    (x_lo, x_hi), (h_lo, h_hi) = input_ranges(plan, quant)

    def ends(lo, hi):
        products = [x * y for x in (w.min_int, w.max_int) for y in (lo, hi)]
        return min(products), max(products)

    x_ends, h_ends = ends(x_lo, x_hi), ends(h_lo, h_hi)
    n_x, n_h = plan.banks * plan.k_x, plan.banks * plan.k_h       # stored weights of a row in each phase
    start_lo, start_hi = start_range(quant)
    return _bits(plan, quant, n_x * x_ends[0] + n_h * h_ends[0] + start_lo,
                 n_x * x_ends[1] + n_h * h_ends[1] + start_hi)


def gate_sum_bits(plan, quant, *, writable: bool, most: int = 0) -> int:
    """The width of ``plan``'s gate sums in hardware: :func:`exact_sum_bits` for ROM contents, and
    :func:`format_sum_bits` for writable ones; either at most ``most`` (``hardware.sum_bits``, 0 for no bound).
    Weights that need more than ``most`` are refused as :func:`check_sum_bits` refuses them."""
    if most:
        _check(plan, quant, most, "weights")
    bits = format_sum_bits(plan, quant) if writable else exact_sum_bits(plan, quant)
    return min(bits, most) if most else bits


def check_sum_bits(design, source: str = "weights") -> None:
    """Refuse, with a :class:`~lstm_hw.errors.ConfigError` on ``hardware.sum_bits``, a design whose weights
    (from ``source``) give a gate sum that could need more than ``hardware.sum_bits`` bits (0: no bound)."""
    most = design.config.hardware.sum_bits
    if most:
        for plan in (*design.layers, *([design.head] if design.head is not None else [])):
            _check(plan, design.unit_quant(plan), most, source, "the head" if plan is design.head else None)


def _check(plan, quant, most: int, source: str, unit: str | None = None) -> None:
    need = need_sum_bits(plan, quant)
    if need > most:
        unit = unit or f"layer {plan.index}"
        raise ConfigError("hardware.sum_bits", f"is {most}, but {unit}'s gate sums need {need} bits with "
                                               f"{source}: raise it, or use smaller weights")
