"""From a trained model to a config and weights that ``lstm-hw generate`` takes.

:func:`compress` reads a model (:mod:`lstm_hw.model.torch_io`), fills the model
sizes into the given TOML, prunes each layer's ``W_ih`` and ``W_hh`` (and
the dense head, at ``sparsity.head_density``) bank-balanced to the configured
density, fine-tuning while it prunes when data is given
(:mod:`lstm_hw.compression.finetune`), picks the fraction bits of every fixed-point
format the TOML leaves out, and counts saturation on the data.
:func:`compress_files` writes the result as ``weights.npz``, ``config.toml``
and ``report.json``, all or nothing.

Fraction bits of a format the TOML leaves out (its width stays the default's):
the most fraction bits whose range still holds the largest magnitude seen,
``frac = floor(log2(max_code / max|v|))``, moved down (or, failing that, up)
to the nearest value the config accepts (the sigmoid/tanh table ranges must
fit the pre-activation and cell formats). The magnitudes:

- ``weight``: max |w| of the pruned weights (LSTM and head);
- ``activation``: max(max |x| of the data, 1.0), as |h| < 1;
- ``preact``: max |z| over every gate of a float forward pass on the data,
  capped at the larger table range (beyond it the tables saturate anyway);
- ``cell``: max |c| of the same forward pass;
- ``output`` (with a head): max |y| of the forward
  pass, or without data the bound max_j (sum_i |W_ji| + |b_j|) as |h| < 1;
- ``nonlin`` stays as configured (sigmoid and tanh lie in [-1, 1]), ``bias``
  too (default: the weight x activation product format).

Without data, ``activation``, ``preact`` and ``cell`` keep their defaults.
"""

from __future__ import annotations

import io
import json
import math
import tomllib
import zipfile
from dataclasses import fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..config.schema import Config, QuantConfig, config_mapping, fit_config, parse_config
from .data import check_data, load_data
from .options import FINETUNE_DEFAULTS, check_finetune_options
from ..errors import ConfigError, UsageError
from ..model.pruning import prune_matrix, prune_weights, pruned_matrices
from ..model.torch_io import import_torch
from ..numerics.fixed import Fixed
from ..numerics.sparsity import bank_width, kept_per_bank, utilisation

__all__ = ["compress", "compress_files", "frac_for", "saturation_count",
           "config_toml", "npz_bytes", "split_bits_only"]


def _quant_keys() -> set[str]:
    return {f.name for f in fields(QuantConfig)}


# -- inputs ----------------------------------------------------------------------

# -- numbers ---------------------------------------------------------------------

def frac_for(max_abs: float, bits: int) -> int | None:
    """The most fraction bits of a ``bits``-bit format that still hold ``max_abs`` (None for 0)."""
    if not max_abs > 0:
        return None
    frac = math.floor(math.log2(((1 << (bits - 1)) - 1) / max_abs))
    while ((1 << (bits - 1)) - 1) * 2.0 ** -frac < max_abs:  # guard log2 rounding
        frac -= 1
    return frac


def saturation_count(values, fmt: Fixed) -> int:
    """How many values quantizing to ``fmt`` would saturate (round to a code outside its range)."""
    v = np.asarray(values, dtype=np.float64)
    half = fmt.lsb / 2
    return int(np.count_nonzero((v < fmt.min_real - half) | (v >= fmt.max_real + half)))


def _with_format(config: Config, key: str, fmt: Fixed) -> Config:
    return replace(config, quant=replace(config.quant, **{key: fmt}))


def _valid_frac(config: Config, key: str, bits: int, frac: int) -> Config:
    """``config`` with ``quant.key = {bits, frac'}``, frac' the valid value nearest below ``frac`` (else above)."""
    candidates = list(range(min(frac, 2 * bits), -bits - 1, -1)) + list(range(frac + 1, 2 * bits + 1))
    first_error = None
    for f in candidates:
        try:
            return _with_format(config, key, Fixed(bits, f))
        except ConfigError as e:
            first_error = first_error or e
    raise ConfigError(f"quant.{key}", f"no fraction bits for {bits} bits make a valid config "
                                      f"({first_error.path}: {first_error.reason})")


