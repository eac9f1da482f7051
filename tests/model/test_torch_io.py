"""Reading PyTorch models: whole modules, state_dicts, .npz, and every refusal as one ConfigError."""

import numpy as np
import pytest

from lstm_hw.errors import ConfigError, UsageError
from lstm_hw.model.torch_io import load_model

torch = pytest.importorskip("torch")
nn = torch.nn


class Net(nn.Module):
    """An LSTM with an optional dense head on its output, as people write them."""

    def __init__(self, input_size=3, hidden=4, layers=1, head=0, batch_first=True, **lstm_kwargs):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden, layers, batch_first=batch_first, **lstm_kwargs)
        self.fc = nn.Linear(hidden, head) if head else None

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y) if self.fc is not None else y


class TwoLSTMs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.LSTM(3, 4)
        self.b = nn.LSTM(4, 4)


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4)


def expected(net: Net) -> dict[str, np.ndarray]:
    out = {k: v.detach().numpy().astype(np.float64) for k, v in net.rnn.state_dict().items()}
    if net.fc is not None:
        out["fc.weight"] = net.fc.weight.detach().numpy().astype(np.float64)
        out["fc.bias"] = net.fc.bias.detach().numpy().astype(np.float64)
    return out


def assert_same(weights, net):
    want = expected(net)
    assert list(weights) == list(want)
    for name, a in want.items():
        assert weights[name].dtype == np.float64
        np.testing.assert_array_equal(weights[name], a, err_msg=name)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("head", [0, 3])
@pytest.mark.parametrize("batch_first", [True, False])
def test_whole_module_and_state_dict(tmp_path, layers, head, batch_first):
    torch.manual_seed(layers * 10 + head)
    net = Net(input_size=3, hidden=4, layers=layers, head=head, batch_first=batch_first)
    torch.save(net, tmp_path / "m.pt")
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(UsageError, match="holds more than tensors"):
        load_model(tmp_path / "m.pt")
    w, sizes = load_model(tmp_path / "m.pt", trust_model=True)
    assert_same(w, net)
    assert sizes["batch_first"] is batch_first and sizes["source"] == "module"
    assert any("weights_only=False" in n for n in sizes["notes"])
    assert {k: sizes[k] for k in ("input_size", "hidden_size", "num_layers", "output_size")} == \
        {"input_size": 3, "hidden_size": 4, "num_layers": layers, "output_size": head}
    w2, sizes2 = load_model(tmp_path / "sd.pt")
    assert_same(w2, net)
    assert sizes2["batch_first"] is None and sizes2["source"] == "state_dict" and sizes2["notes"] == []
    assert sizes2["output_size"] == head


def test_bare_lstm_checkpoint_and_npz(tmp_path):
    torch.manual_seed(1)
    lstm = nn.LSTM(2, 3, 2)
    torch.save(lstm, tmp_path / "lstm.pt")
    torch.save({"epoch": 3, "model_state_dict": {f"encoder.{k}": v for k, v in lstm.state_dict().items()}},
               tmp_path / "ckpt.pt")
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in lstm.state_dict().items()})
    want = {k: v.numpy().astype(np.float64) for k, v in lstm.state_dict().items()}
    for name in ("lstm.pt", "ckpt.pt", "w.npz"):
        w, sizes = load_model(tmp_path / name, trust_model=name == "lstm.pt")
        assert sorted(w) == sorted(want), name
        for k in want:
            np.testing.assert_array_equal(w[k], want[k])
        assert (sizes["input_size"], sizes["hidden_size"], sizes["num_layers"], sizes["output_size"]) == (2, 3, 2, 0)


def test_lstm_without_bias_gets_zero_biases(tmp_path):
    torch.save(nn.LSTM(2, 3, bias=False).state_dict(), tmp_path / "sd.pt")
    w, sizes = load_model(tmp_path / "sd.pt")
    assert np.all(w["bias_ih_l0"] == 0) and w["bias_hh_l0"].shape == (12,)
    assert any("no biases" in n for n in sizes["notes"])


