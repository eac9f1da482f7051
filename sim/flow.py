"""Flow modes of a stream bench: how often the source idles and the sink stalls, seeded.

Every end-to-end run streams its sequences once per mode, in turn, inside one
simulation (:data:`FLOW_MODES`: neither, random input idle, random output
backpressure, both). A mode's random cycles come from :func:`mode_rng`, which
depends only on the run's seed and the mode's position in the run, so the
same seed and modes replay a run exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["FLOW_MODES", "FlowMode", "RandomFlags", "flow_modes", "mode_rng", "modes_from_json", "modes_to_json"]

#: The names of the four modes that :func:`flow_modes` returns, in their order.
FLOW_MODES = ("steady", "idle", "backpressure", "both")


@dataclass(frozen=True)
class FlowMode:
    """One flow mode: its name, the probability of an idle input cycle and of a not-ready output cycle.

    Both probabilities are below 1 (a probability of 1 would stop the stream).
    """

    name: str
    idle: float = 0.0
    backpressure: float = 0.0

    def __post_init__(self):
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"flow mode name must be an identifier, not {self.name!r}")
        for key in ("idle", "backpressure"):
            p = getattr(self, key)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"flow mode {self.name}: {key} must be in [0, 1), got {p}")

    def __str__(self) -> str:
        return f"{self.name} (idle {self.idle}, backpressure {self.backpressure})"


def flow_modes(idle: float = 0.25, backpressure: float = 0.4) -> tuple[FlowMode, ...]:
    """The four modes of :data:`FLOW_MODES`, with *idle* and *backpressure* where a mode has them."""
    return (FlowMode("steady"), FlowMode("idle", idle=idle), FlowMode("backpressure", backpressure=backpressure),
            FlowMode("both", idle=idle, backpressure=backpressure))


def mode_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one random stream (0: input idle, 1: output backpressure) of mode *index*."""
    return np.random.default_rng([seed, index, stream])


def modes_to_json(modes) -> str:
    """Serialize *modes* for a bench's environment."""
    return json.dumps([asdict(mode) for mode in modes])


def modes_from_json(text: str) -> tuple[FlowMode, ...]:
    """Parse what :func:`modes_to_json` wrote; at least one mode, names unique."""
    modes = tuple(FlowMode(**item) for item in json.loads(text))
    if not modes:
        raise ValueError("no flow modes given")
    names = [mode.name for mode in modes]
    if len(set(names)) != len(names):
        raise ValueError(f"flow mode names repeat: {names}")
    return modes


class RandomFlags:
    """An endless iterator of bools, each True with probability :attr:`p`, from a seeded generator.

    For the ``idle`` of a :class:`~lstm_hw.sim.axis.StreamDriver` and the
    ``backpressure`` of a :class:`~lstm_hw.sim.axis.StreamMonitor`; :meth:`set`
    switches probability and generator between modes while they run. With
    ``p = 0`` nothing is drawn, and p = 1 (every draw True) holds a stream
    still, e.g. to stall an output on purpose.
    """

    def __init__(self) -> None:
        self._p = 0.0
        self._rng = np.random.default_rng(0)

    @property
    def p(self) -> float:
        return self._p

    def set(self, p: float, rng: np.random.Generator | None = None) -> None:
        """From the next draw on, True with probability *p*, drawn from *rng* (if given)."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {p}")
        self._p = p
        if rng is not None:
            self._rng = rng

    def __iter__(self) -> RandomFlags:
        return self

    def __next__(self) -> bool:
        if self._p == 0.0:
            return False
        return self._p == 1.0 or bool(self._rng.random() < self._p)
