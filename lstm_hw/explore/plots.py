"""The fronts of a sweep as PNGs: the score against each resource, every point, the front joined up, and the
dense float model's score as a reference line. Drawn as :mod:`lstm_hw.compression.plots` draws, so the bytes
depend only on the arguments."""

from __future__ import annotations

from pathlib import Path

from ..compression.plots import _figure, check_path, write_png
from .pareto import RESOURCES

__all__ = ["plot_front", "LABELS"]

#: Axis labels of the resources.
LABELS = {"dsp": "DSP48E1", "lut": "LUT", "bram36": "BRAM36", "cycles_per_timestep": "cycles per timestep"}


def plot_front(rows: list[dict], front: list[str], resource: str, metric: str, path: str | Path,
               reference: float | None = None, title: str | None = None) -> Path:
    """``metric`` against ``resource`` for every point of ``rows``, the points of ``front`` (digests) joined in a
    step line, and ``reference`` (the dense float model's ``metric``) as a dashed line."""
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
    if not rows:
        raise ValueError("no rows to plot")
    check_path(path)
    on_front = set(front)
    best = sorted((r[resource], r[metric]) for r in rows if r["digest"] in on_front)
    with _figure() as (fig, buf):
        ax = fig.subplots()
        fits = [r for r in rows if r["fits"]]
        over = [r for r in rows if not r["fits"]]
        ax.scatter([r[resource] for r in fits], [r[metric] for r in fits], color="C7", s=14,
                   label=f"points ({len(fits)})")
        if over:
            ax.scatter([r[resource] for r in over], [r[metric] for r in over], color="C7", marker="x", s=14,
                       label=f"points that do not fit the part ({len(over)})")
        if best:
            x, y = zip(*best)
            ax.step(x, y, where="post", color="C3", marker="o", label=f"front ({len(best)})")
        if reference is not None:
            ax.axhline(reference, color="C0", linestyle="--", linewidth=1, label=f"dense float: {reference:.4g}")
        ax.set_xlabel(LABELS[resource])
        ax.set_ylabel(metric)
        ax.set_title(title if title is not None else f"{metric} against {LABELS[resource]}")
        ax.grid(True, linewidth=0.3)
        ax.legend(loc="lower right" if metric == "accuracy" else "upper right", fontsize=8)
    return write_png(path, buf.getvalue())
