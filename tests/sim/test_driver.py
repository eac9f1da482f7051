"""The generated PYNQ driver, unmodified, against the RTL through simulated AXI DMAs, under both simulators."""

import json

import numpy as np
import pytest

import lstm_hw
from configs import E2E_CONFIGS, INTERLEAVE_CONFIGS
from helpers import SIMULATORS
from lstm_hw.config.schema import parse_config
from lstm_hw.model.weights import random_weights
from lstm_hw.sim.runner import run_cocotb

# The default design; four elements a beat with a head in another format; h_T only, two lanes a beat; three
# interleaved sequences a transfer.
CASES = ["default", "lanes4_parallel_head", "lanes2_unpack_last", "il3_lanes4_head"]


def on_pynq_z2(case: str) -> dict:
    config = {**E2E_CONFIGS, **INTERLEAVE_CONFIGS}[case]
    return {**config, "hardware": {**config.get("hardware", {}), "board": "pynq-z2"}}


def run_driver(acc, inputs, sim, tmp_path, calls=None, seed=4):
    """The driver file that ``generate`` wrote for ``acc``'s design, unmodified, on ``inputs`` (and ``calls``)
    against the RTL in one simulation, the DMA's idle and stall cycles seeded by ``seed``: its results."""
    meta = acc.metadata
    rtl = tmp_path / "rtl"
    acc.write(rtl)
    np.savez(tmp_path / "x.npz", **inputs)
    env = {"LSTM_HW_DRIVER": str(rtl / meta["system"]["driver"]), "LSTM_HW_X": str(tmp_path / "x.npz"),
           "LSTM_HW_RESULT": str(tmp_path / "y.npz"), "LSTM_HW_SEED": str(seed)}
    if calls is not None:
        env["LSTM_HW_CALLS"] = json.dumps(calls)
    run, failed = run_cocotb(sim=sim, sources=[rtl / s for s in meta["sources"]], toplevel=meta["top"],
                             test_module="lstm_hw.sim.tb_driver", build_dir=tmp_path / sim, env=env)
    assert (run, failed) == (1, 0), (tmp_path / sim / "test.log").read_text()[-3000:]
    return np.load(tmp_path / "y.npz")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("case", CASES)
