"""What the hardware keeps of the given weights, and what it drops.

:func:`prune_weights` prunes every matrix of a model exactly as
:func:`lstm_hw.model.design.build_design` stores it: ``W_ih`` and ``W_hh`` of each
layer each on its own at ``sparsity.density``, and the head's ``fc.weight`` at
``sparsity.head_density``, bank-balanced over interleaved banks (or
unstructured, with ``sparsity.pattern``). Weights it returns pass through the
hardware unchanged, so they are what ``--strict`` accepts.

:func:`pruning_summary` says, per matrix, what that pruning dropped of the
given weights: non-zeros given and kept, the largest ``|w|`` dropped, and the
fraction of the matrix's Frobenius norm dropped, ``‖W − W_kept‖ / ‖W‖``. A
matrix is

- ``unchanged`` when every non-zero is kept;
- ``pruned`` when the given matrix was dense, its share of non-zeros nearer 1
  than the configured density: pruning on purpose, told as information;
- ``nonconforming`` otherwise: the weights were already sparse, in a pattern
  the banks cannot hold, and the hardware would not compute the given model;
  told as a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from ..config.schema import Config
from ..errors import ConfigError
from ..numerics.sparsity import bank_loads, bank_width, kept_per_bank, prune_bank_balanced, prune_unstructured

__all__ = ["prune", "prune_matrix", "prune_weights", "pruned_matrices", "pruned_with_slots", "MatrixPruning",
           "pruning_summary", "pruning_lines", "check_strict", "warn_pruning", "WeightsPrunedWarning",
           "NonConformingWeightsWarning"]


class WeightsPrunedWarning(UserWarning):
    """The hardware holds fewer non-zeros than the given weights: dense weights pruned to the configured density."""


class NonConformingWeightsWarning(WeightsPrunedWarning):
    """Already-sparse weights whose non-zeros the bank pattern cannot all keep: the hardware computes another model."""


def prune_matrix(w: np.ndarray, banks: int, density: float, pattern: str) -> tuple[np.ndarray, int]:
    """``(pruned w, k)``: the stored weights per bank that the schedule gives every bank of every row.

    Bank-balanced: exactly ``k = kept_per_bank(B, density)`` per bank. Unstructured
    (magnitude pruning over the whole matrix): every bank padded to the fullest
    bank's count, so the same hardware runs it at lower utilisation.
    """
    if pattern == "unstructured":
        w = prune_unstructured(w, density)
        return w, max(1, int(bank_loads(w, banks).max()))
    return prune_bank_balanced(w, banks, density), kept_per_bank(bank_width(w.shape[1], banks), density)


def pruned_matrices(config: Config) -> list[tuple[str, float]]:
    """``(name, density)`` of every matrix the hardware prunes, in the order of the model."""
    s = config.sparsity
    names = [(f"weight_{part}_l{k}", s.density) for k in range(config.model.num_layers) for part in ("ih", "hh")]
    return names + ([("fc.weight", s.head_density)] if config.model.output_size else [])


def pruned_with_slots(weights: dict[str, np.ndarray], config: Config) -> dict[str, tuple[np.ndarray, int]]:
    """Per matrix of :func:`pruned_matrices`, :func:`prune_matrix`'s ``(pruned w, k)``."""
    s = config.sparsity
    return {name: prune_matrix(weights[name], s.banks, density, s.pattern) for name, density in pruned_matrices(config)}


def prune_weights(weights: dict[str, np.ndarray], config: Config) -> dict[str, np.ndarray]:
    """``weights`` (checked, PyTorch names) with every matrix pruned as the hardware stores it; biases as given."""
    return {**weights, **{name: w for name, (w, _) in pruned_with_slots(weights, config).items()}}


def prune(weights: dict, config: Config) -> dict[str, np.ndarray]:
    """``lstm_hw.prune``: a model's weights (PyTorch names) pruned to the hardware's pattern for ``config``.

    The arrays are checked against the config's sizes (one-line
    :class:`~lstm_hw.errors.ConfigError` otherwise) and come back as float64;
    every matrix holds exactly what the hardware will, so the result passes
    ``strict`` and :func:`pruning_summary` finds nothing dropped. Prune first
    and fine-tune after (``lstm-hw compress --data``) to win back accuracy.
    """
    from .weights import check_weights
    return prune_weights(check_weights(weights, config), config)


