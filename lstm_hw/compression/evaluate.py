"""Accuracy at every stage of compression: float, pruned float, bit-exact golden model, RTL.

The data file is an ``.npz`` with ``x``, real-valued ``(N, T, I)``, and ``y``:
integer class labels ``(N,)`` for a classifier (accuracy of the argmax of the
last output step), or real targets ``(N, O)`` (the last output step) or
``(N, T, O)`` (every step), scored by mean squared error.

Stages, each on the same inputs:

``float``         the model as given (``original`` weights if passed, else the
                  evaluated weights), unpruned, float64, exact sigmoid/tanh;
``pruned_float``  the weights as the design prunes them, still float64;
``golden``        the bit-exact model of the generated hardware;
``rtl``           on request, the generated Verilog under a simulator, on the
                  first ``rtl_samples`` sequences; it must equal ``golden``
                  there, and the mismatch count is reported.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from . import data
from ..config.schema import Config
from ..errors import LstmHwError, UsageError
from ..model.design import build_design
from ..model.golden import float_lstm, run_golden_real

__all__ = ["load_data", "score", "evaluate", "density_configs", "density_sweep", "write_plots"]


def load_data(path: str | Path, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz``, checked against the model's sizes (see :mod:`lstm_hw.compression.data`)."""
    m = config.model
    x, y, kind = data.load_data(path, {"input_size": m.input_size, "hidden_size": m.hidden_size,
                                      "output_size": m.output_size})
    if kind == "mse_sequence" and not m.return_sequences:
        raise UsageError(f"{path}: per-step targets (N, T, O) need model.return_sequences = true")
    return x, y


def score(outputs: np.ndarray, y: np.ndarray) -> dict:
    """``{"accuracy": ...}`` for labels, ``{"mse": ...}`` for real targets; ``outputs`` is (N, T', O)."""
    if np.issubdtype(y.dtype, np.integer):
        return {"accuracy": float(np.mean(np.argmax(outputs[:, -1], axis=1) == y))}
    pred = outputs[:, -1] if y.ndim == 2 else outputs
    return {"mse": float(np.mean((pred - y) ** 2))}


def _dense(config: Config) -> Config:
    """The same model with nothing pruned."""
    return replace(config, sparsity=replace(config.sparsity, density=1.0, head_density=1.0))


def evaluate(config: Config, weights: dict, x: np.ndarray, y: np.ndarray, *, original: dict | None = None,
             rtl: str | None = None, rtl_samples: int = 32, build_dir: str | Path | None = None,
             progress=None) -> dict:
    """Score every stage; see the module docstring. ``progress`` (:mod:`lstm_hw.progress`) is told each
    stage as it starts, and the simulation's build and timesteps with ``rtl``."""
    from ..progress import stage

    def say(name):
        stage(progress, f"evaluate: {name}")

    results = {}
    say("float")
    results["float"] = score(float_lstm(build_design(_dense(config), original or weights), x), y)
    say("pruned_float")
    design = build_design(config, weights)
    results["pruned_float"] = score(float_lstm(design, x), y)
    say("golden")
    golden = run_golden_real(design, x)
    results["golden"] = score(golden, y)
    if rtl is not None:
        from ..sim.top import simulate_top
        n = max(1, min(rtl_samples, x.shape[0]))
        say(f"rtl ({rtl}, {n} sequences)")
        import tempfile
        with tempfile.TemporaryDirectory(prefix="lstm-hw-eval-") as tmp:
            res = simulate_top(design, design.io_format.quantize(x[:n]), sim=rtl, build_dir=build_dir or tmp,
                               progress=progress)
        out = design.output_format.to_real(res.output)
        results["rtl"] = {**score(out, y[:n]), "samples": n, "mismatches_vs_golden": int(res.mismatches),
                          "golden_on_same_samples": score(golden[:n], y[:n])}
    return results


def density_configs(config: Config, densities) -> list[Config]:
    """``config`` at each density (a list, or a string of comma-separated numbers), checked before any work."""
    if isinstance(densities, str):
        try:
            densities = [float(d) for d in densities.split(",")]
        except ValueError:
            raise UsageError(f"--densities: expected numbers separated by commas, got {densities!r}") from None
    out = []
    for d in densities:
        try:
            out.append(replace(config, sparsity=replace(config.sparsity, density=d)))
        except LstmHwError as e:
            raise UsageError(f"--densities: {d:g}: {e}") from None
    return out


def density_sweep(configs: list[Config], weights: dict, x, y, *, original: dict | None = None,
                  progress=None) -> list[dict]:
    """The weights pruned one-shot to each config's density: float, pruned float and golden scores."""
    from ..progress import steps
    rows = []
    with steps(progress, "density sweep", len(configs), "density") as done:
        for config in configs:
            r = evaluate(config, weights, x, y, original=original)
            metric = "accuracy" if "accuracy" in r["golden"] else "mse"
            rows.append({"density": config.sparsity.density, "weight_bits": config.quant.weight.bits,
                         "metric": metric, **{k: r[k][metric] for k in ("float", "pruned_float", "golden")}})
            done(len(rows))
    return rows


def write_plots(config: Config, weights: dict, out_dir, sweep: list[dict] | None = None) -> list[Path]:
    """Each matrix's sparsity pattern and weight histogram as pruned, and accuracy against the sweep's densities."""
    from .compress import write_weight_plots
    from ..model.pruning import prune_weights
    from .plots import plot_accuracy_vs_density
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = write_weight_plots(config, prune_weights(weights, config), out_dir)
    if sweep and sweep[0]["metric"] == "accuracy":
        written.append(plot_accuracy_vs_density(sweep, Path(out_dir) / "accuracy_vs_density.png",
                                                title="Accuracy against density (one-shot pruning)"))
    return written
