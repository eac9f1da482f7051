"""lstm-hw evaluate, and the whole flow from a trained torch model to bit-exact RTL."""

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error

from lstm_hw.cli import main
from lstm_hw.compression.compress import compress_files
from lstm_hw.compression.evaluate import evaluate, score
from lstm_hw.config.schema import load_config, parse_config
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import float_lstm, run_golden_real
from lstm_hw.model.weights import load_weights, random_weights

torch = pytest.importorskip("torch")


def test_score_labels_and_targets():
    out = np.random.default_rng(0).normal(size=(20, 3, 4))
    labels = np.random.default_rng(1).integers(0, 4, 20)
    assert score(out, labels)["accuracy"] == np.mean(out[:, -1].argmax(1) == labels)
    target = np.random.default_rng(2).normal(size=(20, 4))
    assert score(out, target)["mse"] == pytest.approx(np.mean((out[:, -1] - target) ** 2))
    target3 = np.random.default_rng(3).normal(size=(20, 3, 4))
    assert score(out, target3)["mse"] == pytest.approx(np.mean((out - target3) ** 2))


def classifier_config():
    return parse_config({"model": {"input_size": 3, "hidden_size": 6, "num_layers": 1, "output_size": 4,
                                   "return_sequences": False},
                         "sparsity": {"banks": 3, "density": 0.5}})


def test_evaluate_stages_are_what_they_say():
    cfg = classifier_config()
    w = random_weights(cfg)
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-1, 1, (40, 5, 3)), rng.integers(0, 4, 40)
    res = evaluate(cfg, w, x, y)
    design = build_design(cfg, w)
    assert res["golden"]["accuracy"] == score(run_golden_real(design, x), y)["accuracy"]
    assert res["pruned_float"]["accuracy"] == score(float_lstm(design, x), y)["accuracy"]
    dense = build_design(replace(cfg, sparsity=replace(cfg.sparsity, density=1.0)), w)
    assert res["float"]["accuracy"] == score(float_lstm(dense, x), y)["accuracy"]
    assert "rtl" not in res


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 6, batch_first=True)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, v):
        return self.fc(self.lstm(v)[0][:, -1])


