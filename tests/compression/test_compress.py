"""lstm-hw compress: prune (and fine-tune) a PyTorch LSTM into a config and weights that generate takes.

Models are tiny and trained for a few epochs, so every test takes about a second.
"""

import json
import math
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_hw.cli import main
from lstm_hw.compression.compress import compress_files, frac_for, saturation_count
from lstm_hw.config.schema import load_config
from lstm_hw.errors import ConfigError, UsageError
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import run_golden_real
from lstm_hw.model.weights import load_weights
from lstm_hw.numerics.fixed import Fixed
from lstm_hw.numerics.sparsity import bank_width, kept_per_bank, prune_bank_balanced

torch = pytest.importorskip("torch")
nn = torch.nn

TOML = """\
[sparsity]
banks = 2
density = 0.5
"""


class Net(nn.Module):
    def __init__(self, input_size=3, hidden=6, layers=1, head=0):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, head) if head else None

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y) if self.head is not None else y


def make_model(tmp_path, seed=0, **kwargs) -> tuple[Net, str]:
    torch.manual_seed(seed)
    net = Net(**kwargs).double()
    path = tmp_path / f"model{seed}.pt"
    torch.save(net.state_dict(), path)
    return net, path


def write(path, text):
    path.write_text(text)
    return path


def per_bank_nonzeros(w: np.ndarray, banks: int) -> np.ndarray:
    width = bank_width(w.shape[1], banks)
    padded = np.zeros((w.shape[0], banks * width))
    padded[:, :w.shape[1]] = w
    return np.count_nonzero(padded.reshape(w.shape[0], width, banks), axis=1)   # column c in bank c % banks


def read_outputs(out):
    cfg = load_config(out / "config.toml")
    return cfg, load_weights(out / "weights.npz", cfg), json.loads((out / "report.json").read_text())


def test_without_data_prunes_exactly_per_bank(tmp_path):
    net, model = make_model(tmp_path, input_size=3, hidden=6, layers=2, head=2)
    toml = write(tmp_path / "c.toml", TOML + "head_density = 0.5\n")
    lines = []
    compress_files(model, toml, tmp_path / "out", log=lines.append)
    assert any("no data: prune and quantize only" in line for line in lines)
    cfg, weights, report = read_outputs(tmp_path / "out")
    assert (cfg.model.input_size, cfg.model.hidden_size, cfg.model.num_layers, cfg.model.output_size) == (3, 6, 2, 2)
    original = {k: v.detach().numpy() for k, v in net.lstm.state_dict().items()}
    for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):  # each matrix on its own
        w = weights[name]
        assert np.all(per_bank_nonzeros(w, 2) == kept_per_bank(bank_width(w.shape[1], 2), 0.5))
        np.testing.assert_array_equal(w, prune_bank_balanced(original[name], 2, 0.5))
    assert np.all(per_bank_nonzeros(weights["fc.weight"], 2) == kept_per_bank(3, 0.5))
    assert [g["max_nonzero_per_bank"] for g in report["pruning"]] == [g["kept_per_bank"] for g in report["pruning"]]
    assert report["data"] is None and report["losses"] == {}
    # the weight format fits the largest weight with the most fraction bits; the others are the defaults
    wmax = max(np.abs(a).max() for n, a in weights.items() if "weight" in n)
    assert cfg.quant.weight == Fixed(8, frac_for(wmax, 8))
    assert cfg.quant.weight.max_real >= wmax > cfg.quant.weight.max_real / 2
    assert report["saturation"]["weight"]["count"] == 0
    given = {**original, "fc.weight": net.head.weight.detach().numpy()}
    assert [g["nonzero_model"] for g in report["pruning"]] == \
        [np.count_nonzero(given[g["weights"][0]]) for g in report["pruning"]]
    assert [g["nonzero"] for g in report["pruning"]] == \
        [np.count_nonzero(weights[g["weights"][0]]) for g in report["pruning"]]
    build_design(cfg, weights, strict=True)  # what generate --strict builds: nothing more to prune