def _resolved(q: QuantConfig, key: str) -> Fixed:
    """The format in use for ``key``, defaults by rule (bias, output) resolved."""
    return {"bias": q.bias_format, "output": q.output_format}.get(key) or getattr(q, key)


def _default_bits(key: str, config: Config) -> int:
    default = getattr(QuantConfig(), key)
    return default.bits if isinstance(default, Fixed) else config.quant.activation.bits


def split_bits_only(raw: dict) -> dict[str, int]:
    """The formats ``raw`` (shaped like the TOML) gives as ``{ bits = N }`` alone, whose fraction bits
    :func:`compress` chooses: removed from ``raw``, returned as ``{key: N}``; N checked."""
    bits_only = {}
    quant = raw.get("quant")
    for key, value in list(quant.items()) if isinstance(quant, dict) else ():
        if isinstance(value, dict) and set(value) == {"bits"}:
            bits = value["bits"]
            if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 24:
                raise ConfigError(f"quant.{key}.bits", f"must be an integer between 2 and 24, got {bits!r}")
            bits_only[key] = bits
            del quant[key]
    return bits_only


# -- the forward pass used for calibration ------------------------------------------

def _calibrate(config: Config, weights: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every value of a float forward pass per format: x, z, c, h and the head's output."""
    from ..model.design import build_design
    from ..model.golden import float_lstm
    trace: list = []
    design = build_design(replace(config, model=replace(config.model, return_sequences=True)), weights)
    out = float_lstm(design, x, trace=trace)
    values = {"activation": [x.ravel()], "preact": [], "cell": []}
    for steps in trace:
        for z, c, h_t in steps:
            values["preact"].append(z.ravel())
            values["cell"].append(c.ravel())
            values["activation"].append(h_t.ravel())
    if design.head is not None:
        values["output"] = [out.ravel()]
    return {k: np.concatenate(v) for k, v in values.items()}


# -- outputs ---------------------------------------------------------------------

def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive with a fixed timestamp, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Fixed):
        return f"{{ bits = {v.bits}, frac = {v.frac} }}"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for anything json escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(e) for e in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def config_toml(config: Config, comments: dict[str, str] | None = None, header: str = "") -> str:
    """Every resolved value of ``config`` as TOML; ``None`` values (defaults by rule) are left out."""
    comments = comments or {}
    lines = [f"# {line}" for line in header.splitlines()]
    for sect in fields(config):
        obj = getattr(config, sect.name)
        lines.append(f"{'' if not lines else chr(10)}[{sect.name}]")
        for f in fields(obj):
            v = getattr(obj, f.name)
            if v is None:
                continue
            line = f"{f.name} = {_toml_value(v)}"
            note = comments.get(f"{sect.name}.{f.name}")
            lines.append(f"{line:<40} # {note}" if note else line)
    text = "\n".join(lines) + "\n"
    if parse_config(tomllib.loads(text)) != config:  # the file must say exactly this config
        raise AssertionError("config.toml does not round-trip")
    return text


# -- the pipeline ------------------------------------------------------------------

def _prune_groups(config: Config) -> list[tuple[tuple[str, ...], float]]:
    # Each matrix on its own, as build_design prunes them (the two phases of a step); a dense head is left out.
    return [((name,), density) for name, density in pruned_matrices(config)
            if name != "fc.weight" or density < 1.0]


def _density_report(config: Config, weights: dict, groups, model: dict) -> list[dict]:
    """Per pruned matrix of ``weights``, its density and bank loads, and the non-zeros ``model`` gave it."""
    banks = config.sparsity.banks
    out = []
    for names, density in groups:
        w = np.concatenate([weights[n] for n in names], axis=1)
        given = sum(int(np.count_nonzero(model[n])) for n in names)
        width = bank_width(w.shape[1], banks)
        u = utilisation(w, banks, config.hardware.rows)
        out.append({"weights": list(names), "target_density": density, "banks": banks, "bank_width": width,
                     "kept_per_bank": kept_per_bank(width, density),
                     "max_nonzero_per_bank": u["max_load"], "nonzero_model": given, "nonzero": u["nnz"],
                     "size": int(w.size), "density": round(u["nnz"] / w.size, 6),
                     "pe_utilisation": round(u["utilisation"], 6)})
    return out


