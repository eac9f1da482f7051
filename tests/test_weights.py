"""Weights in PyTorch nn.LSTM layout: shapes, checks, loading and the seeded defaults."""

import numpy as np
import pytest

from lstm_hw.config import Config, parse_config
from lstm_hw.errors import ConfigError
from lstm_hw.weights import check_weights, expected_shapes, load_weights, random_weights

SMALL = parse_config({"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1}, "sparsity": {"banks": 2}})


def config(input_size=3, hidden_size=4, num_layers=1, seed=0):
    return parse_config({"model": {"input_size": input_size, "hidden_size": hidden_size,
                                   "num_layers": num_layers, "seed": seed},
                         "sparsity": {"banks": 1}})


def test_expected_shapes_one_layer():
    assert expected_shapes(config(input_size=3, hidden_size=4)) == {
        "weight_ih_l0": (16, 3),
        "weight_hh_l0": (16, 4),
        "bias_ih_l0": (16,),
        "bias_hh_l0": (16,),
    }


def test_expected_shapes_three_layers():
    shapes = expected_shapes(config(input_size=7, hidden_size=5, num_layers=3))
    expected = {}
    for k, layer_input in enumerate([7, 5, 5]):     # layers after the first read h of the one below
        expected[f"weight_ih_l{k}"] = (20, layer_input)
        expected[f"weight_hh_l{k}"] = (20, 5)
        expected[f"bias_ih_l{k}"] = (20,)
        expected[f"bias_hh_l{k}"] = (20,)
    assert shapes == expected


def test_expected_shapes_default_config():
    shapes = expected_shapes(Config())       # I = 5, H = 12, 2 layers
    assert shapes["weight_ih_l0"] == (48, 5)
    assert shapes["weight_ih_l1"] == (48, 12)
    assert len(shapes) == 8


# -- random_weights -------------------------------------------------------------

@pytest.mark.parametrize("cfg", [config(), config(input_size=9, hidden_size=16, num_layers=3), Config()],
                         ids=["small", "three_layers", "default"])
def test_random_weights_shapes_and_bounds(cfg):
    w = random_weights(cfg)
    assert {name: a.shape for name, a in w.items()} == expected_shapes(cfg)
    bound = 1 / cfg.model.hidden_size ** 0.5
    for name, a in w.items():
        assert a.dtype == np.float64
        assert np.all(np.abs(a) <= bound), name
        # uniform over the whole interval, not a corner of it
        assert a.min() < -bound / 2 and a.max() > bound / 2, name
    assert check_weights(w, cfg).keys() == w.keys()


def test_random_weights_spread():
    a = np.concatenate([v.ravel() for v in random_weights(config(hidden_size=64, num_layers=2)).values()])
    bound = 1 / 8
    assert abs(a.mean()) < 0.05 * bound
    assert abs(a.std() - bound / 3 ** 0.5) < 0.05 * bound    # std of U(-b, b) is b / sqrt(3)


def test_random_weights_deterministic_per_seed():
    a, b = random_weights(config(seed=5)), random_weights(config(seed=5))
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name])


@pytest.mark.parametrize("seeds", [(0, 1), (1, 2), (0, 2 ** 32 - 1)])
def test_random_weights_differ_across_seeds(seeds):
    a, b = (random_weights(config(seed=s)) for s in seeds)
    for name in a:
        assert not np.array_equal(a[name], b[name]), name


def test_random_weights_differ_across_arrays():
    w = random_weights(config(input_size=4, hidden_size=4))
    assert not np.array_equal(w["weight_ih_l0"], w["weight_hh_l0"])
    assert not np.array_equal(w["bias_ih_l0"], w["bias_hh_l0"])


# -- check_weights ----------------------------------------------------------------

def good():
    return {name: np.full(shape, 0.25) for name, shape in expected_shapes(SMALL).items()}


def bad_missing():
    w = good()
    del w["bias_hh_l0"]
    return w, "bias_hh_l0"


def bad_extra():
    w = good()
    w["weight_ih_l1"] = np.zeros((16, 4))
    return w, "weight_ih_l1"


def bad_shape():
    w = good()
    w["weight_ih_l0"] = np.zeros((16, 4))
    return w, "weight_ih_l0"


def bad_transposed():
    w = good()
    w["weight_hh_l0"] = np.zeros((4, 16))
    return w, "weight_hh_l0"


def bad_bias_rank():
    w = good()
    w["bias_ih_l0"] = np.zeros((16, 1))
    return w, "bias_ih_l0"


def bad_nan():
    w = good()
    w["weight_hh_l0"][2, 1] = np.nan
    return w, "weight_hh_l0"