def train_tiny(tmp_path):
    """A small LSTM + Linear classifier trained for a few steps on a separable toy task."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (96, 5, 3))
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64) + 2 * (x[:, -1, 1] > 0)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    path = tmp_path / "net.pt"
    torch.save(net, path)  # a whole module, as people save them: read with trust_model / --trust-model
    np.savez(tmp_path / "data.npz", x=x, y=y)
    with torch.no_grad():
        accuracy = float((net(xt).argmax(1) == yt).float().mean())
    return net, path, x, y, accuracy


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_torch_to_golden_to_rtl_bit_exact(sim, tmp_path):
    net, path, x, y, accuracy = train_tiny(tmp_path)
    assert accuracy > 0.8, "the toy model did not learn"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nreturn_sequences = false\n[sparsity]\nbanks = 3\ndensity = 0.5\n")
    compress_files(path, cfg, tmp_path / "out", tmp_path / "data.npz", epochs=3, qat=True, trust_model=True)
    config = load_config(tmp_path / "out" / "config.toml")
    weights = load_weights(tmp_path / "out" / "weights.npz", config)
    res = evaluate(config, weights, x, y, rtl=sim, rtl_samples=12, build_dir=tmp_path / "sim")
    assert res["rtl"]["mismatches_vs_golden"] == 0
    assert res["rtl"]["accuracy"] == res["rtl"]["golden_on_same_samples"]["accuracy"]
    # The bit-exact datapath stays close to float arithmetic on the same stored weights.
    design = build_design(config, weights)
    err = np.abs(run_golden_real(design, x) - float_lstm(design, x, quantized_weights=True))
    assert err.max() < 0.02
    assert res["golden"]["accuracy"] >= res["pruned_float"]["accuracy"] - 0.05


def test_evaluate_cli(tmp_path, monkeypatch):
    from lstm_hw import progress
    monkeypatch.setattr(progress, "CLI_DELAY", 0.0)  # every stage line, however quick the run
    net, path, x, y, _ = train_tiny(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nreturn_sequences = false\n[sparsity]\nbanks = 3\ndensity = 0.5\n")
    compress_files(path, cfg, tmp_path / "out", epochs=0, trust_model=True)
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "out" / "config.toml"), "-w",
                                       str(tmp_path / "out" / "weights.npz"), "--data", str(tmp_path / "data.npz"),
                                       "--model", str(path), "--trust-model"])
    assert result.exit_code == 0, result.output
    as_json = CliRunner().invoke(main, ["evaluate", str(tmp_path / "out" / "config.toml"), "-w",
                                        str(tmp_path / "out" / "weights.npz"), "--data", str(tmp_path / "data.npz"),
                                        "--model", str(path), "--trust-model", "--json"])
    assert as_json.exit_code == 0, as_json.output
    figures = json.loads(as_json.stdout)
    assert set(figures) == {"float", "pruned_float", "golden", "written"}
    for line, key in (("float", "float"), ("pruned float", "pruned_float"), ("golden (bit-exact)", "golden")):
        assert f"{figures[key]['accuracy']:.4f}" in next(l for l in result.stdout.splitlines() if l.startswith(line))
    assert [line.split("] ", 1)[1] for line in result.stderr.splitlines()] == \
        ["evaluate: float", "evaluate: pruned_float", "evaluate: golden"]
    with torch.no_grad():
        torch_accuracy = float((net(torch.tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean())
    assert figures["float"]["accuracy"] == pytest.approx(torch_accuracy, abs=1 / len(y))


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.zeros((4, 5, 2)), "y": np.zeros(4, dtype=np.int64)}, "x must be real (N, T, 3)"),
    ({"x": np.zeros((4, 5, 3))}, "no array named y"),
    ({"x": np.zeros((4, 5, 3)), "y": np.full(4, 7)}, "labels y must be in [0, 4)"),
    ({"x": np.zeros((4, 5, 3)), "y": np.zeros((4, 5, 4))}, "need model.return_sequences"),
])
def test_evaluate_bad_data(tmp_path, arrays, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\ninput_size = 3\nhidden_size = 6\nnum_layers = 1\noutput_size = 4\n"
                   "return_sequences = false\n[sparsity]\nbanks = 3\n")
    np.savez(tmp_path / "d.npz", **arrays)
    result = CliRunner().invoke(main, ["evaluate", str(cfg), "--data", str(tmp_path / "d.npz")])
    assert_one_line_error(result, needle)


def test_pictures_from_compress_and_evaluate(tmp_path):
    net, path, x, y, _ = train_tiny(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nreturn_sequences = false\n[sparsity]\nbanks = 3\ndensity = 0.5\n")
    result = CliRunner().invoke(main, ["compress", str(path), "--trust-model", "-c", str(cfg),
                                       "-o", str(tmp_path / "out"), "--plots"])
    assert result.exit_code == 0, result.output
    for name in ("sparsity_l0_ih", "sparsity_l0_hh", "weights_l0", "sparsity_fc", "weights_fc"):
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "out" / "config.toml"), "-w",
                                       str(tmp_path / "out" / "weights.npz"), "--data", str(tmp_path / "data.npz"),
                                       "--model", str(path), "--trust-model", "--densities", "1,0.5,0.25", "--plots",
                                       str(tmp_path / "pics"), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    sweep = figures["density_sweep"]
    assert sorted(figures["written"]) == sorted(str(p) for p in (tmp_path / "pics").iterdir())
    assert [row["density"] for row in sweep] == [1.0, 0.5, 0.25]
    config = load_config(tmp_path / "out" / "config.toml")
    weights = load_weights(tmp_path / "out" / "weights.npz", config)
    quarter = replace(config, sparsity=replace(config.sparsity, density=0.25))
    assert sweep[2]["golden"] == score(run_golden_real(build_design(quarter, weights), x), y)["accuracy"]
    assert (tmp_path / "pics" / "accuracy_vs_density.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "pics" / "sparsity_l0_hh.png").exists()


@pytest.mark.parametrize("value, needle", [("1,x", "--densities: expected numbers"), ("0.5,1.5", "--densities: 1.5")])
def test_evaluate_bad_densities(tmp_path, value, needle):
    _, path, *_ = train_tiny(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nreturn_sequences = false\n[sparsity]\nbanks = 3\n")
    compress_files(path, cfg, tmp_path / "out", epochs=0, trust_model=True)
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "out" / "config.toml"), "-w",
                                       str(tmp_path / "out" / "weights.npz"), "--data", str(tmp_path / "data.npz"),
                                       "--densities", value])
    assert_one_line_error(result, needle)