def _run_report(res, kind: str) -> dict:
    """What the fine-tuning did: its epochs, why it stopped, the validation curve (report.json's ``finetune``)."""
    return {"epochs_run": res.epochs_run, "final_density_epoch": res.ramp_epochs if res.epochs_run else None,
            "best_epoch": res.best_epoch, "stopped": res.stopped,
            "train_sequences": res.train_sequences, "val_sequences": res.val_sequences,
            # what counts as progress: either figure for labels (see finetune); the kept weights are the best
            # accuracy, ties to the lower loss
            "val_metric": None if not res.val_sequences else ("accuracy or loss" if kind == "cross_entropy"
                                                              else "loss"),
            "curve": res.curve}


def compress(model, config=None, data=None, *, epochs: int = FINETUNE_DEFAULTS["epochs"],
             lr: float = FINETUNE_DEFAULTS["lr"], batch_size: int = FINETUNE_DEFAULTS["batch_size"],
             qat: bool = FINETUNE_DEFAULTS["qat"], seed: int = 0,
             val_fraction: float = FINETUNE_DEFAULTS["val_fraction"], patience: int = FINETUNE_DEFAULTS["patience"],
             ramp_epochs: int = FINETUNE_DEFAULTS["ramp_epochs"], lr_schedule: str = FINETUNE_DEFAULTS["lr_schedule"],
             trust_model: bool = False,
             log: Callable[[str], None] = lambda line: None,
             progress=None) -> tuple[dict[str, np.ndarray], Config, dict]:
    """``lstm_hw.compress``: prune (with ``data``, fine-tune while pruning) and choose formats.

    ``model`` is what :func:`lstm_hw.convert` takes (an ``nn.Module``, a
    state_dict, a dict of NumPy arrays, or a path; ``trust_model`` lets a
    PyTorch file that holds more than tensors be unpickled). ``config`` is a
    TOML path or a dict shaped like the TOML, whose formats left out (or given
    as ``{"bits": N}`` alone) are chosen here; a :class:`Config` states every
    format, so none is chosen. ``data`` is ``(x, y)`` or an ``.npz`` path
    holding them. Returns the pruned weights (PyTorch names), the config and
    the report that ``lstm-hw compress`` writes as ``weights.npz``,
    ``config.toml`` and ``report.json``. ``log`` gets the summary lines, and
    ``progress`` (:mod:`lstm_hw.progress`) the fine-tuning epochs with their
    time and the time left.

    Fine-tuning (:mod:`lstm_hw.compression.finetune`): ``val_fraction`` of the
    data is held out; the density ramps down over ``ramp_epochs``, then
    training goes on at the final density until the held-out score has not
    improved for ``patience`` epochs, and its best weights are kept.
    ``epochs`` is the cap (0: prune at once, no training); ``val_fraction =
    0`` trains exactly ``epochs`` epochs on all the data. ``qat`` trains
    through the weight, bias, x and h formats. Defaults:
    :data:`lstm_hw.compression.options.FINETUNE_DEFAULTS`.
    """
    from ..model.torch_io import read_model
    model_name = str(model) if isinstance(model, (str, Path)) else "model"
    weights, sizes = read_model(model, trust_model=trust_model, name=model_name)
    head = f", head {sizes['hidden_size']}->{sizes['output_size']}" if sizes["output_size"] else ""
    log(f"model: {model_name} ({sizes['source']}): LSTM {sizes['input_size']}->{sizes['hidden_size']}, "
        f"{sizes['num_layers']} layer(s){head}")
    notes = list(sizes["notes"])
    for note in notes:
        log(f"note: {note}")
    raw = config_mapping(config)
    bits_only = split_bits_only(raw)
    config = fit_config(raw, sizes, model_name)
    raw_quant = raw.get("quant", {})
    check_finetune_options(epochs=epochs, lr=lr, batch_size=batch_size, val_fraction=val_fraction,
                           patience=patience, ramp_epochs=ramp_epochs, lr_schedule=lr_schedule)

    x = y = kind = None
    data_name = None
    if data is not None:
        if isinstance(data, (str, Path)):
            data_name = str(data)
            x, y, kind = load_data(data, sizes)
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            data_name = "data"
            x, y, kind = check_data(*data, sizes, data_name)
        else:
            raise UsageError(f"data: an (x, y) pair or an .npz path, not a {type(data).__name__}")
        log(f"data: {data_name}: {x.shape[0]} sequences of {x.shape[1]} steps, loss {kind}")
        import_torch("fine-tuning with --data")

    groups = _prune_groups(config)
    banks, pattern = config.sparsity.banks, config.sparsity.pattern
    chosen: dict[str, dict] = {}

    def choose(cfg: Config, key: str, max_abs: float | None, why: str) -> Config:
        if key in raw_quant or key in chosen:  # given, or locked in for --qat
            return cfg
        bits = bits_only.get(key) or _default_bits(key, cfg)
        frac = frac_for(max_abs, bits) if max_abs is not None else None
        if frac is None:
            if key in bits_only:  # keep the default's integer bits
                default = _resolved(cfg.quant, key)
                chosen[key] = {"rule": f"default integer bits ({why})"}
                return _valid_frac(cfg, key, bits, default.frac + bits - default.bits)
            chosen[key] = {"rule": f"default ({why})"}
            return cfg
        cfg = _valid_frac(cfg, key, bits, frac)
        chosen[key] = {"rule": why, "max_abs": float(max_abs)}
        return cfg

    def weight_max(w):
        return max(float(np.abs(w[n]).max()) for n in w if n.startswith("weight_") or n == "fc.weight")

    losses: dict = {}
    schedule: list[float] = []
    res = None
    if x is None:
        log(f"pruning to density {config.sparsity.density:g} ({banks} banks); no data: prune and quantize only, "
            "no fine-tuning")
        pruned = prune_weights(weights, config)
    else:
        from . import finetune as ft
        formats = {}
        if qat:  # trained with the formats it will have: choose them from the dense weights and x
            config = choose(config, "weight", weight_max(weights), "max |w| (before fine-tuning, --qat)")
            config = choose(config, "activation", max(float(np.abs(x).max()), 1.0), "max(max |x|, 1)")
            q = config.quant
            formats = {"weight_format": q.weight, "bias_format": q.bias_format, "activation_format": q.activation}
        losses["dense_float"] = ft.evaluate_loss(weights, x, y, kind)
        qat_text = " with quantization-aware training" if qat else ""
        if epochs == 0:
            how = "at once (0 epochs: no fine-tuning)"
        elif val_fraction:
            how = (f"while fine-tuning{qat_text} for at most {epochs} epoch(s), until the {val_fraction:.0%} held "
                   f"out has not improved for {patience}")
        else:
            how = f"while fine-tuning{qat_text} for {epochs} epoch(s) on all the data"
        log(f"pruning to density {config.sparsity.density:g} ({banks} banks) {how}; "
            f"dense loss {losses['dense_float']:.6g}")
        pgroups = [ft.PruneGroup(names, density, lambda w, d: prune_matrix(w, banks, d, pattern)[0])
                   for names, density in groups]
        res = ft.finetune(weights, x, y, kind, pgroups, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                          val_fraction=val_fraction, patience=patience, ramp_epochs=ramp_epochs,
                          lr_schedule=lr_schedule, progress=progress, **formats)
        pruned, schedule = res.weights, res.densities
        losses["epochs"] = res.losses
        losses["pruned_float"] = ft.evaluate_loss(pruned, x, y, kind)
        if epochs:
            scored = ""
            if res.best_epoch:
                best = res.curve[res.best_epoch - 1]
                scored = (f", best validation at epoch {best['epoch']}: loss {best['val_loss']:.4g}"
                          + (f", accuracy {best['val_accuracy']:.2%}" if "val_accuracy" in best else "")
                          + f" on {res.val_sequences} held-out sequences (kept)")
            log(f"fine-tuned {res.epochs_run} epoch(s) of at most {epochs}, stopped by "
                f"{'patience' if res.stopped == 'patience' else 'the cap'}, density {config.sparsity.density:g} "
                f"from epoch {res.ramp_epochs}{scored}")

    config = choose(config, "weight", weight_max(pruned), "max |w|")
    if x is not None:
        config = choose(config, "activation", max(float(np.abs(x).max()), 1.0), "max(max |x|, 1)")
        calib = _calibrate(config, pruned, x)
        table_range = max(config.activation.sigmoid_range, config.activation.tanh_range)
        config = choose(config, "preact", min(float(np.abs(calib["preact"]).max()), table_range),
                        "max |z| of a float forward pass, capped at the table range")
        config = choose(config, "cell", float(np.abs(calib["cell"]).max()), "max |c| of a float forward pass")
        if "output" in calib:
            config = choose(config, "output", float(np.abs(calib["output"]).max()),
                            "max |y| of a float forward pass")
    else:
        calib = {}
        for key in ("activation", "preact", "cell"):
            config = choose(config, key, None, "no data")
        if "fc.weight" in pruned:
            bound = float((np.abs(pruned["fc.weight"]).sum(axis=1) + np.abs(pruned["fc.bias"])).max())
            config = choose(config, "output", bound, "max_j sum_i |W_ji| + |b_j|, as |h| < 1")

    unchosen = sorted(set(bits_only) - set(chosen))
    if unchosen:
        raise ConfigError(f"quant.{unchosen[0]}", "needs frac too: only the weight, activation, preact, cell and "
                                                  "output fraction bits are chosen from the model and data")
    q = config.quant
    formats_report = {}
    for key in sorted(_quant_keys() - {"rounding"} - ({"output"} if not config.model.output_size else set())):
        fmt = _resolved(q, key)
        source = "config" if key in raw_quant else ("chosen" if "max_abs" in chosen.get(key, {}) else "default")
        formats_report[key] = {"bits": fmt.bits, "frac": fmt.frac, "source": source, **chosen.get(key, {})}
    log("formats: " + ", ".join(f"{k} {_resolved(q, k)}"
                                f"{' (chosen)' if v['source'] == 'chosen' else ''}"
                                for k, v in formats_report.items()))

    biases = np.concatenate([pruned[f"bias_ih_l{k}"] + pruned[f"bias_hh_l{k}"] for k in range(sizes["num_layers"])])
    weight_values = np.concatenate([pruned[n].ravel() for n in pruned if n.startswith("weight_") or n == "fc.weight"])
    samples = {"weight": weight_values, "bias": biases, **calib}
    saturation = {}
    for key, values in samples.items():
        fmt = _resolved(q, key)
        saturation[key] = {"count": saturation_count(values, fmt), "values": int(values.size),
                           "max_abs": float(np.abs(values).max())}
    log("saturation: " + ", ".join(f"{k} {v['count']}/{v['values']}" for k, v in saturation.items())
        + ("" if x is not None else " (weights only: no data)"))

    report = {
        "model": {"path": model_name, "source": sizes["source"], "batch_first": sizes["batch_first"],
                  **{k: sizes[k] for k in ("input_size", "hidden_size", "num_layers", "output_size")}},
        "notes": notes,
        "data": None if x is None else {"path": data_name, "sequences": int(x.shape[0]),
                                        "steps": int(x.shape[1]), "loss": kind},
        "finetune": None if x is None else {
            "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed, "qat": qat,
            "density_schedule": schedule, "val_fraction": val_fraction, "patience": patience,
            "ramp_epochs": ramp_epochs, "lr_schedule": lr_schedule, **_run_report(res, kind)},
        "pruning": _density_report(config, pruned, groups, weights),
        "formats": formats_report,
        "saturation": saturation,
        "losses": losses,
    }
    for entry in report["pruning"]:
        log(f"{' + '.join(entry['weights'])}: {entry['nonzero']} of the model's {entry['nonzero_model']} non-zeros "
            f"kept, density {entry['density']:.4g}, fullest bank "
            f"{entry['max_nonzero_per_bank']} of {entry['bank_width']}, PE utilisation {entry['pe_utilisation']:.1%}")
    if x is not None:
        from ..model.design import build_design
        from ..model.golden import float_lstm, run_golden_real
        design = build_design(config, pruned)
        sample = x[:256]
        err = np.abs(run_golden_real(design, sample) - float_lstm(design, sample))
        report["golden_vs_float"] = {"sequences": int(sample.shape[0]), "max_abs_error": float(err.max()),
                                     "mean_abs_error": float(err.mean())}
        log(f"golden model vs float on {sample.shape[0]} sequences: max abs error {err.max():.3g}, "
            f"mean {err.mean():.3g}")
        if losses:
            log(f"loss: dense {losses['dense_float']:.6g} -> pruned {losses['pruned_float']:.6g} (float)")

    return pruned, config, report


