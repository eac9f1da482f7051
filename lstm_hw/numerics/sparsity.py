"""Bank-balanced sparsity (Cao et al., FPGA'19), as the hardware stores it.

Row ``r`` of a weight matrix (``W_ih`` and ``W_hh`` of a layer each on its own,
as :mod:`lstm_hw.model.design` prunes them, ``n`` columns) is zero-padded
on the right to ``banks * B`` columns, ``B = ceil(n / banks)``, and split
into ``banks`` interleaved banks of ``B`` columns: column ``c`` is entry
``c // banks`` of bank ``c % banks``. Every bank of every row keeps exactly
``k = max(1, floor(density * B + 1/2))`` stored weights (zeros allowed), so
every processing element does the same work: one stored weight per cycle.

Interleaved rather than contiguous banks (as in the BBS paper) balance the
work just as well, and put any ``banks`` consecutive vector elements in
``banks`` different banks: the hardware writes a group of consecutive
elements (the ``h_j`` of one pass, a wide input beat) in one cycle.

For comparison, unstructured magnitude pruning over the whole matrix (as ESE,
Han et al., FPGA'17, does) and what it costs on the same hardware: every bank
gets as many slots as the fullest bank of the matrix needs (:func:`pack_padded`),
so the emptier banks multiply stored zeros (:func:`utilisation`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["bank_width", "bank_columns", "kept_per_bank", "prune_bank_balanced", "pack_banks", "prune_unstructured", "bank_loads",
           "utilisation", "pack_padded"]


def _matrix(w) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"weight matrix must be 2-D, got {w.ndim}-D with shape {w.shape}")
    return w


def _check_banks(banks) -> None:
    if not isinstance(banks, (int, np.integer)) or isinstance(banks, bool) or banks < 1:
        raise ValueError(f"banks must be a positive integer, got {banks!r}")


def _check_density(density) -> None:
    if isinstance(density, bool) or not isinstance(density, (int, float, np.floating, np.integer)) \
            or not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")


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
    """``(rows, banks, B)``: entry ``i`` of bank ``b`` is column ``i * banks + b`` (zero past the last column)."""
    rows, cols = w.shape
    width = bank_width(cols, banks)
    padded = np.zeros((rows, banks * width), dtype=w.dtype)
    padded[:, :cols] = w
    return padded.reshape(rows, width, banks).transpose(0, 2, 1)


def bank_columns(columns: int, banks: int) -> np.ndarray:
    """``(banks, B)``: the matrix column of each in-bank entry, ``-1`` for padding."""
    width = bank_width(columns, banks)
    c = np.arange(width)[None, :] * banks + np.arange(banks)[:, None]
    return np.where(c < columns, c, -1)


def _top_k_columns(w: np.ndarray, banks: int, k: int) -> np.ndarray:
    """Per bank, the in-bank columns of the ``k`` largest ``|w|``, ties to the lower column, ascending."""
    order = np.argsort(-np.abs(_banked(w, banks)), axis=2, kind="stable")[:, :, :k]
    return np.sort(order, axis=2)


def prune_bank_balanced(w: np.ndarray, banks: int, density: float) -> np.ndarray:
    """Keep the ``k`` largest-magnitude weights of every bank of every row; zero the rest.

    A matrix with at most ``k`` non-zeros per bank comes back unchanged.
    """
    w = _matrix(w)
    _check_banks(banks)
    _check_density(density)
    rows, cols = w.shape
    k = kept_per_bank(bank_width(cols, banks), density)
    keep = np.zeros(_banked(w, banks).shape, dtype=bool)
    np.put_along_axis(keep, _top_k_columns(w, banks, k), True, axis=2)
    keep = keep.transpose(0, 2, 1).reshape(rows, -1)   # back to column order: column c = i * banks + b
    return np.where(keep[:, :cols], w, 0).astype(w.dtype)


def pack_banks(w: np.ndarray, banks: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored ``(values, in-bank indices)``, each ``(rows, banks, k)``, columns ascending.

    ``w`` must already have at most ``k`` non-zeros per bank; the free slots
    hold zeros at the lowest unused columns.
    """
    w = _matrix(w)
    _check_banks(banks)
    width = bank_width(w.shape[1], banks)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= width:
        raise ValueError(f"k must be an integer from 1 to the bank width {width}, got {k!r}")
    index = _top_k_columns(w, banks, k)
    values = np.take_along_axis(_banked(w, banks), index, axis=2)
    if np.count_nonzero(values) != np.count_nonzero(w):
        raise ValueError(f"matrix has more than {k} non-zeros in some bank")
    return values, index


