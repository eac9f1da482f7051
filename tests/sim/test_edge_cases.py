"""Edge cases of the generated top under Icarus and Verilator, one build and one simulation each.

``lstm_hw.sim.tb_edge_cases`` runs them: aresetn in the middle of sequences
(after some inputs, while s_axis waits, while m_axis waits on backpressure,
for 1 to 16 edges), sequences of one timestep, a 240-step sequence that
saturates the cell state, sequences back to back with no gap, and inputs at
the limits of the format. Every sequence is compared bit for bit with the
golden model, tlast included, with the protocol checker on both ports. The
design is small (2 layers, I = 3, H = 6, sparse) and its i/f/g biases are
large for a few units, so that their cell state runs into the cell format's
limits; the test checks in the golden model that it does.
"""

import json

import numpy as np
import pytest

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import layer_preact, run_golden, run_layer
from lstm_hw.model.weights import random_weights
from lstm_hw.numerics.cell import cell_update

CONFIG = {"model": {"input_size": 3, "hidden_size": 6, "num_layers": 2},
          "sparsity": {"banks": 3, "density": 0.5}, "hardware": {"rows": 2}}
#: (layer, unit, sign of g): i and f pinned near 1 and g near +-1, so c moves by about 1 a step.
SATURATING_UNITS = ((0, 0, 1), (0, 1, 1), (0, 2, -1), (1, 0, 1), (1, 3, -1))
LONG_STEPS = 240
SEED = 7


def edge_design():
    config = parse_config(CONFIG)
    weights = random_weights(config)
    hidden = config.model.hidden_size
    for layer, unit, sign in SATURATING_UNITS:
        bias = weights[f"bias_ih_l{layer}"]
        bias[[unit, hidden + unit]] = 10.0      # i, f: sigmoid saturates to 1 beyond 8
        bias[2 * hidden + unit] = 10.0 * sign   # g: tanh saturates to +-1 beyond 4
    return build_design(config, weights)


def cell_states(design, x):
    """The golden cell state codes of every layer, ``(T, H)`` each, for one sequence ``x`` ``(T, I)``."""
    v, states = np.asarray(x, dtype=np.int64)[None], []
    for layer in design.layers:
        h = np.zeros((1, layer.hidden), dtype=np.int64)
        c, cs = h.copy(), []
        for t in range(v.shape[1]):
            z = layer_preact(design, layer, np.concatenate([v[:, t], h], axis=1))
            c, h = cell_update(*np.split(z, 4, axis=1), c, design.tables, design.cell)
            cs.append(c[0])
        states.append(np.array(cs))
        v = run_layer(design, layer, v)
    return states


def scenarios(design, rng):
    """Every scenario's sequences ``(T, I)`` by name, and the reset plan."""
    fmt, n_in = design.io_format, design.config.model.input_size
    lo, hi = fmt.min_int, fmt.max_int

    def rand(t):
        return fmt.quantize(rng.normal(0, 1.0, (t, n_in)))

    alternating = np.where(np.indices((4, n_in)).sum(axis=0) % 2 == 0, lo, hi)
    seqs = {
        "length_one": [rand(1) for _ in range(6)],
        "extremes": [np.full((4, n_in), hi), np.full((4, n_in), lo), alternating, -1 - alternating,
                     rng.choice([lo, lo + 1, -1, 0, 1, hi - 1, hi], (6, n_in))],
        "long_saturating": [fmt.quantize(rng.normal(0, 0.5, (LONG_STEPS, n_in))), rand(3)],
        "back_to_back": [rand(t) for t in (2, 5, 1, 3)],
    }
    cut = rand(5)
    out_per_step = design.output_size
    resets = [
        ("after_first_input", "inputs", 1, 16, "steady"),
        ("mid_third_step", "inputs", 2 * n_in + 1, 1, "steady"),
        ("all_but_last_input", "inputs", cut.size - 1, 8, "both"),
        ("input_stalled", "input_stalled", n_in, 4, "steady"),
        ("output_stalled_first", "output_stalled", 0, 16, "steady"),
        ("output_stalled_mid", "output_stalled", out_per_step + 2, 2, "both"),
        ("output_stalled_last_step", "output_stalled", 4 * out_per_step + 1, 3, "idle"),
    ]
    plan = []
    for name, when, count, hold, mode in resets:
        seqs[name] = [rand(3), rand(2)]
        plan.append({"name": name, "when": when, "count": count, "hold": hold, "mode": mode})
    return seqs, cut, plan


