"""Training and test data: an ``.npz`` with ``x`` (N, T, I) and ``y``, checked against a model's sizes.

``y`` is integer class labels (N,) for a classifier (cross-entropy on, and
accuracy of, the last output step), or real targets (N, O) for the last step
or (N, T, O) for every step (mean squared error). O is the head's output size,
or the hidden size without a head.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["check_data", "load_data", "validation_split"]


def check_data(x, y, sizes: dict, source: str = "data") -> tuple[np.ndarray, np.ndarray, str]:
    """``x`` (N, T, I) real; ``y`` labels (N,), targets (N, O) or (N, T, O). Returns x, y and the loss.

    O is the head's output size, or the hidden size without a head. The loss
    is cross-entropy on the last step for labels, else the mean squared error
    on the last step (N, O) or on every step (N, T, O).
    """
    x = np.asarray(x)
    out_size = sizes["output_size"] or sizes["hidden_size"]
    if x.dtype.kind not in "fiu" or x.ndim != 3 or x.shape[2] != sizes["input_size"] or 0 in x.shape:
        raise UsageError(f"{source}: x must be real (N, T, {sizes['input_size']}), got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{source}: x contains NaN or infinity")
    y = np.asarray(y)
    n, t_len = x.shape[:2]
    if y.dtype.kind in "iu" and y.shape == (n,):
        if y.min() < 0 or y.max() >= out_size:
            raise UsageError(f"{source}: labels y must be in [0, {out_size}), got {y.min()}..{y.max()}")
        return x.astype(np.float64), y.astype(np.int64), "cross_entropy"
    if y.dtype.kind in "fiu" and y.shape in ((n, out_size), (n, t_len, out_size)):
        if not np.all(np.isfinite(y)):
            raise UsageError(f"{source}: y contains NaN or infinity")
        return x.astype(np.float64), y.astype(np.float64), "mse_last" if y.ndim == 2 else "mse_sequence"
    raise UsageError(f"{source}: y must be integer labels ({n},), or real ({n}, {out_size}) or "
                     f"({n}, {t_len}, {out_size}), got {y.dtype} {y.shape}")


def load_data(path, sizes: dict) -> tuple[np.ndarray, np.ndarray, str]:
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise UsageError(f"{path}: not an .npz archive holding x and y (a single .npy array?)")
        with loaded as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise UsageError(f"{path}: no array named {' or '.join(missing)} (expected x and y)")
            x, y = f["x"], f["y"]
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise UsageError(f"{path}: cannot read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    return check_data(x, y, sizes, str(path))


def validation_split(y: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` that hold out ``round(fraction * N)`` sequences, seeded.

    Integer labels are stratified: each sequence gets its class's rank in a
    seeded shuffle, as a quantile ``(rank + U) / count`` (U uniform in [0, 1),
    seeded); the validation part is the sequences of lowest quantile, so every
    class gives about ``fraction`` of its sequences and a class as small as
    ``1 / fraction`` gives at least one. Real targets are a seeded random
    sample. Both index arrays are sorted; together they are ``0 .. N-1``.
    ``fraction = 0`` holds nothing out. Too few sequences to hold out one
    while training on one is a :class:`UsageError`.
    """
    n = len(y)
    if not 0 <= fraction < 1:
        raise UsageError(f"the validation fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return np.arange(n), np.arange(0)
    n_val = int(np.floor(fraction * n + 0.5))
    if n_val < 1 or n_val >= n:
        need = int(np.ceil(0.5 / fraction))
        raise UsageError(f"{n} sequence(s) are too few to hold out {fraction:.0%} for validation (at least {need} "
                         f"needed, and one to train on); give more data, or a validation fraction of 0 to "
                         f"fine-tune the full epoch count on all of it")
    rng = np.random.default_rng(seed)
    if y.dtype.kind in "iu" and y.ndim == 1:
        shuffled = rng.permutation(n)
        labels = y[shuffled]
        order = np.argsort(labels, kind="stable")
        _, first, counts = np.unique(labels[order], return_index=True, return_counts=True)
        rank = np.empty(n)
        rank[order] = np.arange(n) - np.repeat(first, counts)
        count = np.empty(n)
        count[order] = np.repeat(counts, counts)
        quantile = np.empty(n)
        quantile[shuffled] = (rank + rng.random(n)) / count
        val = np.argsort(quantile, kind="stable")[:n_val]
    else:
        val = rng.permutation(n)[:n_val]
    held = np.zeros(n, dtype=bool)
    held[val] = True
    return np.flatnonzero(~held), np.flatnonzero(held)
