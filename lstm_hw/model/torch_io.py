"""Read a trained LSTM (optionally with a dense head) from PyTorch or ``.npz`` files.

:func:`load_model` accepts

- a whole ``nn.Module`` saved with ``torch.save(model, path)`` that contains
  exactly one ``nn.LSTM`` and optionally one ``nn.Linear`` on its output,
  only with ``trust_model`` (unpickling it can run code from the file);
- a state_dict (``torch.save(model.state_dict(), path)``), or a checkpoint
  dict holding one under ``state_dict`` / ``model_state_dict`` / ``model``;
  the LSTM's arrays are found by their suffix (``lstm.weight_ih_l0``,
  ``rnn.weight_hh_l1``) and the head is the 2-D ``*.weight`` / ``*.bias``
  pair whose input width is the hidden size;
- ``.npz`` with the same names (prefixed or not);
- an ONNX model (``.onnx``, read by :mod:`lstm_hw.model.onnx_io`).

and returns the canonical names ``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}`` and, with a head, ``fc.weight`` (O x H) and
``fc.bias`` (O), as float64 arrays. PyTorch is imported only when a PyTorch
file is read.
"""

from __future__ import annotations

import pickle
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, UsageError
from .onnx_io import read_onnx

__all__ = ["import_torch", "load_model", "read_model", "model_sizes"]

_LSTM_KEY = re.compile(r"^(?:(?P<prefix>.*)\.)?(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                       r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$")
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
# What torch.load(weights_only=True) says of a pickle that names a class or function it does not allow,
# and of a file it cannot parse at all.
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global")
_WO_DETAIL = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")


def import_torch(purpose: str):
    """``torch``, or a one-line :class:`UsageError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise UsageError(f"{purpose} needs PyTorch: pip install 'lstm-hw[torch]'") from None
    return torch


def load_model(path: str | Path, *, trust_model: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """Canonical float64 weights and the sizes of the model in ``path``.

    A PyTorch file is read with ``torch.load(weights_only=True)``, which runs
    no code from the file. A file that holds more than tensors (a whole
    pickled ``nn.Module``) is refused with a :class:`UsageError` unless
    ``trust_model``, which unpickles it in full. An ONNX file's external data
    must lie in the model's folder (:mod:`lstm_hw.model.onnx_io`).

    ``sizes`` holds ``input_size``, ``hidden_size``, ``num_layers``,
    ``output_size`` (0 without a head), ``batch_first`` (``None`` when the
    file does not say), ``source`` (``"module"``, ``"state_dict"``,
    ``"npz"`` or ``"onnx"``) and ``notes``: lines worth telling the user.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "no such file")
    notes: list[str] = []
    if path.suffix == ".npz":
        raw, batch_first, source = _read_npz(path), None, "npz"
    elif path.suffix == ".onnx":
        raw, batch_first = read_onnx(path, notes)
        source = "onnx"
    else:
        obj = _torch_load(path, notes, trust_model)
        if _is_module(obj):
            raw, batch_first = _from_module(obj, path, notes)
            source = "module"
        else:
            raw, batch_first, source = _state_dict(obj, path), None, "state_dict"
    return _finish(raw, path, notes, batch_first, source)


def read_model(model, *, trust_model: bool = False, name: str = "model") -> tuple[dict[str, np.ndarray], dict]:
    """:func:`load_model` for a model in memory too: an ``nn.Module`` holding one ``nn.LSTM`` (and
    optionally one ``nn.Linear`` head), whatever its class; a ``state_dict`` or checkpoint dict of tensors;
    a dict of NumPy arrays with PyTorch's names; or a path. ``name`` stands for the model in messages.
    """
    if isinstance(model, (str, Path)):
        return load_model(model, trust_model=trust_model)
    notes: list[str] = []
    torch = sys.modules.get("torch")  # a tensor or a module in memory means torch is imported already
    if torch is not None and isinstance(model, torch.nn.Module):
        raw, batch_first = _from_module(model, name, notes)
        return _finish(raw, name, notes, batch_first, "module")
    if isinstance(model, dict):
        return _finish(_state_dict(model, name), name, notes, None, "state_dict")
    raise ConfigError(name, f"is a {type(model).__name__}: give an nn.Module, a state_dict, a dict of NumPy "
                            "arrays with PyTorch's names, or a .pt, .pth, .npz or .onnx path")


def _finish(raw: dict, where, notes: list[str], batch_first, source: str) -> tuple[dict[str, np.ndarray], dict]:
    weights = _canonical(raw, where, notes)
    sizes = model_sizes(weights)
    sizes.update(batch_first=batch_first, source=source, notes=notes)
    return weights, sizes


def model_sizes(weights: dict[str, np.ndarray]) -> dict:
    """``input_size``, ``hidden_size``, ``num_layers``, ``output_size`` of canonical weights."""
    layers = sum(1 for name in weights if name.startswith("weight_ih_l"))
    return {"input_size": int(weights["weight_ih_l0"].shape[1]),
            "hidden_size": int(weights["weight_hh_l0"].shape[1]),
            "num_layers": layers,
            "output_size": int(weights["fc.weight"].shape[0]) if "fc.weight" in weights else 0}


