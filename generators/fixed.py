"""Amaranth expressions for the operations of :mod:`lstm_hw.numerics.fixed`, and small lint-clean idioms.

Each arithmetic helper mirrors its golden namesake exactly, so a generator
never re-derives a rounding or saturation rule of its own.
"""

from amaranth.hdl import Mux, Signal, Value, unsigned

from ..numerics.fixed import Fixed, rounding_offset

__all__ = ["round_shift", "saturate", "requantize", "delay", "delay_taps", "equals", "counter_shape", "check_count"]


def round_shift(value, shift: int, mode: str):
    """``numerics.round_shift``: drop ``shift`` fraction bits (or scale up for a negative shift)."""
    value = Value.cast(value)
    if shift <= 0:
        return value << -shift
    offset = rounding_offset(shift, mode)
    if offset:
        value = value + offset
    return value >> shift


def saturate(value, fmt: Fixed):
    """``numerics.saturate``: clamp to ``fmt``'s range (the result still needs a ``fmt``-wide sink).

    A signed value into a signed format is tested on its bits, not by
    comparison: it fits when every bit from ``fmt``'s sign bit up equals the
    value's sign. That is a LUT or two of logic, where two wide comparisons
    would be carry chains.
    """
    value = Value.cast(value)
    shape = value.shape()
    if shape.signed and fmt.signed:
        if shape.width <= fmt.bits:
            return value
        top = value[fmt.bits - 1:]
        fits = top.all() | ~top.any()
        return Mux(fits, value[:fmt.bits].as_signed(), Mux(value[-1], fmt.min_int, fmt.max_int))
    return Mux(value > fmt.max_int, fmt.max_int, Mux(value < fmt.min_int, fmt.min_int, value))


def requantize(value, src_frac: int, dst: Fixed, mode: str):
    """``numerics.requantize``: round from ``src_frac`` fraction bits into ``dst``, then saturate."""
    return saturate(round_shift(value, src_frac - dst.frac, mode), dst)


def delay(m, value, cycles: int, *, name: str = "dly"):
    """``value`` after ``cycles`` register stages in the sync domain (``value`` itself for 0)."""
    return delay_taps(m, value, [cycles], name=name)[0]


def delay_taps(m, value, taps, *, name: str = "dly") -> list:
    """``value`` after each of ``taps`` cycles, from one chain of registers as long as the longest tap.

    Where a signal is needed at several delays, one tapped chain is cheaper than a
    :func:`delay` per use.
    """
    taps = list(taps)
    if any(not isinstance(t, int) or t < 0 for t in taps):
        raise ValueError(f"taps must be non-negative integers, got {taps!r}")
    chain = [value]
    for n in range(max(taps, default=0)):
        reg = Signal(value.shape(), name=f"{name}_d{n + 1}")
        m.d.sync += reg.eq(chain[-1])
        chain.append(reg)
    return [chain[t] for t in taps]


def equals(value, const: int):
    """``value == const``; Amaranth writes ``== 0`` as a multi-bit logical NOT, which lint flags."""
    value = Value.cast(value)
    return ~value.any() if const == 0 else value == const


def counter_shape(count: int):
    """Shape of a counter over ``range(count)``, at least one bit wide (no ``[-1:0]`` vectors)."""
    return unsigned(max(1, (count - 1).bit_length()))


def check_count(name: str, value, least: int = 1) -> int:
    """``value``, a component parameter that must be an integer of at least ``least``.

    Raises ``TypeError`` for anything but an integer (a bool included) and ``ValueError`` below ``least``,
    each naming the parameter.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    return value
