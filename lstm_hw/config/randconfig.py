"""Seeded random configs for regression and soak runs.

``random_config(np.random.default_rng(seed))`` returns a config mapping that
:func:`lstm_hw.config.schema.parse_config` accepts. Every draw is valid by
construction: each constrained value is drawn from the set the checks in
:mod:`lstm_hw.config.schema` allow given the values drawn before it (banks from the
columns of every layer and of the head, table ranges from what the preact and
cell formats hold, segments from the input codes those ranges span). There is
no redraw loop, so a :class:`~lstm_hw.errors.ConfigError` from a drawn config
is a bug in this module or in the checks, never hidden.

``activation.method = "auto"`` is not drawn: it searches every method and
segment count, is slow, and may find nothing within ``max_error`` on a narrow
format (an error by design). The fixed end-to-end configs cover it.
"""

from __future__ import annotations

import numpy as np

from ..model.design import Design, build_design
from .schema import io_lanes_fit, parse_config

__all__ = ["random_config", "random_case"]

METHODS = ("lut", "pwl", "quadratic", "taylor")
ROWS = (1, 2, 4, 8)
MAX_SEGMENTS = 64


def _pow2_upto(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A power of two in [lo, hi] (both powers of two, lo <= hi), uniform over the exponents."""
    return 1 << int(rng.integers(lo.bit_length() - 1, hi.bit_length()))


def _fmt(bits: int, frac: int) -> dict:
    return {"bits": int(bits), "frac": int(frac)}


def _density(rng: np.random.Generator) -> float:
    # Two decimals, as a user writes it; 1.0 (dense) a quarter of the time.
    return 1.0 if rng.random() < 0.25 else round(float(rng.uniform(0.1, 1.0)), 2)


def random_config(rng: np.random.Generator, *, max_size: int = 40) -> dict:
    """Draw one valid config mapping.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness; the same seed gives the same config.
    max_size : int
        Upper bound of ``input_size`` and ``hidden_size`` (1 to 40 by default);
        smaller keeps simulated designs quick to build.
    """
    if not 1 <= max_size <= 4096:
        raise ValueError(f"max_size must be between 1 and 4096, got {max_size}")
    i_size = int(rng.integers(1, max_size + 1))
    h_size = int(rng.integers(1, max_size + 1))
    layers = int(rng.integers(1, 4))
    out_size = 0 if rng.random() < 0.5 else int(rng.integers(1, 13))

    # Weights s.(b-2): |w| < 2, enough for U(-1/sqrt(H), 1/sqrt(H)) and fine-tuned weights.
    w_bits = int(rng.integers(4, 17))
    # Activations keep 3 integer bits (|x| < 4, h in (-1, 1)), at least 1 fraction bit.
    a_bits = int(rng.integers(4, 17))
    a_frac = max(1, a_bits - 4)
    # Pre-activations: 3 to 5 integer bits, so a sigmoid range of 2 to 8 fits.
    p_bits = int(rng.integers(6, 17))
    p_int = int(rng.integers(3, 6))
    p_frac = p_bits - p_int
    # Sigmoid/tanh outputs need bits >= frac + 1 to hold 1.0.
    n_bits = int(rng.integers(4, 17))
    n_frac = n_bits - int(rng.integers(1, 3))
    # Cell state: 3 to 6 integer bits.
    c_bits = int(rng.integers(6, 19))
    c_int = int(rng.integers(3, 7))
    c_frac = c_bits - c_int
    quant = {
        "weight": _fmt(w_bits, w_bits - 2),
        "activation": _fmt(a_bits, a_frac),
        "preact": _fmt(p_bits, p_frac),
        "nonlin": _fmt(n_bits, n_frac),
        "cell": _fmt(c_bits, c_frac),
        "rounding": str(rng.choice(["half_up", "truncate"])),
    }
    if out_size and rng.random() < 0.5:
        o_bits = int(rng.integers(4, 17))
        # Within the product's fraction bits (weight.frac + activation.frac >= 3).
        quant["output"] = _fmt(o_bits, min(max(1, o_bits - 4), w_bits - 2 + a_frac))

    # A table range must fit its input format: |x| < 2^(int bits - 1).
    sig_range = float(_pow2_upto(rng, 2, 1 << (p_int - 1)))
    tanh_range = float(_pow2_upto(rng, 1, 1 << (min(p_int, c_int) - 1)))
    fold = bool(rng.random() < 0.75)
    span = 1 if fold else 2
    codes = min(int(sig_range) << p_frac, int(tanh_range) << p_frac, int(tanh_range) << c_frac)
    method = str(rng.choice(METHODS))
    activation = {
        "method": method,
        "segments": _pow2_upto(rng, 1, min(MAX_SEGMENTS, span * codes)),
        "sigmoid_range": sig_range,
        "tanh_range": tanh_range,
        "coef_bits": int(rng.integers(10, 19)),
        "fold": fold,
    }
    if method == "taylor":
        activation["taylor_order"] = int(rng.integers(1, 4))

    columns = [i_size + h_size] + [2 * h_size] * (layers - 1) + ([h_size] if out_size else [])
    sparsity = {
        "banks": int(rng.integers(1, min(16, *columns) + 1)),
        "density": _density(rng),
        "pattern": "unstructured" if rng.random() < 0.25 else "bank_balanced",
    }
    if out_size:
        sparsity["head_density"] = _density(rng)

    rows = int(rng.choice(ROWS))
    # Elements per beat: 1 half the time, else any count the banks and the h writes allow.
    lanes = [n for n in range(1, sparsity["banks"] + 1) if io_lanes_fit(rows, sparsity["banks"], n)]
    io_lanes = 1 if rng.random() < 0.5 else int(rng.choice(lanes))
    # MAC chains: the default half the time, else 1 (a plain adder tree) to 8.
    mac_chain = 4 if rng.random() < 0.5 else int(rng.integers(1, 9))
    return_sequences, seed = bool(rng.random() < 0.5), int(rng.integers(0, 2 ** 32))
    # Framing: tlast alone half the time, else a sequence length of 1 to 4 steps, or stateful.
    framing = rng.random()
    # Run-time weights a quarter of the time (bank-balanced only); drawn last: the other keys stay as each
    # seed drew them.
    weights = "ram" if sparsity["pattern"] == "bank_balanced" and rng.random() < 0.25 else "rom"
    config = {
        "model": {"input_size": i_size, "hidden_size": h_size, "num_layers": layers,
                  "return_sequences": return_sequences, "output_size": out_size, "seed": seed,
                  "sequence_length": int(rng.integers(1, 5)) if framing < 0.25 else 0,
                  "stateful": bool(0.25 <= framing < 0.5)},
        "quant": quant,
        "sparsity": sparsity,
        "activation": activation,
        "hardware": {"rows": rows, "io_lanes": io_lanes, "mac_chain": mac_chain, "weights": weights},
    }
    # Interleaved sequences (2 to 4) a quarter of the time where the framing allows them; drawn last too.
    model = config["model"]
    if rng.random() < 0.25 and not model["stateful"] and (return_sequences or model["sequence_length"]):
        config["hardware"]["interleave"] = int(rng.integers(2, 5))
    return config


def random_case(seed: int, *, max_size: int = 40, n_seq: int = 2,
                t_len: int = 3) -> tuple[dict, Design, np.ndarray]:
    """Config, design and input codes ``(n_seq, t_len, I)`` of one replayable seed (``n_seq`` groups of
    sequences with ``hardware.interleave``).

    The input is N(0, 1), with the first and last element at the format's
    extremes so saturation on the way in is exercised too.
    """
    rng = np.random.default_rng(seed)
    config = random_config(rng, max_size=max_size)
    design = build_design(parse_config(config))
    n_seq *= design.config.hardware.interleave
    x = rng.normal(0.0, 1.0, (n_seq, t_len, config["model"]["input_size"]))
    x[0, 0, 0], x[-1, -1, -1] = 1e9, -1e9
    return config, design, design.io_format.quantize(x)