def test_written_config_keeps_what_the_toml_says(tmp_path):
    _, model = make_model(tmp_path)
    toml = write(tmp_path / "c.toml", TOML + "[quant]\nweight = { bits = 6, frac = 3 }\n[hardware]\ntop = \"mine\"\n")
    compress_files(model, toml, tmp_path / "out")
    cfg, _, report = read_outputs(tmp_path / "out")
    assert cfg.quant.weight == Fixed(6, 3) and cfg.hardware.top == "mine"
    assert report["formats"]["weight"]["source"] == "config"
    assert "chosen" not in (tmp_path / "out" / "config.toml").read_text().split("weight =")[1].split("\n")[0]


@pytest.mark.parametrize("toml, key", [
    ("[model]\nhidden_size = 5\n", "model.hidden_size"),
    ("[model]\ninput_size = 4\n", "model.input_size"),
    ("[model]\nnum_layers = 2\n", "model.num_layers"),
    ("[model]\noutput_size = 1\n", "model.output_size"),
])
def test_config_contradicting_the_model(tmp_path, toml, key):
    _, model = make_model(tmp_path)
    with pytest.raises(ConfigError, match="but .* has") as e:
        compress_files(model, write(tmp_path / "c.toml", toml), tmp_path / "out")
    assert e.value.path == key
    assert not (tmp_path / "out").exists()


