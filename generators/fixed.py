"""Amaranth expressions for the operations of :mod:`lstm_hw.numerics`.

Each helper mirrors its golden namesake exactly, so a generator never
re-derives a rounding or saturation rule of its own.
"""

from amaranth.hdl import Mux, Signal, Value

from ..numerics import Fixed

__all__ = ["round_shift", "saturate", "requantize", "delay"]


def round_shift(value, shift: int, mode: str):
    """``numerics.round_shift``: drop ``shift`` fraction bits (or scale up for a negative shift)."""
    value = Value.cast(value)
    if shift <= 0:
        return value << -shift
    if mode == "half_up":
        value = value + (1 << (shift - 1))
    return value >> shift


def saturate(value, fmt: Fixed):
    """``numerics.saturate``: clamp to ``fmt``'s range (the result still needs a ``fmt``-wide sink)."""
    value = Value.cast(value)
    return Mux(value > fmt.max_int, fmt.max_int, Mux(value < fmt.min_int, fmt.min_int, value))


def requantize(value, src_frac: int, dst: Fixed, mode: str):
    """``numerics.requantize``: round from ``src_frac`` fraction bits into ``dst``, then saturate."""
    return saturate(round_shift(value, src_frac - dst.frac, mode), dst)


def delay(m, value, cycles: int, *, name: str = "dly"):
    """``value`` after ``cycles`` register stages in the sync domain (``value`` itself for 0)."""
    for n in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{n + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
