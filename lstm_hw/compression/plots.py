"""Figures of sparse weights and of accuracy against density, each written as one PNG.

Every function checks its arguments and the path first, draws with
matplotlib's default style whatever the user's matplotlibrc, at a fixed size
and resolution with no software or date in the metadata, so the bytes depend
only on the arguments; then writes the file atomically and returns its path.
matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..numerics.fixed import Fixed
from ..numerics.sparsity import bank_columns, bank_width, utilisation

__all__ = ["write_png", "plot_sparsity", "plot_weight_histogram", "plot_accuracy_vs_density", "ACCURACY_KINDS"]

_SIZE = (8.0, 6.0)
_DPI = 100
# The sparsity image shows at most this many cells each way; beyond that, a
# cell is a block of the matrix, shaded by its fraction of non-zeros.
_MAX_CELLS = (300, 600)
_HIST_BINS = 80

#: Accuracy kinds of :func:`plot_accuracy_vs_density`, in legend order, with their line style and marker.
ACCURACY_KINDS = {"float": ("-", "o"), "pruned_float": ("--", "s"), "golden": (":", "^"), "rtl": ("-.", "x")}


def write_png(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; one-line :class:`UsageError` if it cannot be done.

    The directory must exist: a mistyped path must not leave directories behind.
    """
    from ..emit.files import write_files
    target = check_path(path)
    written, = write_files(target.parent, {target.name: data}, force=True)
    return written


def check_path(path: str | Path) -> Path:
    """``path`` if a file can go there; the plots call it before drawing, which is the slow part."""
    target = Path(path)
    try:
        is_dir, parent_is_dir = target.is_dir(), target.parent.is_dir()
    except OSError as e:                    # a name too long, say: Python 3.11 raises it from is_dir()
        raise UsageError(f"{target}: {e.strerror or e}") from None
    if is_dir:
        raise UsageError(f"{target}: is a directory")
    if not parent_is_dir:
        raise UsageError(f"{target}: no such directory {str(target.parent)!r}")
    return target


