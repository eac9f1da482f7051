"""Weights in PyTorch nn.LSTM layout: shapes, checks, loading and the seeded defaults."""

import numpy as np
import pytest

from lstm_hw.config.schema import Config, parse_config
from lstm_hw.errors import ConfigError
from lstm_hw.model.weights import check_weights, expected_shapes, load_weights, random_weights

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


# -- the head: fc.weight and fc.bias -----------------------------------------------

HEAD = parse_config({"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 3},
                     "sparsity": {"banks": 2}})


def test_expected_shapes_with_head():
    shapes = expected_shapes(HEAD)
    assert list(shapes)[-2:] == ["fc.weight", "fc.bias"]
    assert shapes["fc.weight"] == (3, 4) and shapes["fc.bias"] == (3,)
    assert {k: v for k, v in shapes.items() if not k.startswith("fc.")} == expected_shapes(SMALL)


@pytest.mark.parametrize("seed", [0, 7])
def test_random_head_keeps_the_lstm_weights_of_a_seed(seed):
    base = parse_config({"model": {"input_size": 3, "hidden_size": 9, "num_layers": 2, "seed": seed}})
    with_head = parse_config({"model": {"input_size": 3, "hidden_size": 9, "num_layers": 2, "seed": seed,
                                        "output_size": 5}})
    a, b = random_weights(base), random_weights(with_head)
    assert set(b) == set(a) | {"fc.weight", "fc.bias"}
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    bound = 1 / 3    # nn.Linear(9, 5): U(-1/sqrt(9), 1/sqrt(9))
    head = np.concatenate([b["fc.weight"].ravel(), b["fc.bias"]])
    assert np.all(np.abs(head) <= bound) and head.min() < -bound / 2 and head.max() > bound / 2
    assert np.array_equal(random_weights(with_head)["fc.weight"], b["fc.weight"])
    other = random_weights(parse_config({"model": {"input_size": 3, "hidden_size": 9, "num_layers": 2,
                                                   "seed": seed + 1, "output_size": 5}}))
    assert not np.array_equal(other["fc.weight"], b["fc.weight"])


def head_good():
    return {name: np.full(shape, 0.25) for name, shape in expected_shapes(HEAD).items()}


def head_bad(name, value):
    def make():
        w = head_good()
        if value is None:
            del w[name]
        else:
            w[name] = value(w[name]) if callable(value) else value
        return w
    return make


def _with(idx, v):
    def f(a):
        a = a.copy()
        a[idx] = v
        return a
    return f


HEAD_BAD = {
    "missing_weight": (head_bad("fc.weight", None), "fc.weight"),
    "missing_bias": (head_bad("fc.bias", None), "fc.bias"),
    "weight_transposed": (head_bad("fc.weight", np.zeros((4, 3))), "fc.weight"),
    "bias_wrong_length": (head_bad("fc.bias", np.zeros(4)), "fc.bias"),
    "weight_nan": (head_bad("fc.weight", _with((1, 2), np.nan)), "fc.weight"),
    "bias_inf": (head_bad("fc.bias", _with(0, np.inf)), "fc.bias"),
    "bias_strings": (head_bad("fc.bias", np.array(["1", "2", "3"])), "fc.bias"),
    "extra_head_array": (head_bad("fc.scale", np.ones(3)), "fc.scale"),
}


@pytest.mark.parametrize("case", HEAD_BAD)
def test_check_head_weights_errors_name_the_array(case):
    make, name = HEAD_BAD[case]
    with pytest.raises(ConfigError) as info:
        check_weights(make(), HEAD, source="model.npz")
    message = str(info.value)
    assert message.startswith(f"model.npz:{name}: "), message
    assert "\n" not in message


def test_head_arrays_without_a_head_are_refused():
    w = good()
    w["fc.weight"] = np.zeros((3, 4))
    with pytest.raises(ConfigError, match=r"^w\.npz:fc\.weight: .*output_size is 0"):
        check_weights(w, SMALL, source="w.npz")


def test_load_head_weights_round_trip(tmp_path):
    w = random_weights(HEAD)
    np.savez(tmp_path / "w.npz", **w)
    loaded = load_weights(tmp_path / "w.npz", HEAD)
    assert loaded.keys() == w.keys()
    assert np.array_equal(loaded["fc.weight"], w["fc.weight"])
