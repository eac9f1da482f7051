"""``hardware.macs``: a MAC budget that chooses ``hardware.rows`` and, for dense matrices, ``sparsity.banks``.

Every layer has ``rows x banks`` multipliers and the head ``banks``, so a
mapping uses ``banks x (num_layers x rows + [head])`` MACs. Among the mappings
within the budget that the config's checks accept (``io_lanes`` among them),
:func:`choose_mapping` takes the one with the fewest predicted cycles per
timestep (the metadata's ``cycles_per_timestep``: passes, padding of banks
that do not divide the columns, the tail, the streams and ``interleave`` all
count), then the fewest MACs, then the fewest rows. Sparse matrices keep
their ``banks`` (a pruning choice the user makes), so only rows are chosen.

The search is a branch and bound: a mapping takes at least its layers'
issue cycles plus the two hand-over cycles a step (``passes x k + 2``,
from the config alone), so mappings are built (with the config's seeded
weights) and timed exactly in the order of that bound, until the bound
reaches the best time found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ..errors import ConfigError
from ..numerics.sparsity import bank_width, kept_per_bank

__all__ = ["Mapping", "ROW_CHOICES", "mapping_macs", "banks_chosen", "choose_mapping"]

#: The row-lane counts a config accepts.
ROW_CHOICES = (1, 2, *range(4, 257, 4))


@dataclass(frozen=True)
class Mapping:
    """The chosen mapping and why: its ``rows``, ``banks`` and ``macs``, its predicted ``cycles_per_timestep``,
    the ``candidates`` within the budget the checks accept, and how many were built and timed (``timed``)."""

    rows: int
    banks: int
    macs: int
    cycles_per_timestep: float
    candidates: int
    timed: int
    budget: int
    banks_chosen: bool

    def reason(self) -> str:
        """One line for ``generate``'s summary and the metadata."""
        what = "rows and banks" if self.banks_chosen else "rows (banks are the sparsity's)"
        return (f"hardware.macs = {self.budget} chose {what}: {self.rows} rows x {self.banks} banks, {self.macs} "
                f"MACs, {self.cycles_per_timestep:g} cycles per timestep predicted, the fewest of "
                f"{self.candidates} mappings within the budget ({self.timed} timed)")

    def to_dict(self) -> dict:
        return {"budget": self.budget, "rows": self.rows, "banks": self.banks, "macs": self.macs,
                "banks_chosen": self.banks_chosen, "cycles_per_timestep": self.cycles_per_timestep,
                "candidates": self.candidates, "timed": self.timed}


def mapping_macs(model, rows: int, banks: int) -> int:
    """Multipliers of ``rows x banks`` layers and the head (one row lane) for a model config section."""
    return banks * (model.num_layers * rows + (1 if model.output_size else 0))


def banks_chosen(model, sparsity) -> bool:
    """The budget chooses the banks too: every matrix is dense (density 1, and the head's too)."""
    return sparsity.density == 1.0 and (model.output_size == 0 or sparsity.head_density == 1.0)


def _issue_bound(model, sparsity, rows: int, banks: int) -> int:
    """Cycles a timestep takes at least: the slowest stage's issue cycles, plus two hand-over cycles for a layer."""
    m, s = model, sparsity
    passes = -(-4 * m.hidden_size // rows)
    bound = 0
    for layer in range(m.num_layers):
        k = (kept_per_bank(bank_width(m.input_size if layer == 0 else m.hidden_size, banks), s.density)
             + kept_per_bank(bank_width(m.hidden_size, banks), s.density))
        bound = max(bound, passes * k + 2)
    if m.output_size:
        bound = max(bound, m.output_size * kept_per_bank(bank_width(m.hidden_size, banks), s.head_density))
    return bound


def _timed(config) -> float:
    """The metadata's ``cycles_per_timestep`` of ``config`` (built with its seeded weights)."""
    from ..emit.files import build_top, metadata
    from ..generators.top import mark_built
    from ..model.design import build_design
    design = build_design(config)
    top = build_top(design)
    try:
        return metadata(design, top, sources=[])["cycles_per_timestep"]
    finally:
        mark_built(top)


def choose_mapping(model, quant, sparsity, activation, hardware) -> Mapping:
    """The mapping ``hardware.macs`` chooses for a config's sections (their ``rows``, and ``banks`` where they
    are chosen, are ignored: a config before and after the choice gets the same answer, searched once).
    A :class:`~lstm_hw.errors.ConfigError` when no mapping fits the budget."""
    if banks_chosen(model, sparsity):
        sparsity = replace(sparsity, banks=1)
    return _search(model, quant, sparsity, replace(hardware, rows=ROW_CHOICES[0]), activation)


@lru_cache(maxsize=64)
def _search(model, quant, sparsity, hardware, activation) -> Mapping:
    from .schema import Config
    budget, choose_banks = hardware.macs, banks_chosen(model, sparsity)
    banks_range = range(1, 257) if choose_banks else (sparsity.banks,)
    candidates, refused = [], None
    for banks in banks_range:
        for rows in ROW_CHOICES:
            macs = mapping_macs(model, rows, banks)
            if macs > budget:
                break
            try:
                cand = Config(model=model, quant=quant, sparsity=replace(sparsity, banks=banks),
                              activation=activation, hardware=replace(hardware, rows=rows, macs=0))
            except ConfigError as e:
                refused = refused or e
                continue
            candidates.append((_issue_bound(model, sparsity, rows, banks), macs, rows, banks, cand))
    if not candidates and refused is not None:   # what the checks say of the smallest mapping
        raise refused
    if not candidates:
        raise ConfigError("hardware.macs", f"is {budget}, fewer than the {mapping_macs(model, 1, banks_range[0])} "
                                           f"MACs the smallest mapping of this model takes")
    candidates.sort(key=lambda c: c[:4])
    best, timed = None, 0
    for bound, macs, rows, banks, cand in candidates:
        if best is not None and bound > best[0]:
            break
        try:
            cycles = _timed(cand)
        except ConfigError:      # e.g. its seeded weights' sums need more than sum_bits
            continue
        timed += 1
        if best is None or (cycles, macs, rows) < best[:3]:
            best = (cycles, macs, rows, banks)
    if best is None:
        raise ConfigError("hardware.macs", f"is {budget}: every mapping within it that passes the config's checks "
                                           f"fails to build")
    cycles, macs, rows, banks = best
    return Mapping(rows=rows, banks=banks, macs=macs, cycles_per_timestep=cycles, candidates=len(candidates),
                   timed=timed, budget=budget, banks_chosen=choose_banks)