def compress_files(model, config=None, out_dir="compressed", data=None, *, force: bool = False,
                   plots: bool = False, log: Callable[[str], None] = lambda line: None, **options) -> dict:
    """``lstm-hw compress``: :func:`compress`, written as ``weights.npz``, ``config.toml`` and ``report.json``.

    All or nothing into ``out_dir``, which must be empty unless ``force``.
    ``plots`` also writes the sparsity pattern and weight histogram of every
    layer (:func:`write_weight_plots`). Returns the report.
    """
    from ..emit.files import check_output_dir, write_files
    out = check_output_dir(out_dir, force=force)  # before the slow part
    pruned, config, report = compress(model, config, data, log=log, **options)
    comments = {f"quant.{k}": f"chosen: {v['rule']}: {v['max_abs']:.4g}" for k, v in report["formats"].items()
                if v["source"] == "chosen"}
    source = Path(model).name if isinstance(model, (str, Path)) else "a model in memory"
    header = (f"Written by lstm-hw compress from {source}; see report.json.\n"
              f"lstm-hw generate config.toml -w weights.npz")
    files = {
        "weights.npz": npz_bytes(pruned),
        "config.toml": config_toml(config, comments, header).encode(),
        "report.json": (json.dumps(report, indent=2) + "\n").encode(),
    }
    for path in write_files(out, files, force=force):
        log(f"wrote {path}")
    if plots:
        for path in write_weight_plots(config, pruned, out):
            log(f"wrote {path}")
    return report


