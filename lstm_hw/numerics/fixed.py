"""Fixed-point formats and the integer operations on them.

This module is the single source of truth for every number in the design. The
golden model calls these functions; the Amaranth generators read their shapes
from :meth:`Fixed.shape` and their constants from the same helpers. Nothing
else derives a width by hand.

All arithmetic is on NumPy ``int64`` arrays (or Python ints). A value ``v`` of
format ``Fixed(bits, frac)`` stands for the real number ``v / 2**frac``.

Rounding modes (applied when fraction bits are dropped):

``"half_up"``
    Round to nearest, ties towards +inf: ``floor(x / 2**s + 1/2)``.
    In hardware: add ``2**(s-1)`` then arithmetic-shift right by ``s``.
``"truncate"``
    Round towards -inf: ``floor(x / 2**s)``, a plain arithmetic shift.

Overflow is always handled by saturation, wherever a value narrows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ROUNDING_MODES", "Fixed", "bits_for", "signed_bits", "rounding_offset", "round_shift",
    "saturate", "requantize", "quantize_real",
]

ROUNDING_MODES = ("half_up", "truncate")


def bits_for(value: int) -> int:
    """Bits needed to hold the non-negative integer ``value`` unsigned (at least 1)."""
    if value < 0:
        raise ValueError(f"bits_for expects a non-negative value, got {value}")
    return max(1, int(value).bit_length())


def signed_bits(lo: int, hi: int) -> int:
    """Two's-complement bits that hold every integer in ``[lo, hi]``."""
    return max(1, (hi if hi >= 0 else ~hi).bit_length() + 1, (lo if lo >= 0 else ~lo).bit_length() + 1)


@dataclass(frozen=True)
class Fixed:
    """A two's complement (or unsigned) fixed-point format.

    Parameters
    ----------
    bits : int
        Total width, sign bit included.
    frac : int
        Fraction bits; may be negative or exceed ``bits``.
    signed : bool
        Two's complement when true.
    """

    bits: int
    frac: int
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or self.bits < 1:
            raise ValueError(f"bits must be a positive integer, got {self.bits!r}")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool):
            raise ValueError(f"frac must be an integer, got {self.frac!r}")
        if self.signed and self.bits < 2:
            raise ValueError("a signed format needs at least 2 bits")

    @property
    def min_int(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        """The real value of one least significant bit."""
        return 2.0 ** -self.frac

    @property
    def min_real(self) -> float:
        return self.min_int * self.lsb

    @property
    def max_real(self) -> float:
        return self.max_int * self.lsb

    def shape(self):
        """The Amaranth shape of this format."""
        from amaranth.hdl import signed, unsigned
        return signed(self.bits) if self.signed else unsigned(self.bits)

    def codes(self) -> np.ndarray:
        """Every integer code of this format, ascending."""
        return np.arange(self.min_int, self.max_int + 1, dtype=np.int64)

    def saturate(self, x):
        return saturate(x, self)

    def quantize(self, real):
        """Nearest code (ties up) to the real value(s), saturated."""
        return quantize_real(real, self)

    def to_real(self, x):
        return np.asarray(x, dtype=np.float64) * self.lsb

    def to_dict(self) -> dict:
        return {"bits": self.bits, "frac": self.frac, "signed": self.signed}

    def __str__(self):
        kind = "s" if self.signed else "u"
        return f"{kind}{self.bits}.{self.frac}"


def rounding_offset(shift: int, mode: str) -> int:
    """What :func:`round_shift` adds before its arithmetic shift: ``2**(shift-1)`` for ``half_up``, else 0.

    ``round_shift(x, s, mode) == (x + rounding_offset(s, mode)) >> s`` for
    ``s > 0``, so hardware may add the offset anywhere upstream of the shift
    (for instance into a bias) and then just drop the bits.
    """
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; expected one of {ROUNDING_MODES}")
    return 1 << (shift - 1) if mode == "half_up" and shift > 0 else 0


def round_shift(x, shift: int, mode: str):
    """Drop ``shift`` fraction bits of the integer(s) ``x`` with rounding ``mode``.

    A negative ``shift`` scales up (exactly) instead.
    """
    offset = rounding_offset(shift, mode)
    x = np.asarray(x, dtype=np.int64)
    if shift <= 0:
        return x << -shift
    return (x + offset) >> shift


def saturate(x, fmt: Fixed):
    """Clamp integer(s) ``x`` to the range of ``fmt``."""
    return np.clip(np.asarray(x, dtype=np.int64), fmt.min_int, fmt.max_int)


def requantize(x, src_frac: int, dst: Fixed, mode: str):
    """Move integer(s) from ``src_frac`` fraction bits into ``dst``: round, then saturate."""
    return saturate(round_shift(x, src_frac - dst.frac, mode), dst)


def quantize_real(real, fmt: Fixed):
    """Quantize real value(s) to ``fmt``: nearest code, ties up, saturated.

    Raises ``ValueError`` on NaN or infinity.
    """
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError("cannot quantize NaN or infinite values")
    # Scaling by 2**frac is exact, and so is ``scaled - floor(scaled)``; adding
    # 0.5 first would round (0.5 - 2**-54 + 0.5 == 1.0 in float64).
    with np.errstate(over="ignore", invalid="ignore"):   # huge values scale to inf: they saturate
        scaled = np.ldexp(r, fmt.frac)
        low = np.floor(scaled)
        code = low + (scaled - low >= 0.5)
    # Saturate while still in float64, so formats up to 64 bits never overflow int64.
    above, below = code >= float(fmt.max_int), code <= float(fmt.min_int)
    inside = np.where(above | below, 0.0, code).astype(np.int64)
    return np.where(above, fmt.max_int, np.where(below, fmt.min_int, inside)).astype(np.int64)