# -- reading -------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(str(path), f"cannot read: {_first_line(e)}") from None


def _torch_load(path: Path, notes: list[str], trust_model: bool):
    """Tensors only (no code in the file runs); full unpickling only when the user trusts the file."""
    torch = import_torch(f"{path}: reading a PyTorch file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        names = _UNSAFE_GLOBAL.search(str(e))
        if names is None:  # not a pickle that names a class: a damaged or foreign file
            detail = _WO_DETAIL.search(str(e))
            raise ConfigError(str(path), "cannot read: " + (detail[1] if detail else _first_line(e))) from None
        if not trust_model:
            raise UsageError(
                f"{path}: holds more than tensors (it names {names[1]}, as a whole pickled model does), "
                "and unpickling it could run code from the file; save the model's state_dict instead "
                "(torch.save(model.state_dict(), path)), or pass --trust-model (trust_model=True) for a file "
                "you trust") from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ConfigError(str(path), f"cannot read: {_first_line(e)}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as e:  # the model's class is not importable here
        raise ConfigError(str(path), f"cannot unpickle: {_first_line(e)}: a whole module needs its class "
                                     "importable where it is loaded; save its state_dict instead "
                                     "(torch.save(model.state_dict(), path))") from None
    except Exception as e:  # noqa: BLE001 - a truncated file, ...
        raise ConfigError(str(path), f"cannot read: {_first_line(e)}") from None
    notes.append(f"{path}: not tensors only; loaded with full unpickling (weights_only=False), as "
                 "trust_model asked")
    return obj


def _is_module(obj) -> bool:
    torch = import_torch("reading a PyTorch model")
    return isinstance(obj, torch.nn.Module)


def _state_dict(obj, path) -> dict[str, np.ndarray]:
    """The arrays of a state_dict (or a checkpoint dict holding one) of tensors or NumPy arrays."""
    torch = sys.modules.get("torch")
    if isinstance(obj, dict):
        for key in _CHECKPOINT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ConfigError(str(path), f"holds a {type(obj).__name__}, not an nn.Module or a state_dict")
    out = {}
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            out[str(key)] = value
        elif torch is not None and isinstance(value, torch.Tensor):
            out[str(key)] = value.detach().cpu().numpy()
        else:
            raise ConfigError(f"{path}:{key}", f"is a {type(value).__name__}, not a tensor "
                                               "(expected a state_dict)")
    return out


def _from_module(model, path: Path, notes: list[str]) -> tuple[dict[str, np.ndarray], bool]:
    torch = import_torch("reading a PyTorch model")
    nn = torch.nn
    lstms = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.LSTM)]
    if not lstms:
        others = [type(m).__name__ for m in model.modules() if isinstance(m, nn.RNNBase)]
        raise ConfigError(str(path), "no nn.LSTM in the model"
                          + (f" (found {', '.join(others)}, which is not supported)" if others else ""))
    if len(lstms) > 1:
        raise ConfigError(str(path), f"more than one nn.LSTM ({', '.join(n or '<root>' for n, _ in lstms)}); "
                                     "exactly one is supported")
    name, lstm = lstms[0]
    where = f"{path}:{name or '<root>'}"
    if lstm.proj_size > 0:
        raise ConfigError(where, "proj_size is not supported")
    if lstm.bidirectional:
        raise ConfigError(where, "bidirectional LSTMs are not supported")
    if lstm.dropout:
        notes.append(f"{where}: dropout {lstm.dropout:g} between layers is a training-time setting; ignored")
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if len(linears) > 1:
        raise ConfigError(str(path), f"more than one nn.Linear ({', '.join(n for n, _ in linears)}); "
                                     "only one head on the LSTM's output is supported")
    known = {name} | {n for n, _ in linears}
    for n, m in model.named_modules():
        if n not in known and not any(n.startswith(k + ".") for k in known if k) \
                and any(True for _ in m.parameters(recurse=False)):
            raise ConfigError(f"{path}:{n}", f"{type(m).__name__} has parameters; only one nn.LSTM and an "
                                             "optional nn.Linear head are supported")
    raw = {f"lstm.{k}": v.detach().cpu().numpy() for k, v in lstm.state_dict().items()}
    if linears:
        head_name, head = linears[0]
        if head.in_features != lstm.hidden_size:
            raise ConfigError(f"{path}:{head_name}", f"nn.Linear takes {head.in_features} inputs, not the "
                                                     f"LSTM's hidden size {lstm.hidden_size}")
        raw["fc.weight"] = head.weight.detach().cpu().numpy()
        if head.bias is not None:
            raw["fc.bias"] = head.bias.detach().cpu().numpy()
    return raw, bool(lstm.batch_first)


