"""Bank-balanced sparsity (Cao et al., FPGA'19), as the hardware stores it.

Row ``r`` of a layer matrix ``[W_ih | W_hh]`` (``4H x (I+H)``) is zero-padded
on the right to ``banks * B`` columns, ``B = ceil((I+H) / banks)``, and split
into ``banks`` contiguous banks of ``B`` columns. Every bank of every row keeps
exactly ``k = max(1, floor(density * B + 1/2))`` stored weights (zeros allowed),
so every processing element does the same work: one stored weight per cycle.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["bank_width", "kept_per_bank", "prune_bank_balanced", "pack_banks"]


def bank_width(columns: int, banks: int) -> int:
    return -(-columns // banks)


def kept_per_bank(width: int, density: float) -> int:
    """Stored weights per bank: ``max(1, floor(density * width + 1/2))``, round half up.

    ``density`` is taken as the decimal the user wrote (its shortest repr), so
    that ``0.58 * 25`` is the tie 14.5 and rounds up, as it does on paper; in
    binary floating point it would be 14.4999... and round down.
    """
    exact = Fraction(repr(float(density))) * width + Fraction(1, 2)
    return max(1, math.floor(exact))


def _banked(w: np.ndarray, banks: int) -> np.ndarray:
    rows, cols = w.shape
    width = bank_width(cols, banks)
    padded = np.zeros((rows, banks * width), dtype=w.dtype)
    padded[:, :cols] = w
    return padded.reshape(rows, banks, width)


def _top_k_columns(w: np.ndarray, banks: int, k: int) -> np.ndarray:
    """Per bank, the in-bank columns of the ``k`` largest ``|w|``, ties to the lower column, ascending."""
    order = np.argsort(-np.abs(_banked(w, banks)), axis=2, kind="stable")[:, :, :k]
    return np.sort(order, axis=2)


def prune_bank_balanced(w: np.ndarray, banks: int, density: float) -> np.ndarray:
    """Keep the ``k`` largest-magnitude weights of every bank of every row; zero the rest.

    A matrix with at most ``k`` non-zeros per bank comes back unchanged.
    """
    rows, cols = w.shape
    k = kept_per_bank(bank_width(cols, banks), density)
    keep = np.zeros(_banked(w, banks).shape, dtype=bool)
    np.put_along_axis(keep, _top_k_columns(w, banks, k), True, axis=2)
    return np.where(keep.reshape(rows, -1)[:, :cols], w, 0).astype(w.dtype)


def pack_banks(w: np.ndarray, banks: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored ``(values, in-bank indices)``, each ``(rows, banks, k)``, columns ascending.

    ``w`` must already have at most ``k`` non-zeros per bank; the free slots
    hold zeros at the lowest unused columns.
    """
    index = _top_k_columns(w, banks, k)
    values = np.take_along_axis(_banked(w, banks), index, axis=2)
    if np.count_nonzero(values) != np.count_nonzero(w):
        raise ValueError(f"matrix has more than {k} non-zeros in some bank")
    return values, index