def test_saturating_units_hit_the_cell_limits():
    """The long sequence drives the chosen units' c to the cell format's max and min codes."""
    design = edge_design()
    seqs, _, _ = scenarios(design, np.random.default_rng(SEED))
    states = cell_states(design, seqs["long_saturating"][0])
    cell = design.cell.cell
    for layer, unit, sign in SATURATING_UNITS:
        limit = cell.max_int if sign > 0 else cell.min_int
        steps = np.flatnonzero(states[layer][:, unit] == limit)
        assert steps.size > LONG_STEPS // 2, f"layer {layer} unit {unit}: c at {limit} in only {steps.size} steps"
    # The others stay clear of the limits, so the rest of the cell is exercised too.
    assert np.abs(states[0][:, 3:]).max() < cell.max_int


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_edge_cases(sim, tmp_path):
    from lstm_hw.sim.runner import run_cocotb
    from lstm_hw.sim.top import emit_rtl
    design = edge_design()
    seqs, cut, plan = scenarios(design, np.random.default_rng(SEED))
    # The cut sequence must get past the output counts the plan waits for.
    assert cut.shape[0] * design.output_size > max(p["count"] for p in plan if p["when"] == "output_stalled")
    arrays = {f"{name}.{k}.{key}": a for name, xs in seqs.items() for k, x in enumerate(xs)
              for key, a in (("x", x), ("y", run_golden(design, x)))}
    arrays.update({f"{p['name']}.cut": cut for p in plan})
    np.savez(tmp_path / "cases.npz", **arrays)
    (tmp_path / "plan.json").write_text(json.dumps({"resets": plan}))
    results = tmp_path / "results"
    results.mkdir()
    rtl, meta = emit_rtl(design, tmp_path)
    env = {"LSTM_HW_META": str(rtl / f"{meta['top']}.json"), "LSTM_HW_CASES": str(tmp_path / "cases.npz"),
           "LSTM_HW_PLAN": str(tmp_path / "plan.json"), "LSTM_HW_RESULT_DIR": str(results),
           "LSTM_HW_SEED": str(SEED)}
    ran, failed = run_cocotb(sim=sim, sources=[rtl / s for s in meta["sources"]], toplevel=meta["top"],
                             test_module="lstm_hw.sim.tb_edge_cases", build_dir=tmp_path / sim, env=env)
    log = tmp_path / sim / "test.log"
    assert (ran, failed) == (5, 0), f"{failed} of {ran} edge-case tests failed (seed {SEED}); see {log}"

    record = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    assert sorted(record) == ["back_to_back", "extremes", "length_one", "long_saturating", "resets"]
    for test, rec in record.items():
        assert rec["protocol_violations"] == 0 and rec["stray_outputs"] == 0, (test, rec)
        runs = [v for v in rec.values() if isinstance(v, dict)]
        assert runs and all(r["mismatches"] == 0 and r["last_ok"] for r in runs), (test, rec)
    assert record["length_one"]["length_one/both"]["steps"] == 6
    assert record["long_saturating"]["long_saturating/steady"]["steps"] == LONG_STEPS + 3
    b2b = record["back_to_back"]["back_to_back"]
    assert b2b["valid_continuous"] and b2b["boundaries"] == 3, b2b
    # Each reset landed where the plan says.
    for p in plan:
        seen = record["resets"][p["name"]]
        assert seen["sequences"] == 2, seen
        if p["when"] == "inputs":
            assert seen["inputs_taken"] == p["count"], seen
        elif p["when"] == "input_stalled":
            assert seen["s_axis"] == [1, 0] and seen["inputs_taken"] >= p["count"], seen
        else:
            assert seen["m_axis"] == [1, 0] and seen["outputs_before_reset"] >= p["count"], seen
    assert record["resets"]["output_stalled_last_step"]["inputs_taken"] == cut.size
