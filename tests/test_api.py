"""The Python API (lstm_hw.convert, Accelerator, lstm_hw.compress) against the command line, byte for byte."""

import json
import tomllib
import warnings

import numpy as np
import pytest

import lstm_hw
from helpers import bbs_weights, invoke, simulator_off_by
from lstm_hw.config.schema import parse_config
from lstm_hw.model.weights import random_weights

TOML = """\
[model]
input_size = 3
hidden_size = 4
num_layers = 2
output_size = 2
[sparsity]
banks = 2
density = 0.5
"""


def cli(*args):
    result = invoke(*args)
    assert result.exit_code == 0, result.output + result.stderr
    return result


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One config and its weights as files, and the accelerator the API makes of them."""
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "c.toml").write_text(TOML)
    config = lstm_hw.load_config(tmp / "c.toml")
    weights = lstm_hw.prune(random_weights(config), config)
    np.savez(tmp / "w.npz", **weights)
    return tmp, config, weights, lstm_hw.convert(tmp / "w.npz", config)


def test_write_is_generate_byte_for_byte(made, tmp_path):
    tmp, config, _, acc = made
    cli("generate", tmp / "c.toml", "-w", tmp / "w.npz", "-o", tmp_path / "cli")
    written = acc.write(tmp_path / "api")
    assert [p.name for p in written] == list(acc.files) and written.removed == []
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert cli_files == sorted(p.name for p in written)
    for name in cli_files:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes(), name
    assert acc.metadata == json.loads((tmp_path / "api" / "lstm_top.json").read_text())
    with pytest.raises(lstm_hw.UsageError, match="directory is not empty"):
        acc.write(tmp_path / "api")


def test_predict_is_golden(made, tmp_path):
    tmp, config, _, acc = made
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (3, 5, 3))
    np.save(tmp_path / "x.npy", x)
    cli("golden", tmp / "c.toml", "-w", tmp / "w.npz", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    np.testing.assert_array_equal(acc.predict(x), np.load(tmp_path / "y.npy"))
    np.testing.assert_array_equal(acc.predict(x[1]), np.load(tmp_path / "y.npy")[1])
    with pytest.raises(lstm_hw.UsageError, match=r"x: shape \(5, 4\) is not \(T, 3\) or \(N, T, 3\)"):
        acc.predict(np.zeros((5, 4)))


def test_every_form_of_model_gives_the_same_accelerator(made, tmp_path):
    torch = pytest.importorskip("torch")
    tmp, config, weights, acc = made

    class Mine(torch.nn.Module):  # the user's own class, defined here: no pickling needed
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 4, 2, batch_first=True)
            self.out = torch.nn.Linear(4, 2)

    net = Mine().double()
    with torch.no_grad():
        for name, p in [*net.rnn.named_parameters(), *(("fc." + n, p) for n, p in net.out.named_parameters())]:
            p.copy_(torch.from_numpy(weights[name]))
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4, 3))
    want = acc.predict(x)
    forms = {"module": net, "state_dict": net.state_dict(), "numpy": weights, "pt": tmp_path / "sd.pt",
             "pt as str": str(tmp_path / "sd.pt")}
    for form, model in forms.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # pruned weights: nothing to tell
            other = lstm_hw.convert(model, config, strict=True)
        np.testing.assert_array_equal(other.predict(x), want, err_msg=form)
    # sizes come from the model where the config leaves them out
    assert lstm_hw.convert(net, {"sparsity": {"banks": 2}}).config == config
    assert lstm_hw.convert(net, tmp / "c.toml").config == config


def test_weights_are_what_the_hardware_holds(made):
    _, config, _, acc = made
    again = lstm_hw.convert(acc.weights, config, strict=True)
    for a, b in zip(acc.design.layers + (acc.design.head,), again.design.layers + (again.design.head,)):
        np.testing.assert_array_equal(a.w, b.w)
        np.testing.assert_array_equal(a.b, b.b)
    assert set(acc.weights) == set(random_weights(config))


def test_config_forms_and_refusals(made):
    _, config, weights, _ = made
    assert lstm_hw.Config.from_dict(tomllib.loads(TOML)) == config
    with pytest.raises(lstm_hw.ConfigError, match="model.input_size: is 5, but weights has 3"):
        lstm_hw.convert(weights, lstm_hw.Config())
    with pytest.raises(lstm_hw.ConfigError, match="weights: is a list: give an nn.Module"):
        lstm_hw.convert([1, 2], config)
    with pytest.raises(lstm_hw.UsageError, match="config: a Config, a dict or a TOML path, not a int"):
        lstm_hw.convert(weights, 3)
    seeded = lstm_hw.convert(None, config)
    assert seeded.design.weights_given is False and seeded.pruning_lines == []


def test_pruning_is_warned_and_strict_refuses():
    config = parse_config(tomllib.loads(TOML))
    given = bbs_weights(config)
    with pytest.warns(lstm_hw.NonConformingWeightsWarning, match=r"^weights:weight_\w+: already sparse"):
        acc = lstm_hw.convert(given, config)
    assert acc.pruning_lines and all(line.startswith("warning: weights:") for line in acc.pruning_lines)
    with pytest.warns(lstm_hw.WeightsPrunedWarning):
        lstm_hw.convert(random_weights(config), config)
    with pytest.raises(lstm_hw.ConfigError, match="strict refuses weights the hardware would change"):
        lstm_hw.convert(given, config, strict=True)


def test_simulation_mismatch_is_raised(made, monkeypatch):
    """A run whose words differ raises SimulationMismatch, exit code 1's class (the simulator is faked here)."""
    from lstm_hw.sim import top
    _, _, _, acc = made
    x = np.zeros((1, 2, 3))

    monkeypatch.setattr(top, "simulate_top", simulator_off_by(4))   # every word of 2 steps x 2 outputs
    with pytest.raises(lstm_hw.SimulationMismatch, match=r"icarus: 4 of 4 output words differ") as info:
        acc.simulate(x, "icarus")
    assert info.value.exit_code == 1