@dataclass(frozen=True)
class MatrixPruning:
    """What the hardware kept of one given matrix; see the module docstring."""

    name: str
    pattern: str
    banks: int
    density: float
    size: int
    nonzero_given: int
    nonzero_kept: int
    max_abs_dropped: float
    norm_dropped: float
    status: str           # "unchanged", "pruned" or "nonconforming"

    @property
    def dropped(self) -> int:
        return self.nonzero_given - self.nonzero_kept

    def to_dict(self) -> dict:
        return asdict(self)

    def _pattern(self) -> str:
        kind = "bank-balanced" if self.pattern == "bank_balanced" else "unstructured"
        return f"{kind}, {self.banks} banks, density {self.density:g}"

    def _figures(self) -> str:
        return (f"{self.nonzero_kept} of {self.nonzero_given} non-zeros kept, largest |w| dropped "
                f"{self.max_abs_dropped:.4g}, {self.norm_dropped:.1%} of the matrix's norm dropped")

    def message(self, source: str) -> str:
        """What the pruning did to this matrix of ``source`` (the weights' file), in one line."""
        if self.status == "pruned":
            return f"{source}:{self.name}: pruned ({self._pattern()}): {self._figures()}"
        return (f"{source}:{self.name}: already sparse, but not in the hardware's pattern "
                f"({self._pattern()}): {self._figures()}; the hardware does not compute the given model "
                "(prune with lstm_hw.prune or lstm-hw compress)")

    def line(self, source: str) -> str:
        """:meth:`message` for the user: a ``note`` for pruning on purpose, a ``warning`` for non-conforming
        weights."""
        return f"{'note' if self.status == 'pruned' else 'warning'}: {self.message(source)}"


def _summary(name: str, given: np.ndarray, kept: np.ndarray, config: Config, density: float) -> MatrixPruning:
    dropped = np.where(kept == 0, given, 0.0)
    nonzero_given, nonzero_kept = int(np.count_nonzero(given)), int(np.count_nonzero(kept))
    norm = float(np.sqrt(np.sum(np.square(given))))
    if nonzero_kept == nonzero_given:
        status = "unchanged"
    elif nonzero_given / given.size > (1.0 + density) / 2:
        status = "pruned"
    else:
        status = "nonconforming"
    return MatrixPruning(
        name=name, pattern=config.sparsity.pattern, banks=config.sparsity.banks, density=float(density),
        size=int(given.size), nonzero_given=nonzero_given, nonzero_kept=nonzero_kept,
        max_abs_dropped=float(np.abs(dropped).max(initial=0.0)),
        # rounded: a norm's last bits may differ between NumPy builds, and the metadata must not
        norm_dropped=round(float(np.sqrt(np.sum(np.square(dropped)))) / norm, 6) if norm else 0.0,
        status=status)


def pruning_summary(weights: dict[str, np.ndarray], pruned: dict[str, np.ndarray],
                    config: Config) -> tuple[MatrixPruning, ...]:
    """Per matrix of :func:`pruned_matrices`, what ``pruned`` kept of ``weights``."""
    return tuple(_summary(name, np.asarray(weights[name], dtype=np.float64), pruned[name], config, density)
                 for name, density in pruned_matrices(config))


def pruning_lines(summary, source: str = "weights") -> list[str]:
    """A line per matrix that lost non-zeros, naming ``source`` (the weights' file)."""
    return [m.line(source) for m in summary if m.status != "unchanged"]


def check_strict(summary, source: str = "weights") -> None:
    """Refuse, in one line, weights of which the hardware would drop any non-zero."""
    changed = [m for m in summary if m.status != "unchanged"]
    if not changed:
        return
    m = changed[0]
    more = f", and {len(changed) - 1} more matrices lose non-zeros too" if len(changed) > 1 else ""
    raise ConfigError(f"{source}:{m.name}", f"the hardware keeps {m.nonzero_kept} of its {m.nonzero_given} "
                                            f"non-zeros ({m._pattern()}){more}; strict refuses weights the "
                                            "hardware would change: prune them first (lstm_hw.prune or "
                                            "lstm-hw compress)")


def warn_pruning(summary, source: str = "weights", stacklevel: int = 2) -> None:
    """The lines of :func:`pruning_lines` as Python warnings, for the API."""
    for m in summary:
        if m.status != "unchanged":
            category = WeightsPrunedWarning if m.status == "pruned" else NonConformingWeightsWarning
            warnings.warn(m.message(source), category, stacklevel=stacklevel + 1)