def prune_unstructured(w: np.ndarray, density: float) -> np.ndarray:
    """Keep the ``max(1, floor(density * size + 1/2))`` largest ``|w|`` of the whole matrix; zero the rest.

    Ties go to the lower flat (row-major) index. The count is rounded as
    :func:`kept_per_bank` rounds, so a matrix with at most that many non-zeros
    comes back unchanged.
    """
    w = _matrix(w)
    _check_density(density)
    keep = np.zeros(w.size, dtype=bool)
    keep[np.argsort(-np.abs(w), axis=None, kind="stable")[:kept_per_bank(w.size, density)]] = True
    return np.where(keep.reshape(w.shape), w, 0).astype(w.dtype)


def bank_loads(w: np.ndarray, banks: int) -> np.ndarray:
    """Non-zeros of every bank of every row, ``(rows, banks)``, banked as :func:`prune_bank_balanced` banks."""
    w = _matrix(w)
    _check_banks(banks)
    return np.count_nonzero(_banked(w, banks), axis=2)


def _slots(loads: np.ndarray) -> int:
    # at least one slot, as ``kept_per_bank`` keeps at least one weight
    return max(1, int(loads.max(initial=0)))


def utilisation(w: np.ndarray, banks: int, rows_per_cycle: int) -> dict:
    """How much of the stored work of ``w`` is useful when every bank gets the fullest bank's slots.

    The hardware stores ``k_max`` weights for every bank of every row, ``k_max``
    the largest :func:`bank_loads` entry (at least 1): this is how an
    unstructured matrix runs on the bank-balanced engine, and for a
    bank-balanced matrix ``k_max`` is its ``k`` unless every bank kept zeros.

    Returns plain values: ``nnz``; ``stored = rows * banks * k_max``;
    ``utilisation = nnz / stored``; ``k_max``; ``mean_load`` and ``max_load``
    (non-zeros per bank per row); ``imbalance = max_load / mean_load`` (1 for
    an all-zero matrix); and the schedule on ``rows_per_cycle`` row lanes:
    ``passes = ceil(rows / rows_per_cycle)``, ``cycles = passes * k_max``
    and ``ideal_cycles = ceil(nnz / (banks * rows_per_cycle))``, what perfectly
    balanced banks would need.
    """
    loads = bank_loads(w, banks)
    if not isinstance(rows_per_cycle, (int, np.integer)) or isinstance(rows_per_cycle, bool) \
            or rows_per_cycle < 1:
        raise ValueError(f"rows_per_cycle must be a positive integer, got {rows_per_cycle!r}")
    rows = loads.shape[0]
    nnz = int(loads.sum())
    k_max = _slots(loads)
    stored = rows * banks * k_max
    mean = nnz / loads.size if loads.size else 0.0
    passes = -(-rows // rows_per_cycle)
    return {
        "nnz": nnz,
        "stored": stored,
        "utilisation": nnz / stored if stored else 0.0,
        "k_max": k_max,
        "mean_load": mean,
        "max_load": int(loads.max(initial=0)),
        "imbalance": float(loads.max(initial=0) / mean) if nnz else 1.0,
        "passes": passes,
        "cycles": passes * k_max,
        "ideal_cycles": -(-nnz // (banks * rows_per_cycle)),
    }


def pack_padded(w: np.ndarray, banks: int) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`pack_banks` with ``k = k_max`` of :func:`utilisation`: any sparsity pattern, emptier banks zero-padded."""
    k = _slots(bank_loads(w, banks))
    values, index = pack_banks(w, banks, k)
    return values, index, k