def bad_inf():
    w = good()
    w["bias_ih_l0"][-1] = -np.inf
    return w, "bias_ih_l0"


def bad_strings():
    w = good()
    w["weight_ih_l0"] = np.full((16, 3), "0.5")
    return w, "weight_ih_l0"


def bad_objects():
    w = good()
    w["bias_hh_l0"] = np.array([0.1] * 15 + [None], dtype=object)
    return w, "bias_hh_l0"


def bad_bool():
    w = good()
    w["bias_hh_l0"] = np.ones(16, dtype=bool)
    return w, "bias_hh_l0"


def bad_complex():
    w = good()
    w["weight_hh_l0"] = np.zeros((16, 4), dtype=complex)
    return w, "weight_hh_l0"


BAD = [bad_missing, bad_extra, bad_shape, bad_transposed, bad_bias_rank, bad_nan, bad_inf, bad_strings,
       bad_objects, bad_bool, bad_complex]


@pytest.mark.parametrize("make", BAD, ids=[f.__name__ for f in BAD])
def test_check_weights_errors_name_the_array(make):
    w, name = make()
    with pytest.raises(ConfigError) as info:
        check_weights(w, SMALL, source="model.npz")
    message = str(info.value)
    assert message.startswith(f"model.npz:{name}: "), message
    assert "\n" not in message


def test_check_weights_converts_to_float64():
    w = {name: np.ones(shape, dtype=np.int8) for name, shape in expected_shapes(SMALL).items()}
    w["bias_ih_l0"] = np.ones(16, dtype=np.float32) / 4
    w["bias_hh_l0"] = list(range(16))            # array-likes are fine too
    out = check_weights(w, SMALL)
    assert set(out) == set(expected_shapes(SMALL))
    for name, a in out.items():
        assert a.dtype == np.float64 and a.shape == expected_shapes(SMALL)[name]
    assert np.array_equal(out["bias_ih_l0"], np.full(16, 0.25))
    assert np.array_equal(out["bias_hh_l0"], np.arange(16.0))


def test_check_weights_copies():
    w = good()
    out = check_weights(w, SMALL)
    out["weight_ih_l0"][0, 0] = 99.0
    assert w["weight_ih_l0"][0, 0] == 0.25


# -- load_weights -----------------------------------------------------------------

def test_load_weights_round_trip(tmp_path):
    w = random_weights(SMALL)
    path = tmp_path / "lstm.npz"
    np.savez(path, **w)
    loaded = load_weights(path, SMALL)
    assert loaded.keys() == w.keys()
    for name in w:
        assert np.array_equal(loaded[name], w[name])
    assert load_weights(str(path), SMALL).keys() == w.keys()


def test_load_weights_compressed_float32(tmp_path):
    w = {name: a.astype(np.float32) for name, a in random_weights(SMALL).items()}
    path = tmp_path / "lstm.npz"
    np.savez_compressed(path, **w)
    loaded = load_weights(path, SMALL)
    for name in w:
        assert loaded[name].dtype == np.float64
        assert np.array_equal(loaded[name], w[name].astype(np.float64))


def test_load_weights_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(ConfigError) as info:
        load_weights(path, SMALL)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("content", [b"hello, weights\n", b"", b"PK\x03\x04 truncated zip", b"\x93NUMPY\x01\x00"])
def test_load_weights_not_npz(tmp_path, content):
    path = tmp_path / "w.npz"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_weights(path, SMALL)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_load_weights_pickled_objects_refused(tmp_path):
    w = {name: a.astype(object) for name, a in random_weights(SMALL).items()}
    path = tmp_path / "objects.npz"
    np.savez(path, **w)
    with pytest.raises(ConfigError) as info:
        load_weights(path, SMALL)
    assert str(info.value).startswith(f"{path}")


def test_load_weights_checks_contents(tmp_path):
    w = random_weights(SMALL)
    w["weight_hh_l0"] = w["weight_hh_l0"][:, :3]
    path = tmp_path / "lstm.npz"
    np.savez(path, **w)
    with pytest.raises(ConfigError) as info:
        load_weights(path, SMALL)
    assert str(info.value).startswith(f"{path}:weight_hh_l0: ")


def test_load_weights_directory(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_weights(tmp_path, SMALL)
    assert str(info.value).startswith(f"{tmp_path}: ")


def test_load_weights_npy_instead_of_npz(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((16, 3)))
    with pytest.raises(ConfigError) as info:
        load_weights(path, SMALL)
    assert str(info.value).startswith(f"{path}: ")