@contextmanager
def _figure():
    """A fresh figure in the default style; yields ``(figure, buffer)``, the PNG is in the buffer afterwards."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        yield fig, buf
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})


def _block_density(mask: np.ndarray, rows_per: int, cols_per: int) -> np.ndarray:
    """Fraction of non-zeros in every ``rows_per x cols_per`` block; edge blocks count only real entries."""
    r0 = np.arange(0, mask.shape[0], rows_per)
    c0 = np.arange(0, mask.shape[1], cols_per)
    counts = np.add.reduceat(np.add.reduceat(mask.astype(np.int64), r0, axis=0), c0, axis=1)
    sizes = np.outer(np.diff(r0, append=mask.shape[0]), np.diff(c0, append=mask.shape[1]))
    return counts / sizes


def plot_sparsity(w: np.ndarray, banks: int, path: str | Path, title: str | None = None) -> Path:
    """The non-zeros of ``w`` (dark), columns grouped by bank, bank boundaries as vertical lines.

    Banks are as :func:`lstm_hw.numerics.sparsity.bank_loads` makes them: interleaved,
    so the image shows bank 0's columns (0, banks, 2 banks, ...) first, then
    bank 1's, as the BBS paper draws contiguous banks. A matrix larger
    than the image is shown in blocks shaded by their fraction of non-zeros;
    the bank lines are drawn at their exact columns whatever the blocking.
    """
    w = np.asarray(w)
    stats = utilisation(w, banks, 1)            # checks w and banks
    check_path(path)
    rows, cols = w.shape
    width = bank_width(cols, banks)
    columns = bank_columns(cols, banks)
    order = columns.reshape(-1)
    w = w[:, order[order >= 0]]             # bank-major: bank b is the b-th group of columns
    edges = np.cumsum(np.count_nonzero(columns >= 0, axis=1))[:-1]
    rows_per, cols_per = (-(-n // m) if n else 1 for n, m in zip(w.shape, _MAX_CELLS))
    image = _block_density(w != 0, rows_per, cols_per) if w.size else np.zeros((1, 1))
    if title is None:
        title = f"{rows} × {cols}, {banks} banks of {width} columns"
    blocked = rows_per > 1 or cols_per > 1

    with _figure() as (fig, buf):
        ax = fig.subplots()
        shown = ax.imshow(image, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto",
                          extent=(-0.5, image.shape[1] * cols_per - 0.5, image.shape[0] * rows_per - 0.5, -0.5))
        ax.set_xlim(-0.5, max(cols, 1) - 0.5)
        ax.set_ylim(max(rows, 1) - 0.5, -0.5)
        for edge in edges:
            if edge < cols:
                ax.axvline(edge - 0.5, color="C3", linewidth=0.8)
        ax.set_xlabel("column, grouped by bank (c mod banks)"
                      + (f" (blocks of {rows_per} × {cols_per})" if blocked else ""))
        ax.set_ylabel("row")
        ax.set_title(f"{title}\n{stats['nnz']} non-zeros (density {stats['nnz'] / max(w.size, 1):.3f}), "
                     f"bank load mean {stats['mean_load']:.2f} max {stats['k_max']}, "
                     f"utilisation {stats['utilisation']:.3f}", fontsize=10)
        if blocked:
            fig.colorbar(shown, ax=ax, label="fraction non-zero")
    return write_png(path, buf.getvalue())


def _saturating(values: np.ndarray, fmt: Fixed) -> int:
    """How many of ``values`` quantize out of range (nearest, ties up, as
    :func:`lstm_hw.numerics.fixed.quantize_real`)."""
    scaled = np.ldexp(values.astype(np.float64), fmt.frac)
    return int(np.count_nonzero((scaled >= fmt.max_int + 0.5) | (scaled < fmt.min_int - 0.5)))


def plot_weight_histogram(w: np.ndarray, fmt: Fixed, path: str | Path, title: str | None = None) -> Path:
    """Histogram of the non-zero weights of ``w`` with the range of ``fmt`` marked and its saturating count."""
    w = np.asarray(w)
    if not isinstance(fmt, Fixed):
        raise ValueError(f"fmt must be a lstm_hw.numerics.fixed.Fixed, got {type(fmt).__name__}")
    values = w[w != 0].astype(np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError("weights must be finite")
    check_path(path)
    saturating = _saturating(values, fmt)
    lo = min(fmt.min_real, float(values.min(initial=fmt.min_real)))
    hi = max(fmt.max_real, float(values.max(initial=fmt.max_real)))
    margin = 0.05 * (hi - lo)
    edges = np.linspace(lo - margin, hi + margin, _HIST_BINS + 1)
    if title is None:
        title = f"{values.size} non-zero weights of {w.size}, format {fmt}"
    share = f" ({100 * saturating / values.size:.2f} %)" if values.size else ""

    with _figure() as (fig, buf):
        ax = fig.subplots()
        ax.hist(values, bins=edges, color="C0", label=f"non-zero weights ({values.size})")
        ax.axvspan(lo - margin, fmt.min_real, color="C3", alpha=0.12, linewidth=0)
        ax.axvspan(fmt.max_real, hi + margin, color="C3", alpha=0.12, linewidth=0)
        ax.axvline(fmt.min_real, color="C3", linestyle="--", linewidth=1,
                   label=f"{fmt} range [{fmt.min_real:g}, {fmt.max_real:g}]: {saturating} saturate{share}")
        ax.axvline(fmt.max_real, color="C3", linestyle="--", linewidth=1)
        ax.set_xlim(lo - margin, hi + margin)
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
        ax.set_title(title)
        ax.legend(loc="upper left")
        ax.grid(True, linewidth=0.3)
    return write_png(path, buf.getvalue())


def _accuracy_lines(rows: list[dict]) -> dict[tuple[int, str], list[tuple[float, float]]]:
    """``{(weight_bits, kind): [(density, accuracy), ...]}`` sorted by bits, kind order, then density."""
    if not rows:
        raise ValueError("no rows to plot")
    lines: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for n, row in enumerate(rows):
        for key in ("density", "weight_bits", "float", "pruned_float", "golden"):
            if key not in row:
                raise ValueError(f"rows[{n}]: missing key {key!r}")
        density = float(row["density"])
        if not 0.0 < density <= 1.0:
            raise ValueError(f"rows[{n}].density: must be in (0, 1], got {row['density']!r}")
        for kind in ACCURACY_KINDS:
            if row.get(kind) is not None:
                lines.setdefault((int(row["weight_bits"]), kind), []).append((density, float(row[kind])))
    kinds = list(ACCURACY_KINDS)
    return {key: sorted(lines[key]) for key in sorted(lines, key=lambda k: (k[0], kinds.index(k[1])))}


def plot_accuracy_vs_density(rows: list[dict], path: str | Path, title: str | None = None) -> Path:
    """Accuracy against density, one line per (weight bits, kind); density on a descending log2 axis.

    ``rows`` are dicts with ``density``, ``weight_bits`` and the accuracy of each
    kind in :data:`ACCURACY_KINDS`: ``float`` (unpruned), ``pruned_float``,
    ``golden`` (the bit-exact model) and, optionally, ``rtl``; a missing or
    ``None`` accuracy is left out. Colour tells the weight bits, style the kind.
    """
    lines = _accuracy_lines(rows)
    check_path(path)
    bits = sorted({b for b, _ in lines})
    densities = sorted({d for points in lines.values() for d, _ in points})

    with _figure() as (fig, buf):
        ax = fig.subplots()
        for (b, kind), points in lines.items():
            style, marker = ACCURACY_KINDS[kind]
            x, y = zip(*points)
            ax.plot(x, y, linestyle=style, marker=marker, color=f"C{bits.index(b) % 10}", label=f"{kind}, {b}-bit")
        ax.set_xscale("log", base=2)
        ax.set_xticks(densities, [f"{d:g}" for d in densities])
        ax.minorticks_off()
        lo, hi = densities[0], densities[-1]
        ax.set_xlim(hi * 2 ** 0.25, lo * 2 ** -0.25)     # descending: dense on the left
        ax.set_xlabel("density (log2)")
        ax.set_ylabel("accuracy")
        ax.set_title(title if title is not None else "accuracy against weight density")
        ax.grid(True, linewidth=0.3)
        ax.legend(loc="best", fontsize=8, ncols=max(1, len(bits) // 3 + (len(bits) % 3 > 0)))
    return write_png(path, buf.getvalue())