def teacher_data(net, n=64, t=5, seed=0):
    """Targets from the dense model itself: pruning raises the loss, fine-tuning should win some back."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, t, net.lstm.input_size))
    with torch.no_grad():
        y = net(torch.tensor(x)).numpy()
    return x, y


def test_finetune_is_reproducible_masked_and_helps(tmp_path):
    net, model = make_model(tmp_path, input_size=3, hidden=8, head=2)
    x, y = teacher_data(net)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    toml = write(tmp_path / "c.toml", "[sparsity]\nbanks = 2\ndensity = 0.3\n")
    runs = {}
    for name, epochs in (("a", 6), ("b", 6), ("oneshot", 0)):
        runs[name] = compress_files(model, toml, tmp_path / name, tmp_path / "d.npz", epochs=epochs, lr=1e-2,
                              batch_size=16, seed=3)
    for f in ("weights.npz", "config.toml"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    cfg, weights, report = read_outputs(tmp_path / "a")
    for name in ("weight_ih_l0", "weight_hh_l0"):
        w = weights[name]
        assert np.all(per_bank_nonzeros(w, 2) == kept_per_bank(bank_width(w.shape[1], 2), 0.3))
        np.testing.assert_array_equal(prune_bank_balanced(w, 2, 0.3), w)  # generate keeps them as they are
    losses = report["losses"]
    assert len(losses["epochs"]) == 6 and all(math.isfinite(v) for v in losses["epochs"])
    assert report["finetune"]["density_schedule"][-1] == 0.3
    assert report["finetune"]["density_schedule"] == sorted(report["finetune"]["density_schedule"], reverse=True)
    assert losses["dense_float"] < 1e-20  # the teacher's own outputs
    assert losses["pruned_float"] < runs["oneshot"]["losses"]["pruned_float"]


def test_masks_only_shrink_and_stay_zero():
    from lstm_hw.compression.finetune import PruneGroup, cubic_density, finetune, ramp_length
    rng = np.random.default_rng(0)
    weights = {"weight_ih_l0": rng.normal(size=(16, 3)), "weight_hh_l0": rng.normal(size=(16, 4)),
               "bias_ih_l0": rng.normal(size=16), "bias_hh_l0": rng.normal(size=16)}
    weights["weight_hh_l0"][0, :2] = 0.0  # kept zeros must count as kept, not as pruned
    x = rng.uniform(-1, 1, (20, 4, 3))
    y = rng.uniform(-0.5, 0.5, (20, 4))
    group = PruneGroup(("weight_ih_l0", "weight_hh_l0"), 0.25, lambda w, d: prune_bank_balanced(w, 2, d))
    res = finetune(weights, x, y, "mse_last", [group], epochs=4, lr=1e-2, batch_size=8, seed=0)
    w = np.concatenate([res.weights["weight_ih_l0"], res.weights["weight_hh_l0"]], axis=1)
    mask = np.concatenate([res.masks["weight_ih_l0"], res.masks["weight_hh_l0"]], axis=1)
    assert np.all(w[~mask] == 0)
    assert np.all(per_bank_nonzeros(mask.astype(float), 2) == kept_per_bank(4, 0.25))
    assert ramp_length(4, 10) == 3 and ramp_length(30, 10) == 10 and ramp_length(1, 10) == 1
    assert res.densities == [cubic_density(e, 3, 0.25) for e in range(4)]
    assert [cubic_density(e, 2, 0.5) for e in range(3)] == [0.5 + 0.5 / 8, 0.5, 0.5]


def test_golden_model_follows_torch(tmp_path):
    net, model = make_model(tmp_path, seed=5, input_size=3, hidden=6, layers=2, head=2)
    x, y = teacher_data(net, n=16, t=6, seed=1)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    compress_files(model, write(tmp_path / "c.toml", TOML), tmp_path / "out", tmp_path / "d.npz", epochs=2, seed=0)
    cfg, weights, report = read_outputs(tmp_path / "out")
    torch_net = Net(3, 6, 2, 2).double()
    torch_net.load_state_dict({**{f"lstm.{k}": torch.tensor(v) for k, v in weights.items() if "_l" in k},
                               "head.weight": torch.tensor(weights["fc.weight"]),
                               "head.bias": torch.tensor(weights["fc.bias"])})
    with torch.no_grad():
        want = torch_net(torch.tensor(x)).numpy()
    got = run_golden_real(build_design(cfg, weights), x)
    assert got.shape == want.shape == (16, 6, 2)
    # 8-bit weights: a few weight LSBs of error through two layers and the head
    assert np.abs(got - want).max() < 0.05
    assert report["golden_vs_float"]["max_abs_error"] < 0.05
    assert all(v["count"] == 0 for v in report["saturation"].values())


def test_qat_and_classification_on_digits(tmp_path):
    """scikit-learn's 8x8 digits as 8 steps of 8 pixels: cross-entropy on the last step's head output."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images[:200] / 16.0).astype(np.float64)
    y = digits.target[:200].astype(np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _, model = make_model(tmp_path, input_size=8, hidden=16, head=10)
    report = compress_files(model, write(tmp_path / "c.toml", TOML), tmp_path / "out", tmp_path / "d.npz", epochs=4,
                      lr=2e-2, qat=True)
    assert report["data"]["loss"] == "cross_entropy" and report["finetune"]["qat"]
    epochs = report["losses"]["epochs"]
    assert epochs[-1] < epochs[0] and report["losses"]["pruned_float"] < report["losses"]["dense_float"]
    cfg, weights, _ = read_outputs(tmp_path / "out")
    assert report["formats"]["weight"]["rule"].endswith("--qat)")
    assert cfg.model.output_size == 10
    build_design(cfg, weights, strict=True)  # fine-tuned within the pattern: generate --strict takes it


def test_helpers():
    assert frac_for(1.0, 16) == 14 and frac_for(0.49, 8) == 8 and frac_for(0.0, 8) is None
    assert frac_for(2.0 ** -20, 8) == 26
    fmt = Fixed(4, 2)  # -2 .. 1.75 in steps of 0.25
    assert saturation_count([1.75, 1.87, 1.875, -2.0, -2.125, -2.13], fmt) == 2


def test_bad_data(tmp_path):
    _, model = make_model(tmp_path)
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2, 5)), y=np.zeros(4, dtype=np.int64))
    with pytest.raises(UsageError, match=r"x must be real \(N, T, 3\)"):
        compress_files(model, None, tmp_path / "out", tmp_path / "d.npz")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2, 3)), y=np.zeros((4, 5)))
    with pytest.raises(UsageError, match="y must be integer labels"):
        compress_files(model, None, tmp_path / "out", tmp_path / "d.npz")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2, 3)))
    with pytest.raises(UsageError, match="no array named y"):
        compress_files(model, None, tmp_path / "out", tmp_path / "d.npz")