def write_weight_plots(config: Config, weights: dict, out_dir) -> list[Path]:
    """Per layer (and head): the sparsity pattern of each matrix with bank boundaries
    (``sparsity_l<k>_ih.png``, ``sparsity_l<k>_hh.png``, ``sparsity_fc.png``), and the weight histogram
    with the weight format's range (``weights_l<k>.png``, ``weights_fc.png``), in ``out_dir``."""
    from .plots import plot_sparsity, plot_weight_histogram
    out, banks, fmt = Path(out_dir), config.sparsity.banks, config.quant.weight
    written = []
    for k in range(config.model.num_layers):
        # Each matrix is banked (and pruned) on its own: one sparsity picture each.
        for part in ("ih", "hh"):
            written.append(plot_sparsity(weights[f"weight_{part}_l{k}"], banks, out / f"sparsity_l{k}_{part}.png",
                                         title=f"Layer {k} W_{part}, {banks} banks"))
        w = np.concatenate([weights[f"weight_ih_l{k}"], weights[f"weight_hh_l{k}"]], axis=1)
        written.append(plot_weight_histogram(w, fmt, out / f"weights_l{k}.png", title=f"Layer {k} weights"))
    if "fc.weight" in weights:
        written.append(plot_sparsity(weights["fc.weight"], banks, out / "sparsity_fc.png",
                                     title=f"Head fc.weight, {banks} banks"))
        written.append(plot_weight_histogram(weights["fc.weight"], fmt, out / "weights_fc.png",
                                             title="Head fc.weight weights"))
    return written