# -- canonical names and checks ------------------------------------------------

def _canonical(raw: dict[str, np.ndarray], path: Path, notes: list[str]) -> dict[str, np.ndarray]:
    lstm: dict[str, tuple[str, np.ndarray]] = {}
    prefixes = set()
    rest = {}
    for key, value in raw.items():
        m = _LSTM_KEY.match(key)
        if m is None:
            rest[key] = value
            continue
        if m["kind"] == "weight_hr":
            raise ConfigError(f"{path}:{key}", "proj_size is not supported")
        if m["reverse"]:
            raise ConfigError(f"{path}:{key}", "bidirectional LSTMs are not supported")
        prefixes.add(m["prefix"] or "")
        lstm[f"{m['kind']}_l{int(m['layer'])}"] = (key, value)
    if not lstm:
        raise ConfigError(str(path), "no LSTM weights (no names like weight_ih_l0) and no nn.LSTM")
    if len(prefixes) > 1:
        shown = ", ".join(sorted(p or "<root>" for p in prefixes))
        raise ConfigError(str(path), f"more than one LSTM ({shown}); exactly one is supported")
    if "weight_ih_l0" not in lstm or "weight_hh_l0" not in lstm:
        raise ConfigError(str(path), "missing weight_ih_l0 or weight_hh_l0")

    def array(key: str, value) -> np.ndarray:
        a = np.asarray(value)
        if a.dtype.kind not in "fiu":
            raise ConfigError(f"{path}:{key}", f"must be numeric, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{path}:{key}", "contains NaN or infinity")
        return a

    w_hh = lstm["weight_hh_l0"][1]
    if np.ndim(w_hh) != 2 or w_hh.shape[0] != 4 * w_hh.shape[1] or w_hh.shape[1] == 0:
        raise ConfigError(f"{path}:{lstm['weight_hh_l0'][0]}", f"shape {np.shape(w_hh)} is not (4H, H)")
    hidden = w_hh.shape[1]
    w_ih = lstm["weight_ih_l0"][1]
    if np.ndim(w_ih) != 2 or w_ih.shape[1] == 0:
        raise ConfigError(f"{path}:{lstm['weight_ih_l0'][0]}", f"shape {np.shape(w_ih)} is not (4H, I)")
    layers = 1 + max(int(name.rsplit("_l", 1)[1]) for name in lstm)
    out = {}
    for k in range(layers):
        shapes = {f"weight_ih_l{k}": (4 * hidden, w_ih.shape[1] if k == 0 else hidden),
                  f"weight_hh_l{k}": (4 * hidden, hidden),
                  f"bias_ih_l{k}": (4 * hidden,), f"bias_hh_l{k}": (4 * hidden,)}
        for name, shape in shapes.items():
            if name not in lstm:
                if name.startswith("bias_") and not any(n.startswith("bias_") for n in lstm):
                    out[name] = np.zeros(shape)  # nn.LSTM(bias=False)
                    continue
                raise ConfigError(str(path), f"missing {name} of a {layers}-layer LSTM")
            key, value = lstm[name]
            a = array(key, value)
            if a.shape != shape:
                raise ConfigError(f"{path}:{key}", f"shape {a.shape} does not match {shape} "
                                                   f"(hidden size {hidden})")
            out[name] = a
    if not any(n.startswith("bias_") for n in lstm):
        notes.append(f"{path}: the LSTM has no biases; using zeros")
    out.update(_head(rest, hidden, path, notes, array))
    return out


def _head(rest: dict, hidden: int, path: Path, notes: list[str], array) -> dict[str, np.ndarray]:
    """The one 2-D ``*.weight`` (O x H) left over, with its ``*.bias``; nothing else may remain."""
    heads = [key for key, v in rest.items()
             if key.rpartition(".")[2] == "weight" and np.ndim(v) == 2 and np.shape(v)[1] == hidden]
    if len(heads) > 1:
        raise ConfigError(str(path), f"more than one dense head on the hidden state ({', '.join(heads)})")
    out = {}
    if heads:
        key = heads[0]
        prefix = key[: -len("weight")]
        out["fc.weight"] = array(key, rest.pop(key))
        if prefix + "bias" in rest:
            b = array(prefix + "bias", rest.pop(prefix + "bias"))
            if b.shape != (out["fc.weight"].shape[0],):
                raise ConfigError(f"{path}:{prefix}bias", f"shape {b.shape} does not match "
                                                          f"({out['fc.weight'].shape[0]},) of {key}")
            out["fc.bias"] = b
        else:
            out["fc.bias"] = np.zeros(out["fc.weight"].shape[0])
            notes.append(f"{path}:{key}: the head has no bias; using zeros")
    if rest:
        key = sorted(rest)[0]
        raise ConfigError(f"{path}:{key}", f"unexpected array of shape {np.shape(rest[key])}: only one LSTM and "
                                           f"an optional dense head taking its {hidden} outputs are supported")
    return out