# -- command line -------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_compress_then_generate_inputs(tmp_path, monkeypatch):
    from lstm_hw import progress
    monkeypatch.setattr(progress, "CLI_DELAY", 0.0)  # every stage line, however quick the run
    net, model = make_model(tmp_path)
    x, y = teacher_data(net, n=8, t=3)
    np.savez(tmp_path / "d.npz", x=x, y=y[:, -1])
    toml = write(tmp_path / "c.toml", TOML)
    r = invoke("compress", model, "--config", toml, "--data", tmp_path / "d.npz", "-o", tmp_path / "out",
               "--epochs", 2, "--seed", 1)
    assert r.exit_code == 0, r.output
    for stage in ("model: ", "data: ", "formats: ", "saturation: ", "wrote ", "next: "):
        assert stage in r.stdout, stage
    epochs = [line.split("] ", 1)[1] for line in r.stderr.splitlines() if "] epoch " in line]
    assert [e.split(":")[0] for e in epochs] == ["epoch 1/2", "epoch 2/2"] and "ETA" in epochs[0], r.stderr
    quiet = invoke("compress", model, "--config", toml, "--data", tmp_path / "d.npz", "-o", tmp_path / "q",
                   "--epochs", 2, "--seed", 1, "--quiet", "--json")
    assert quiet.exit_code == 0 and "] epoch" not in quiet.stderr and "next: " in quiet.stderr, quiet.stderr
    assert json.loads(quiet.stdout) == json.loads((tmp_path / "q" / "report.json").read_text())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.toml", "report.json", "weights.npz"]
    tomllib.loads((tmp_path / "out" / "config.toml").read_text())
    r = invoke("compress", model, "--config", toml, "-o", tmp_path / "out")
    assert r.exit_code == 2 and r.stderr.strip().endswith("(use --force to overwrite)")
    assert invoke("compress", model, "--config", toml, "-o", tmp_path / "out", "--force").exit_code == 0


def one_line_error(r, needle):
    assert r.exit_code == 2, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr


def test_cli_errors(tmp_path, monkeypatch):
    _, model = make_model(tmp_path)
    one_line_error(invoke("compress", model, "--config", write(tmp_path / "c.toml", "[model]\nhidden_size = 9\n"),
                          "-o", tmp_path / "out"), "model.hidden_size: is 9, but")
    torch.save(nn.LSTM(3, 4, bidirectional=True).state_dict(), tmp_path / "bi.pt")
    one_line_error(invoke("compress", tmp_path / "bi.pt", "-o", tmp_path / "out"),
                   "bidirectional LSTMs are not supported")
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    one_line_error(invoke("compress", model, "-o", tmp_path / "out"),
                   "needs PyTorch: pip install 'lstm-hw[torch]'")


def test_torch_stays_optional():
    code = ("import sys, lstm_hw.cli, lstm_hw.compression.compress, lstm_hw.model.torch_io; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bits_only_formats_get_fraction_bits_chosen(tmp_path):
    """``weight = { bits = 6 }`` keeps 6 bits and takes the most fraction bits that hold max |w|."""
    model = tmp_path / "m.npz"
    rng = np.random.default_rng(0)
    arrays = {"weight_ih_l0": rng.uniform(-1.5, 1.5, (16, 3)), "weight_hh_l0": rng.uniform(-0.3, 0.3, (16, 4)),
              "bias_ih_l0": np.zeros(16), "bias_hh_l0": np.zeros(16)}
    np.savez(model, **arrays)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[quant]\nweight = { bits = 6 }\n[sparsity]\nbanks = 1\ndensity = 1.0\n")
    compress_files(model, cfg, tmp_path / "out")
    written = load_config(tmp_path / "out" / "config.toml")
    max_abs = max(np.abs(arrays["weight_ih_l0"]).max(), np.abs(arrays["weight_hh_l0"]).max())
    assert written.quant.weight.bits == 6
    assert written.quant.weight.max_real >= max_abs > Fixed(6, written.quant.weight.frac + 1).max_real


def test_bits_only_bias_is_refused(tmp_path):
    model = tmp_path / "m.npz"
    np.savez(model, weight_ih_l0=np.ones((16, 3)), weight_hh_l0=np.ones((16, 4)), bias_ih_l0=np.zeros(16),
             bias_hh_l0=np.zeros(16))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[quant]\nbias = { bits = 20 }\n")
    with pytest.raises(ConfigError) as info:
        compress_files(model, cfg, tmp_path / "out")
    assert info.value.path == "quant.bias"
    assert not (tmp_path / "out").exists()


def test_unstructured_pattern_reports_its_utilisation(tmp_path):
    model = tmp_path / "m.npz"
    rng = np.random.default_rng(4)
    np.savez(model, weight_ih_l0=rng.normal(size=(32, 8)), weight_hh_l0=rng.normal(size=(32, 8)),
             bias_ih_l0=np.zeros(32), bias_hh_l0=np.zeros(32))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sparsity]\npattern = "unstructured"\ndensity = 0.25\nbanks = 4\n')
    report = compress_files(model, cfg, tmp_path / "out")
    assert [entry["weights"] for entry in report["pruning"]] == [["weight_ih_l0"], ["weight_hh_l0"]]
    for entry in report["pruning"]:  # each matrix pruned on its own
        assert entry["nonzero"] == int(np.floor(0.25 * 32 * 8 + 0.5))
        assert entry["pe_utilisation"] == pytest.approx(entry["nonzero"] / (32 * 4 * entry["max_nonzero_per_bank"]),
                                                        abs=1e-6)
        assert entry["pe_utilisation"] < 1
    assert load_config(tmp_path / "out" / "config.toml").sparsity.pattern == "unstructured"


