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

__all__ = ["check_data", "load_data"]


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
