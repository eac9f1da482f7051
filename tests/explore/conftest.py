"""A tiny model, data and space for the sweeps: LSTM(3 -> 8) with a 2-class head, 48 sequences of 5 steps,
and an 8-point space that crosses weight bits, density and activation method."""

import numpy as np
import pytest

INPUT, HIDDEN, CLASSES, SEQUENCES, STEPS = 3, 8, 2, 48, 5

BASE_TOML = """\
[model]
return_sequences = false
[sparsity]
banks = 2
"""

SPACE_TOML = """\
"quant.weight.bits" = [4, 8]
"sparsity.density" = [0.25, 0.5]
"activation.method" = ["pwl", "lut"]
"""


def tiny_weights(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"weight_ih_l0": rng.normal(0, 0.6, (4 * HIDDEN, INPUT)),
            "weight_hh_l0": rng.normal(0, 0.4, (4 * HIDDEN, HIDDEN)),
            "bias_ih_l0": rng.normal(0, 0.1, 4 * HIDDEN), "bias_hh_l0": np.zeros(4 * HIDDEN),
            "fc.weight": rng.normal(0, 1.0, (CLASSES, HIDDEN)), "fc.bias": np.zeros(CLASSES)}


def tiny_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (SEQUENCES, STEPS, INPUT))
    return x, (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)


@pytest.fixture(scope="session")
def sweep_files(tmp_path_factory):
    """model.npz, val.npz, space.toml and base.toml in one folder."""
    root = tmp_path_factory.mktemp("explore_inputs")
    np.savez(root / "model.npz", **tiny_weights())
    x, y = tiny_data()
    np.savez(root / "val.npz", x=x, y=y)
    (root / "space.toml").write_text(SPACE_TOML)
    (root / "base.toml").write_text(BASE_TOML)
    return root


@pytest.fixture(scope="session")
def local_run(sweep_files, tmp_path_factory):
    """The sweep of the tiny space on a LocalCluster of 2 workers, with its own cache: (Exploration, out dir)."""
    from lstm_hw.explore import explore
    work = tmp_path_factory.mktemp("explore_local")
    out = work / "out"
    res = explore(sweep_files / "model.npz", sweep_files / "val.npz", sweep_files / "space.toml",
                  sweep_files / "base.toml", out, workers=2, cache=work / "cache")
    return res, out


@pytest.fixture
def tiny():
    """The tiny model's weights and its data (x, y)."""
    return tiny_weights(), tiny_data()