# -- fine-tuning until validation stops improving ------------------------------------------------------------

def tiny_problem(n=40, t=4, seed=0, labels=False):
    """A one-layer LSTM(3 -> 4) without head: weights, x and targets (real, or labels of the last h)."""
    rng = np.random.default_rng(seed)
    weights = {"weight_ih_l0": rng.normal(0, 0.5, (16, 3)), "weight_hh_l0": rng.normal(0, 0.5, (16, 4)),
               "bias_ih_l0": rng.normal(0, 0.1, 16), "bias_hh_l0": rng.normal(0, 0.1, 16)}
    x = rng.uniform(-1, 1, (n, t, 3))
    y = rng.integers(0, 4, n) if labels else rng.uniform(-0.5, 0.5, (n, 4))
    return weights, x, y


def bank_group(density, banks=2):
    from lstm_hw.compression.finetune import PruneGroup
    return [PruneGroup((name,), density, lambda w, d: prune_bank_balanced(w, banks, d))
            for name in ("weight_ih_l0", "weight_hh_l0")]


def val_score(weights, x, y, kind, val_fraction, seed):
    """The validation loss of ``weights`` on the part finetune holds out."""
    from lstm_hw.compression.data import validation_split
    from lstm_hw.compression.finetune import evaluate_loss
    _, val = validation_split(y, val_fraction, seed)
    return evaluate_loss(weights, x[val], y[val], kind)