@pytest.mark.cocotb
def test_simulate_equals_predict(made, tmp_path):
    _, _, _, acc = made
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 3))
    np.testing.assert_array_equal(acc.simulate(x, "icarus", build_dir=tmp_path / "b", idle=0.3,
                                               backpressure=0.3), acc.predict(x))
    assert (tmp_path / "b" / "icarus").is_dir()


def test_compress_is_the_cli_s(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.LSTM(3, 4, batch_first=True).double()
    torch.save(net.state_dict(), tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (16, 4, 3)), rng.uniform(-0.5, 0.5, (16, 4))
    np.savez(tmp_path / "d.npz", x=x, y=y)
    (tmp_path / "c.toml").write_text("[sparsity]\nbanks = 2\n[quant]\nweight = { bits = 6 }\n")
    cli("compress", tmp_path / "m.pt", "-c", tmp_path / "c.toml", "-d", tmp_path / "d.npz", "-o", tmp_path / "out",
        "--epochs", 2, "--qat")
    weights, config, report = lstm_hw.compress(net, {"sparsity": {"banks": 2}, "quant": {"weight": {"bits": 6}}},
                                               data=(x, y), epochs=2, qat=True)
    assert config == lstm_hw.load_config(tmp_path / "out" / "config.toml")
    with np.load(tmp_path / "out" / "weights.npz") as f:
        assert sorted(f.files) == sorted(weights)
        for name in f.files:
            np.testing.assert_array_equal(f[name], weights[name], err_msg=name)
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("model", "data"):  # the CLI names its files, the API its in-memory inputs
        written.pop(key), report.pop(key)
    assert written == json.loads(json.dumps(report))
    lstm_hw.convert(weights, config, strict=True)  # compressed weights are in the hardware's pattern
