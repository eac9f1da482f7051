"""One point of a sweep, as a pure function of its config, the model's weights and the data.

:func:`evaluate_point` runs on a Dask worker. It compresses the weights to the
point's config exactly as ``lstm-hw compress`` does (prune bank-balanced,
fine-tune for at most ``finetune_epochs`` epochs, choose the fraction bits left
out), scores the bit-exact golden model of that design on the validation data,
reads the schedule's cycles per timestep and latency, and estimates resources
and clock with :func:`lstm_hw.synth.estimate.estimate` (no synthesis).

:func:`point_key` names the result in the cache: a digest of the point's
config, the weights, both data sets, the fine-tuning options and lstm-hw's own
source, so a changed input or a changed lstm-hw never reuses a stale result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError

__all__ = ["Inputs", "evaluate_point", "warm_up", "point_key", "array_digest", "weights_digest", "source_digest",
           "CONFIG_HEADER"]

#: The first lines of every front/<digest>/config.toml.
CONFIG_HEADER = "Written by lstm-hw explore; see points.json.\nlstm-hw generate config.toml -w weights.npz"


@dataclass(frozen=True, eq=False)
class Inputs:
    """What every point of a sweep shares, sent to each worker once: the model's weights (PyTorch names),
    the training data (fine-tuning, calibration) and the validation data (scores)."""

    weights: dict
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def weights_digest(weights: dict) -> str:
    """SHA-256 of named arrays, by name."""
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(f"{name}\0{array_digest(weights[name])}\0".encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 of lstm-hw's Python sources (every ``.py`` of its packages), so a cached result never outlives
    the code that made it."""
    import lstm_hw
    import lstm_hw.generators
    h = hashlib.sha256()
    for root in (Path(lstm_hw.__file__).parent, Path(lstm_hw.generators.__file__).parent):
        for path in sorted(root.rglob("*.py")):
            h.update(f"{path.relative_to(root)}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def point_key(raw: dict, weights: str, train: str, val: str, options: dict) -> str:
    """The cache key of a point: SHA-256 of its config mapping, the weights' and data's digests, the
    fine-tuning ``options`` and :func:`source_digest`."""
    text = json.dumps({"config": raw, "weights": weights, "train": train, "val": val, "options": options,
                       "source": source_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def warm_up() -> None:
    """Import what :func:`evaluate_point` needs (PyTorch above all), so that a worker's first point costs what
    the others do."""
    from ..compression import finetune  # noqa: F401
    from ..generators import top  # noqa: F401
    from ..synth import estimate  # noqa: F401


def evaluate_point(raw: dict, inputs: Inputs, *, finetune_epochs: int = 0, seed: int = 0) -> dict:
    """Compress, score and estimate the design of the config ``raw`` (shaped like the TOML).

    Returns ``{"row": {...}, "config_toml": str, "weights_npz": bytes}``; ``row``
    holds ``digest`` (SHA-256 of the two files, first 16 hex digits),
    ``accuracy`` or ``mse``, ``cycles_per_timestep``, ``latency_cycles``,
    ``dsp``, ``bram36``, ``lut``, ``ff``, ``fmax_mhz``, ``fits``, ``clock_mhz``
    (the smaller of ``hardware.clock_mhz`` and the estimate), ``real_gops`` and
    ``effective_gops`` at that clock, and ``finetune_epochs_run``. A config
    that compress refuses (a :class:`~lstm_hw.errors.ConfigError`) gives
    ``{"error": message}``.
    """
    from ..compression.compress import compress, config_toml, npz_bytes
    from ..compression.evaluate import score
    from ..compression.options import FINETUNE_DEFAULTS
    from ..config.parts import parse_part
    from ..emit.files import build_top, metadata
    from ..generators.top import mark_built
    from ..model.design import build_design
    from ..model.golden import run_golden_real
    from ..synth.estimate import estimate
    from ..synth.report import throughput, utilization, verdict

    val_fraction = FINETUNE_DEFAULTS["val_fraction"] if finetune_epochs else 0.0
    try:
        pruned, config, report = compress(inputs.weights, raw, inputs.train, epochs=finetune_epochs,
                                          val_fraction=val_fraction, seed=seed)
    except ConfigError as e:   # this config's own fault; anything else (no PyTorch, too little data) ends the sweep
        return {"error": str(e)}
    design = build_design(config, pruned)
    x, y = inputs.val
    metrics = score(run_golden_real(design, x), y)
    # One top for both: the metadata as <top>.json holds it (without rendering the Verilog) and the estimate.
    top = build_top(design)
    mark_built(top)     # built for its figures, never elaborated
    meta = metadata(design, top, [])
    est = estimate(design, top)
    util = utilization(est, parse_part(config.hardware.part))
    clock = min(config.hardware.clock_mhz, float(est["fmax_mhz"]))
    perf = throughput(meta, clock)
    config_text = config_toml(config, header=CONFIG_HEADER).encode()
    weights_npz = npz_bytes(pruned)
    digest = hashlib.sha256(config_text + weights_npz).hexdigest()[:16]
    row = {"digest": digest, **metrics,
           "cycles_per_timestep": meta["cycles_per_timestep"], "latency_cycles": meta["latency_cycles"],
           "dsp": est["dsps"], "bram36": est["bram36"], "lut": est["luts"], "ff": est["ffs"],
           "fmax_mhz": round(float(est["fmax_mhz"]), 1), "fits": verdict(util)["fits"],
           "clock_mhz": round(clock, 1), "real_gops": perf["real_gops"], "effective_gops": perf["effective_gops"],
           "finetune_epochs_run": report["finetune"]["epochs_run"]}
    return {"row": row, "config_toml": config_text.decode(), "weights_npz": weights_npz}