def save_state(tmp_path, state) -> str:
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("make, needle", [
    (lambda: nn.Sequential(nn.Linear(3, 4)), "no nn.LSTM"),
    (GRUNet, "found GRU"),
    (TwoLSTMs, "more than one nn.LSTM"),
    (lambda: nn.LSTM(3, 4, proj_size=2), "proj_size is not supported"),
    (lambda: nn.LSTM(3, 4, bidirectional=True), "bidirectional LSTMs are not supported"),
    (lambda: nn.Sequential(nn.Linear(5, 3), nn.LSTM(3, 4)), "Linear takes 5 inputs"),
])
def test_module_refusals(tmp_path, make, needle):
    torch.save(make(), tmp_path / "m.pt")
    with pytest.raises(ConfigError, match=needle):
        load_model(tmp_path / "m.pt", trust_model=True)


@pytest.mark.parametrize("make, needle", [
    (lambda: {"fc.weight": torch.zeros(2, 4)}, "no LSTM weights"),
    (lambda: nn.LSTM(3, 4, proj_size=2).state_dict(), "proj_size is not supported"),
    (lambda: nn.LSTM(3, 4, bidirectional=True).state_dict(), "bidirectional LSTMs are not supported"),
    (lambda: {**{f"a.{k}": v for k, v in nn.LSTM(3, 4).state_dict().items()},
              **{f"b.{k}": v for k, v in nn.LSTM(3, 4).state_dict().items()}}, "more than one LSTM"),
    (lambda: {**nn.LSTM(3, 4).state_dict(), "weight_hh_l0": torch.zeros(16, 5)}, r"shape \(16, 5\) is not"),
    (lambda: {**nn.LSTM(3, 4).state_dict(), "bias_ih_l0": torch.zeros(15)}, r"shape \(15,\) does not match"),
    (lambda: {**nn.LSTM(3, 4).state_dict(), "bias_hh_l0": torch.full((16,), float("nan"))}, "NaN"),
    (lambda: {**nn.LSTM(3, 4).state_dict(), "weight_ih_l0": torch.full((16, 3), float("inf"))}, "NaN or inf"),
    (lambda: {**nn.LSTM(3, 4).state_dict(), "emb.weight": torch.zeros(10, 3)}, "emb.weight: unexpected"),
    (lambda: {**nn.LSTM(3, 4, 2).state_dict(), "weight_ih_l1": torch.zeros(16, 3)}, r"weight_ih_l1: shape"),
    (lambda: [1, 2], "holds a list"),
])
def test_state_dict_refusals(tmp_path, make, needle):
    with pytest.raises(ConfigError, match=needle):
        load_model(save_state(tmp_path, make()))


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model" * 10)
    with pytest.raises(ConfigError, match="cannot read"):
        load_model(tmp_path / "junk.pt")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read"):
        load_model(tmp_path / "junk.npz")


def test_a_pickle_runs_no_code_unless_trusted(tmp_path):
    from helpers import trapped_model
    path = trapped_model(tmp_path / "t.pt", tmp_path / "marker")
    with pytest.raises(UsageError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: holds more than tensors (it names io.open") and "\n" not in message
    assert "torch.save(model.state_dict(), path)" in message and "trust_model=True" in message
    assert not (tmp_path / "marker").exists()
    with pytest.raises(ConfigError, match="payload: is a TextIOWrapper"):
        load_model(path, trust_model=True)
    assert (tmp_path / "marker").exists()  # the file was live: trusted, its code ran


def test_a_module_whose_class_is_gone_says_to_save_the_state_dict(tmp_path):
    """A model of the user's own class, saved in one process and read in another that lacks the class."""
    import subprocess
    import sys
    script = ("import torch\n"
              "class M(torch.nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.lstm = torch.nn.LSTM(3, 4)\n"
              f"torch.save(M(), {str(tmp_path / 'm.pt')!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True)
    with pytest.raises(ConfigError) as info:
        load_model(tmp_path / "m.pt", trust_model=True)
    assert "cannot unpickle: Can't get attribute 'M'" in str(info.value)
    assert "save its state_dict instead" in str(info.value)