def test_validation_split_is_disjoint_seeded_and_stratified():
    from lstm_hw.compression.data import validation_split
    y = np.repeat(np.arange(5), [40, 30, 20, 10, 100])
    train, val = validation_split(y, 0.1, seed=4)
    assert len(val) == 20 and np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.bincount(y[val], minlength=5), [4, 3, 2, 1, 10])   # every class, in proportion
    again = validation_split(y, 0.1, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    other = validation_split(y, 0.1, seed=5)[1]
    assert not np.array_equal(val, other) and np.array_equal(np.bincount(y[other], minlength=5), [4, 3, 2, 1, 10])
    real = np.linspace(0, 1, 30)
    r_train, r_val = validation_split(real, 0.2, seed=0)
    assert len(r_val) == 6 and not set(r_train) & set(r_val) and len(r_train) + len(r_val) == 30
    assert validation_split(real, 0.0)[1].size == 0
    with pytest.raises(UsageError, match=r"4 sequence\(s\) are too few to hold out 10% for validation"):
        validation_split(np.arange(4), 0.1)


def test_early_stopping_on_a_plateau():
    """A learning rate too small to move anything: validation never improves after the first epoch at the final
    density, so training stops ``patience`` epochs later, far below the cap."""
    from lstm_hw.compression.finetune import finetune
    weights, x, y = tiny_problem()
    res = finetune(weights, x, y, "mse_last", bank_group(0.5), epochs=60, lr=1e-14, ramp_epochs=3, patience=4,
                   val_fraction=0.25, seed=1)
    assert res.stopped == "patience" and res.ramp_epochs == 3 and res.epochs_run == 3 + 4
    assert [p["density"] for p in res.curve] == res.densities and res.densities[2:] == [0.5] * 5
    final = [p["val_loss"] for p in res.curve[2:]]
    assert max(final) - min(final) < 1e-6 * min(final)   # a plateau: no change counts as progress
    assert 3 <= res.best_epoch <= 7 and res.curve[res.best_epoch - 1]["val_loss"] == min(final)
    # patience // 3 = 1: the rate halves after every epoch without progress
    assert [p["lr"] for p in res.curve] == [1e-14] * 4 + [5e-15, 2.5e-15, 1.25e-15]
    assert (res.train_sequences, res.val_sequences) == (30, 10)


def test_the_best_weights_at_the_final_density_are_kept():
    """Noise targets: training fits the training part and validation gets worse. The weights kept are those of
    the best validation score after the ramp, though an epoch of the ramp (nearly dense) scored better."""
    from lstm_hw.compression.finetune import finetune
    weights, x, y = tiny_problem(n=40, seed=3)
    res = finetune(weights, x, y, "mse_last", bank_group(0.25), epochs=80, lr=5e-2, ramp_epochs=3, patience=5,
                   val_fraction=0.25, seed=0, lr_schedule="constant")
    final = [p for p in res.curve if p["epoch"] >= res.ramp_epochs]
    best = min(final, key=lambda p: p["val_loss"])
    assert res.stopped == "patience" and res.best_epoch == best["epoch"] < res.epochs_run
    assert res.epochs_run == res.best_epoch + 5
    assert min(p["val_loss"] for p in res.curve) < best["val_loss"]   # the ramp had a better one, not kept
    assert val_score(res.weights, x, y, "mse_last", 0.25, 0) == pytest.approx(best["val_loss"], rel=1e-12)
    assert all("val_accuracy" not in p for p in res.curve)   # real targets: the loss only
    for name in ("weight_ih_l0", "weight_hh_l0"):
        np.testing.assert_array_equal(prune_bank_balanced(res.weights[name], 2, 0.25), res.weights[name])


def test_progress_is_either_figure_and_the_kept_weights_have_the_best_accuracy():
    from lstm_hw.compression.finetune import MIN_DELTA, _better, _progressed
    record = {}
    assert _progressed({"val_loss": 1.0, "val_accuracy": 0.5}, record)
    assert _progressed({"val_loss": 0.9, "val_accuracy": 0.5}, record)                       # the loss alone
    assert not _progressed({"val_loss": 0.9 * (1 - MIN_DELTA / 2), "val_accuracy": 0.5}, record)  # too little
    assert _progressed({"val_loss": 2.0, "val_accuracy": 0.6}, record)                       # the accuracy alone
    assert record == {"val_loss": 0.9, "val_accuracy": 0.6}
    best = {"val_loss": 0.5, "val_accuracy": 0.8}
    assert _better({"val_loss": 0.9, "val_accuracy": 0.9}, best)
    assert not _better({"val_loss": 0.1, "val_accuracy": 0.7}, best)
    assert _better({"val_loss": 0.4, "val_accuracy": 0.8}, best) and not _better(best, best)


def test_the_cap_and_no_validation():
    from lstm_hw.compression.finetune import finetune
    weights, x, y = tiny_problem(labels=True)
    capped = finetune(weights, x, y, "cross_entropy", bank_group(0.5), epochs=5, lr=1e-2, patience=50, seed=0)
    assert capped.stopped == "cap" and capped.epochs_run == 5 and capped.best_epoch is not None
    assert all(0 <= p["val_accuracy"] <= 1 and "val_loss" in p for p in capped.curve)
    fixed = finetune(weights, x, y, "cross_entropy", bank_group(0.5), epochs=5, lr=1e-2, val_fraction=0, seed=0)
    assert fixed.stopped == "cap" and fixed.epochs_run == 5 and fixed.best_epoch is None
    assert fixed.val_sequences == 0 and all("val_loss" not in p for p in fixed.curve)


def test_report_has_the_curve_and_why_it_stopped(tmp_path):
    _, model = make_model(tmp_path, input_size=3, hidden=4, head=3)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.uniform(-1, 1, (30, 3, 3)), y=rng.integers(0, 3, 30))
    lines = []
    report = compress_files(model, write(tmp_path / "c.toml", TOML), tmp_path / "out", tmp_path / "d.npz",
                            epochs=6, patience=2, ramp_epochs=2, val_fraction=0.2, log=lines.append)
    ft = report["finetune"]
    assert (ft["epochs"], ft["patience"], ft["val_fraction"], ft["val_sequences"], ft["train_sequences"]) == \
        (6, 2, 0.2, 6, 24)
    assert ft["val_metric"] == "accuracy or loss" and ft["stopped"] in ("patience", "cap") and ft["qat"]
    assert len(ft["curve"]) == ft["epochs_run"] == len(report["losses"]["epochs"]) <= 6
    assert [p["epoch"] for p in ft["curve"]] == list(range(1, ft["epochs_run"] + 1))
    for p in ft["curve"]:
        assert set(p) == {"epoch", "density", "lr", "train_loss", "val_loss", "val_accuracy"}
    assert ft["final_density_epoch"] == 2 <= ft["best_epoch"] <= ft["epochs_run"]
    assert [p["density"] for p in ft["curve"]] == ft["density_schedule"]
    summary = next(line for line in lines if line.startswith("fine-tuned "))
    assert f"fine-tuned {ft['epochs_run']} epoch(s) of at most 6" in summary
    assert f"best validation at epoch {ft['best_epoch']}" in summary
    assert json.loads((tmp_path / "out" / "report.json").read_text())["finetune"] == json.loads(json.dumps(ft))


