"""Pareto fronts: the points no other point beats on every objective at once.

A point *dominates* another when it is at least as good on every objective
and better on one. The front is the points no point dominates; points with
equal objectives are all on it or all off it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["non_dominated", "fronts", "RESOURCES"]

#: The costs each front trades the score against (all minimized); ``overall`` takes all four at once.
RESOURCES = ("dsp", "lut", "bram36", "cycles_per_timestep")


def non_dominated(costs) -> np.ndarray:
    """Indices (ascending) of the rows of ``costs`` (N, K) that no other row dominates; every column minimized."""
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"costs must be (N, K), got shape {c.shape}")
    keep = []
    for i in range(c.shape[0]):
        no_worse = np.all(c <= c[i], axis=1)
        better = np.any(c < c[i], axis=1)
        if not np.any(no_worse & better):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def fronts(rows: list[dict], metric: str) -> dict[str, list[str]]:
    """The digests of the front of ``metric`` (``accuracy``, maximized, or ``mse``, minimized) against each of
    :data:`RESOURCES`, and ``overall`` against all four; best score first, each digest once."""
    sign = -1.0 if metric == "accuracy" else 1.0
    score = np.array([sign * r[metric] for r in rows], dtype=np.float64).reshape(-1, 1)
    out = {}
    for name, columns in [(r, (r,)) for r in RESOURCES] + [("overall", RESOURCES)]:
        cost = np.array([[r[c] for c in columns] for r in rows], dtype=np.float64).reshape(len(rows), -1)
        idx = non_dominated(np.hstack([score, cost]))
        order = sorted(idx, key=lambda i: (score[i, 0], *cost[i], rows[i]["digest"]))
        out[name] = list(dict.fromkeys(rows[i]["digest"] for i in order))
    return out
