"""One point: compressed as compress does, scored by the golden model, timed by the schedule, estimated."""

import hashlib
import io
import tomllib

import numpy as np

from lstm_hw.api import convert
from lstm_hw.compression.compress import compress
from lstm_hw.compression.evaluate import score
from lstm_hw.config.schema import parse_config
from lstm_hw.explore.points import Inputs, evaluate_point, point_key
from lstm_hw.model.golden import run_golden_real
from lstm_hw.synth.estimate import estimate

RAW = {"model": {"return_sequences": False}, "sparsity": {"banks": 2, "density": 0.5},
       "quant": {"weight": {"bits": 6}}, "activation": {"method": "lut"}}


def test_a_point_is_the_compressed_design_scored_and_estimated(tiny):
    weights, (x, y) = tiny
    x_val, y_val = x[:20], y[:20]
    result = evaluate_point(RAW, Inputs(weights, (x, y), (x_val, y_val)))
    row = result["row"]
    pruned, config, _ = compress(weights, RAW, (x, y), epochs=0, val_fraction=0.0)
    config_text, npz = result["config_toml"].encode(), result["weights_npz"]
    assert parse_config(tomllib.loads(result["config_toml"])) == config
    assert config.quant.weight.bits == 6
    with np.load(io.BytesIO(npz), allow_pickle=False) as f:
        assert set(f.files) == set(pruned) and all(np.array_equal(f[k], pruned[k]) for k in pruned)
    assert row["digest"] == hashlib.sha256(config_text + npz).hexdigest()[:16]
    acc = convert(pruned, config, warn=False)
    assert row["accuracy"] == score(run_golden_real(acc.design, x_val), y_val)["accuracy"]
    meta = acc.metadata                                  # from the rendered files
    assert (row["cycles_per_timestep"], row["latency_cycles"]) == (meta["cycles_per_timestep"],
                                                                   meta["latency_cycles"])
    est = estimate(acc.design)
    assert (row["dsp"], row["bram36"], row["lut"], row["ff"]) == (est["dsps"], est["bram36"], est["luts"],
                                                                  est["ffs"])
    assert row["clock_mhz"] == min(config.hardware.clock_mhz, est["fmax_mhz"]) and row["fits"] is True
    assert row["finetune_epochs_run"] == 0


def test_real_targets_score_mse(tiny):
    weights, (x, _) = tiny
    y = np.tanh(x.sum(axis=1)[:, :2])
    row = evaluate_point(RAW, Inputs(weights, (x, y), (x, y)))["row"]
    assert "accuracy" not in row and row["mse"] > 0


def test_a_config_compress_refuses_is_an_error_result(tiny):
    weights, (x, y) = tiny
    raw = {**RAW, "quant": {"bias": {"bits": 12}}}      # compress chooses no bias frac
    result = evaluate_point(raw, Inputs(weights, (x, y), (x, y)))
    assert set(result) == {"error"} and "quant.bias" in result["error"]


def test_the_key_changes_with_every_input():
    args = (RAW, "w" * 64, "t" * 64, "v" * 64, {"finetune_epochs": 0, "seed": 0})
    key = point_key(*args)
    assert key == point_key(*args) and len(key) == 64
    changed = [({**RAW, "sparsity": {"banks": 2, "density": 0.25}}, *args[1:]), (RAW, "x" * 64, *args[2:]),
               (*args[:2], "x" * 64, *args[3:]), (*args[:3], "x" * 64, args[4]),
               (*args[:4], {"finetune_epochs": 1, "seed": 0})]
    assert len({key, *(point_key(*a) for a in changed)}) == 1 + len(changed)


def test_fine_tuning_is_compress_s(tiny):
    """--finetune-epochs caps compress's own fine-tuning, on the training data, seeded."""
    weights, (x, y) = tiny
    x_val, y_val = x[:16] * 0.9, y[:16]
    inputs = Inputs(weights, (x, y), (x_val, y_val))
    row = evaluate_point(RAW, inputs, finetune_epochs=2, seed=3)["row"]
    pruned, config, report = compress(weights, RAW, (x, y), epochs=2, seed=3)
    assert row["finetune_epochs_run"] == report["finetune"]["epochs_run"] == 2
    design = convert(pruned, config, warn=False).design
    assert row["accuracy"] == score(run_golden_real(design, x_val), y_val)["accuracy"]
    assert evaluate_point(RAW, inputs, finetune_epochs=2, seed=3)["row"] == row      # seeded: the same again