def test_zero_epochs_prunes_at_once(tmp_path):
    import lstm_hw
    net, model = make_model(tmp_path, input_size=3, hidden=6, head=2)
    x, y = teacher_data(net, n=3)  # too few to hold any out: not needed without training
    weights, config, report = lstm_hw.compress(model, {"sparsity": {"banks": 2, "density": 0.5}}, (x, y), epochs=0)
    original = {k: v.detach().numpy() for k, v in net.lstm.state_dict().items()}
    original.update({"fc.weight": net.head.weight.detach().numpy(), "fc.bias": net.head.bias.detach().numpy()})
    pruned = lstm_hw.prune(original, config)
    for name in weights:
        np.testing.assert_array_equal(weights[name], pruned[name], err_msg=name)
    ft = report["finetune"]
    assert (ft["epochs_run"], ft["best_epoch"], ft["stopped"], ft["curve"], ft["final_density_epoch"]) == \
        (0, None, None, [], None)


def test_finetune_options_are_checked_in_one_line(tmp_path):
    _, model = make_model(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.uniform(-1, 1, (6, 3, 3)), y=rng.uniform(-1, 1, (6, 6)))
    base = ("compress", model, "-d", tmp_path / "d.npz", "-o", tmp_path / "out")
    one_line_error(invoke(*base, "--patience", 0), "--patience")
    one_line_error(invoke(*base, "--val-fraction", 0.6), "--val-fraction")
    one_line_error(invoke(*base, "--epochs", -1), "--epochs")
    one_line_error(invoke(*base, "--ramp-epochs", 0), "--ramp-epochs")
    one_line_error(invoke(*base, "--lr-schedule", "step"), "--lr-schedule")
    one_line_error(invoke(*base, "--val-fraction", 0.05), "6 sequence(s) are too few to hold out 5% for validation")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="patience must be an integer >= 1, got 0"):
        compress_files(model, None, tmp_path / "out", tmp_path / "d.npz", patience=0)
    with pytest.raises(UsageError, match=r"val_fraction must be a number in \[0, 0.5\], got 0.9"):
        compress_files(model, None, tmp_path / "out", tmp_path / "d.npz", val_fraction=0.9)
