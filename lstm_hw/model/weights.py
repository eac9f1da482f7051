"""LSTM weights in PyTorch ``nn.LSTM`` layout: load, check and make defaults.

Names and shapes follow ``nn.LSTM.state_dict()`` with gate order (i, f, g, o):
``weight_ih_l{k}`` (4H x I, or 4H x H for k > 0), ``weight_hh_l{k}`` (4H x H),
``bias_ih_l{k}`` and ``bias_hh_l{k}`` (4H). With a head (``model.output_size``
O > 0), ``fc.weight`` (O x H) and ``fc.bias`` (O), as in ``nn.Linear(H, O)``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..config.schema import Config
from ..errors import ConfigError

__all__ = ["expected_shapes", "load_weights", "check_weights", "random_weights"]


def expected_shapes(config: Config) -> dict[str, tuple[int, ...]]:
    m = config.model
    shapes = {}
    for k in range(m.num_layers):
        four_h = 4 * m.hidden_size
        shapes[f"weight_ih_l{k}"] = (four_h, config.layer_input_size(k))
        shapes[f"weight_hh_l{k}"] = (four_h, m.hidden_size)
        shapes[f"bias_ih_l{k}"] = (four_h,)
        shapes[f"bias_hh_l{k}"] = (four_h,)
    if m.output_size > 0:
        shapes["fc.weight"] = (m.output_size, m.hidden_size)
        shapes["fc.bias"] = (m.output_size,)
    return shapes


def check_weights(weights: dict[str, np.ndarray], config: Config, source: str = "weights") -> dict:
    """Return float64 copies of exactly the expected arrays, or raise ConfigError."""
    shapes = expected_shapes(config)
    for name in weights:
        if name in ("fc.weight", "fc.bias") and config.model.output_size == 0:
            raise ConfigError(f"{source}:{name}", "a head's array, but model.output_size is 0 (no head)")
        if name not in shapes:
            raise ConfigError(f"{source}:{name}", f"unexpected array for a {config.model.num_layers}-layer LSTM "
                                                  f"(expected {', '.join(shapes)})")
    out = {}
    for name, shape in shapes.items():
        if name not in weights:
            raise ConfigError(f"{source}:{name}", "missing")
        a = np.asarray(weights[name])
        if a.dtype.kind not in "fiu":
            raise ConfigError(f"{source}:{name}", f"must be numeric, got dtype {a.dtype}")
        if a.shape != shape:
            raise ConfigError(f"{source}:{name}", f"shape {a.shape} does not match {shape} from the config")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{source}:{name}", "contains NaN or infinity")
        out[name] = a
    return out


def load_weights(path: str | Path, config: Config) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ConfigError(str(path), "not an .npz archive of named arrays (a single .npy array?)")
        with loaded as f:
            raw = {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(str(path), f"cannot read weights: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return check_weights(raw, config, str(path))


def random_weights(config: Config) -> dict[str, np.ndarray]:
    """Deterministic default weights: PyTorch's init, U(-1/sqrt(H), 1/sqrt(H)), seeded by ``model.seed``.

    ``nn.Linear(H, O)`` draws from the same interval (its fan-in is H). The
    head's arrays come last from the generator, so adding a head leaves the
    LSTM weights of a seed unchanged.
    """
    rng = np.random.default_rng(config.model.seed)
    bound = 1.0 / np.sqrt(config.model.hidden_size)
    return {name: rng.uniform(-bound, bound, size=shape)
            for name, shape in expected_shapes(config).items()}
