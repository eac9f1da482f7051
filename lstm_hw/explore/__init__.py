"""Design-space exploration: a sweep of configs on Dask, scored by the golden model and the resource estimate,
with its Pareto fronts (``lstm-hw explore``, :func:`explore`)."""

from .run import Exploration, explore

__all__ = ["explore", "Exploration"]