def test_driver_is_bit_exact_with_predict(case, sim, tmp_path):
    acc = lstm_hw.convert(None, on_pynq_z2(case))
    meta = acc.metadata
    rng = np.random.default_rng(7)
    n_in = meta["input"]["elements_per_timestep"]
    # Ties between two codes (they round up), and values beyond the format's range (they saturate).
    ties = (rng.integers(-40, 40, (4, n_in)) + 0.5) * 2.0 ** -meta["input"]["frac"]
    inputs = {"one": rng.uniform(-1.5, 1.5, (5, n_in)), "batch": rng.uniform(-9, 9, (3, 4, n_in)),
              "short": rng.uniform(-1, 1, (2, 1, n_in)), "ties": ties}
    got = run_driver(acc, inputs, sim, tmp_path, seed=3)
    for name, x in inputs.items():
        want = acc.predict(x)
        assert got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    # One transfer each way per sequence (1 + 3 + 2 + 1), or per group of interleaved ones (the last of
    # each input completed with sequences of zeros).
    n = meta["interleave"]
    transfers = sum(-(-(len(x) if x.ndim == 3 else 1) // n) for x in inputs.values())
    assert got["transfers"].tolist() == [transfers, transfers] and transfers == (7 if n == 1 else 4)


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_batches_go_in_one_transfer(sim, tmp_path):
    """sequence_length = 4: a batch of sequences of 4 (or 8) steps in one transfer each way; sequences of
    another length one transfer each; h_T of every sequence, bit-exact with predict."""
    acc = lstm_hw.convert(None, {"model": {"input_size": 3, "hidden_size": 5, "num_layers": 1,
                                           "return_sequences": False, "sequence_length": 4},
                                 "hardware": {"board": "pynq-z2"}})
    rng = np.random.default_rng(8)
    inputs = {"batch": rng.uniform(-2, 2, (6, 4, 3)), "twice": rng.uniform(-2, 2, (3, 8, 3)),
              "short": rng.uniform(-2, 2, (2, 3, 3))}
    got = run_driver(acc, inputs, sim, tmp_path)
    for name, x in inputs.items():
        np.testing.assert_array_equal(got[name], acc.predict(x), err_msg=name)
    assert got["twice"].shape == (3, 2, 5)   # two sequences of 4 in each, h_T of each
    # batch and twice one transfer each; short, one per sequence.
    assert got["transfers"].tolist() == [4, 4]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_stateful_chunks_equal_whole_sequences(sim, tmp_path):
    """A stateful design: a sequence sent as chunks of 1, 3 and 7 steps, reset_state(), another in chunks
    of 7, 3 and 1; together they equal predict on each sequence whole."""
    acc = lstm_hw.convert(None, {"model": {"input_size": 4, "hidden_size": 6, "num_layers": 2, "stateful": True},
                                 "hardware": {"board": "pynq-z2"}})
    rng = np.random.default_rng(9)
    a, b = rng.uniform(-2, 2, (11, 4)), rng.uniform(-2, 2, (11, 4))
    cuts = {"a": [1, 3, 7], "b": [7, 3, 1]}
    inputs, calls = {}, []
    for seq, x in (("a", a), ("b", b)):
        if calls:
            calls.append("reset_state")
        for n, (start, size) in enumerate(zip(np.cumsum([0] + cuts[seq][:-1]), cuts[seq])):
            inputs[f"{seq}{n}"] = x[start:start + size]
            calls.append(f"{seq}{n}")
    got = run_driver(acc, inputs, sim, tmp_path, calls)
    for seq, x in (("a", a), ("b", b)):
        chunks = np.concatenate([got[f"{seq}{n}"] for n in range(len(cuts[seq]))])
        np.testing.assert_array_equal(chunks, acc.predict(x), err_msg=seq)
    # One transfer each way per chunk; the driver's reset on loading, and reset_state(): a pulse each.
    assert got["transfers"].tolist() == [6, 6] and int(got["gpio_writes"]) == 4


#: Small designs with run-time weights on the PYNQ-Z2: one with h_t of every step, one stateful with a head (a
#: load clears the state; an image the driver refuses leaves it).
RAM_CONFIGS = {
    "ram": {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1}, "sparsity": {"banks": 2},
            "hardware": {"board": "pynq-z2", "weights": "ram"}},
    "ram_stateful_head": {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2,
                                    "stateful": True},
                          "sparsity": {"banks": 2}, "hardware": {"board": "pynq-z2", "weights": "ram"}},
}


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("case", sorted(RAM_CONFIGS))
def test_load_weights_switches_models(case, sim, tmp_path):
    """A design generated with model A runs A; load_weights with B's image as bytes, A's arrays as a dict
    (packed by lstm_hw), B's image as a .bin path and A's .npz path each switch the model, bit-exact with the
    golden model of the weights loaded; an image of another structure is refused before reaching the hardware,
    which runs on with A."""
    config = RAM_CONFIGS[case]
    weights_a = random_weights(parse_config(config))
    weights_b = random_weights(parse_config({**config, "model": {**config["model"], "seed": 7}}))
    acc_a, acc_b = lstm_hw.convert(weights_a, config, warn=False), lstm_hw.convert(weights_b, config, warn=False)
    # Another structure: the same memories, another activation format, so only the digest differs.
    other = lstm_hw.convert(weights_a, {**config, "quant": {"activation": {"bits": 16, "frac": 11}}}, warn=False)
    assert other.metadata["weights"]["image"]["words"] == acc_a.metadata["weights"]["image"]["words"]
    (tmp_path / "b.bin").write_bytes(acc_b.pack_weights())
    (tmp_path / "other.bin").write_bytes(other.pack_weights())
    np.savez(tmp_path / "a.npz", **weights_a)
    rng = np.random.default_rng(10)
    names = ["a0", "b0", "a1", "b1", "a2", "a3"]
    inputs = {name: rng.uniform(-2, 2, (int(rng.integers(2, 6)), 3)) for name in names}
    calls = ["a0",
             {"load_weights": str(tmp_path / "b.bin"), "as": "bytes"}, "b0",
             {"load_weights": str(tmp_path / "a.npz"), "as": "dict"}, "a1",
             {"load_weights": str(tmp_path / "b.bin"), "as": "path"}, "b1",
             {"load_weights": str(tmp_path / "a.npz"), "as": "path"}, "a2",
             {"load_weights": str(tmp_path / "other.bin"), "as": "bytes", "refused": True}, "a3"]
    for x in inputs.values():   # the two models tell apart on every input
        assert not np.array_equal(acc_a.predict(x), acc_b.predict(x))
    got = run_driver(acc_a, inputs, sim, tmp_path, calls, seed=5)
    for name in names[:-1]:   # each right after the driver's start or a load: from zero state
        want = (acc_a if name[0] == "a" else acc_b).predict(inputs[name])
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    if config["model"].get("stateful"):   # the refused image did not clear the state: a3 continues a2
        a2, a3 = inputs["a2"], inputs["a3"]
        want = acc_a.predict(np.concatenate([a2, a3]))[len(a2):]
        assert not np.array_equal(want, acc_a.predict(a3))
    else:
        want = acc_a.predict(inputs["a3"])
    np.testing.assert_array_equal(got["a3"], want, err_msg="a3")
    refused = next(n for n, call in enumerate(calls) if isinstance(call, dict) and call.get("refused"))
    assert str(got[f"refused{refused}"]).startswith("ValueError: the weight image is for another structure: digest ")
    # Four images went through the weights DMA, whole, and weights_ok was read after each; none else.
    words = acc_a.metadata["weights"]["image"]["words"]
    assert (int(got["weights_transfers"]), int(got["weights_words"]), int(got["weights_ok_reads"])) == \
        (4, 4 * words, 4)
    assert got["transfers"].tolist() == [6, 6]
    # The state was cleared by the loads themselves: state_rst pulsed only as the driver started.
    assert int(got["gpio_writes"]) == (2 if config["model"].get("stateful") else 0)
