"""The golden model against float64 LSTM arithmetic, within error bounds derived from the formats.

Each golden step is compared with the float cell computed from the *same*
state (the golden ``x_t``, ``h_{t-1}``, ``c_{t-1}``) and the weights exactly as
stored, so the difference is the datapath's own error. Elementwise:

    e_z <= r_z                                    pre-activation rounding
    e_s <= e_z / 4 + eps_sigmoid                  sigmoid is 1/4-Lipschitz
    e_g <= e_z + eps_tanh                         tanh is 1-Lipschitz
    e_c <= |c_{t-1}| e_s + e_g + e_s + r_c        |i| <= 1 (clamped table), |tanh| <= 1
    e_h <= eps_tanh_cell + e_c + e_s + r_h        |o| <= 1

``r`` is half an LSB of the rounded format (a whole LSB when truncating) and
``eps`` the measured maximum table error over every input code. Worst-case
bounds through the recurrence itself grow geometrically and say nothing, so
the whole-sequence comparison below only checks that outputs stay close.
"""

import numpy as np
import pytest

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.errors import UsageError
from lstm_hw.model.golden import (float_lstm, interleave_steps, layer_preact, run_golden, run_golden_real,
                                   run_transfers, split_steps)
from lstm_hw.numerics.cell import cell_update

CONFIGS = {
    "default": {},
    "truncate_1layer": {"model": {"num_layers": 1, "hidden_size": 16, "input_size": 3},
                        "quant": {"rounding": "truncate"}, "activation": {"segments": 16}},
    "wide_dense": {"model": {"num_layers": 3, "hidden_size": 10, "input_size": 4},
                   "sparsity": {"density": 1.0, "banks": 2},
                   "quant": {"weight": {"bits": 12, "frac": 10}, "activation": {"bits": 18, "frac": 14},
                             "cell": {"bits": 20, "frac": 14}}},
}


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def rounding_error(fmt, mode):
    return fmt.lsb * (0.5 if mode == "half_up" else 1.0)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_golden_step_within_derived_bound(name):
    design = build_design(parse_config(CONFIGS[name]))
    q, tables = design.config.quant, design.tables
    fmt = q.activation
    r_z, r_c, r_h = (rounding_error(f, q.rounding) for f in (q.preact, q.cell, q.activation))
    eps_s, eps_g, eps_tc = (t.errors()[0] for t in (tables.sigmoid, tables.tanh_gate, tables.tanh_cell))
    rng = np.random.default_rng(5)
    x = fmt.quantize(rng.uniform(-2, 2, (16, 10, design.config.model.input_size)))
    checked = nonzero = 0
    for layer in design.layers:
        w, b = q.weight.to_real(layer.w), q.bias_format.to_real(layer.b)
        n, hid = x.shape[0], layer.hidden
        h, c = np.zeros((n, hid), np.int64), np.zeros((n, hid), np.int64)
        out = []
        for t in range(x.shape[1]):
            v = np.concatenate([x[:, t], h], axis=1)
            z = layer_preact(design, layer, v)
            c_new, h_new = cell_update(*np.split(z, 4, axis=1), c, tables, design.cell)

            zf = fmt.to_real(v) @ w.T + b
            zi_f, zf_f, zg_f, zo_f = np.split(zf, 4, axis=1)
            c_prev = q.cell.to_real(c)
            c_float = _sigmoid(zf_f) * c_prev + _sigmoid(zi_f) * np.tanh(zg_f)
            h_float = _sigmoid(zo_f) * np.tanh(c_float)

            unsat = np.all(np.abs(zf) < q.preact.max_real, axis=1, keepdims=True)
            assert np.abs(q.preact.to_real(z) - zf)[unsat[:, 0]].max(initial=0) <= r_z
            e_s, e_g = r_z / 4 + eps_s, r_z + eps_g
            bound_c = np.abs(c_prev) * e_s + e_g + e_s + r_c
            bound_h = eps_tc + bound_c + e_s + r_h
            err_c = np.abs(q.cell.to_real(c_new) - c_float)
            err_h = np.abs(fmt.to_real(h_new) - h_float)
            assert np.all((err_c <= bound_c) | ~unsat), f"cell error {err_c.max()} over bound at t={t}"
            assert np.all((err_h <= bound_h) | ~unsat), f"h error {err_h.max()} over bound at t={t}"
            assert bound_h.max() < 0.02, "the bound must be tight enough to mean something"
            checked += int(unsat.sum()) * hid
            nonzero += int(np.count_nonzero(err_h))
            h, c = h_new, c_new
            out.append(h)
        x = np.stack(out, axis=1)
    assert checked > 0.9 * 16 * 10 * design.config.model.hidden_size * len(design.layers)
    assert nonzero > 0, "the test must exercise rounding"


@pytest.mark.parametrize("name", CONFIGS)
def test_whole_sequence_close_to_float(name):
    """Through the recurrence, with stored weights, outputs stay within a few hundredths."""
    design = build_design(parse_config(CONFIGS[name]))
    fmt = design.io_format
    x = fmt.to_real(fmt.quantize(np.random.default_rng(1).uniform(-1, 1, (4, 20, design.config.model.input_size))))
    err = np.abs(fmt.to_real(run_golden(design, fmt.quantize(x))) - float_lstm(design, x, quantized_weights=True))
    assert err.max() < 0.02


# -- the head --------------------------------------------------------------------

HEAD_CONFIGS = {
    "dense_seq": {"model": {"num_layers": 2, "hidden_size": 10, "input_size": 4, "output_size": 3},
                  "sparsity": {"banks": 2}, "quant": {"output": {"bits": 14, "frac": 9}}},
    "sparse_last_trunc": {"model": {"num_layers": 1, "hidden_size": 12, "input_size": 3, "output_size": 10,
                                    "return_sequences": False},
                          "sparsity": {"banks": 4, "head_density": 0.5},
                          "quant": {"rounding": "truncate", "output": {"bits": 12, "frac": 4}}},
}


def _lstm_only(data):
    return {**data, "model": {**data["model"], "output_size": 0}}


@pytest.mark.parametrize("name", HEAD_CONFIGS)
def test_head_output_within_one_rounding_of_float(name):
    """Given the golden h, the head's only error is its one rounding (and saturation)."""
    design = build_design(parse_config(HEAD_CONFIGS[name]))
    lstm = build_design(parse_config(_lstm_only(HEAD_CONFIGS[name])))
    q, head = design.config.quant, design.head
    rng = np.random.default_rng(3)
    x = design.io_format.quantize(rng.uniform(-2, 2, (8, 6, design.config.model.input_size)))
    h = run_golden(lstm, x)
    y = run_golden(design, x)
    assert y.shape == h.shape[:2] + (design.config.model.output_size,)
    exact = q.activation.to_real(h) @ q.weight.to_real(head.w).T + q.bias_format.to_real(head.b)
    fmt = design.output_format
    inside = (exact >= fmt.min_real) & (exact <= fmt.max_real)
    err = np.abs(fmt.to_real(y) - exact)
    assert err[inside].max() <= rounding_error(fmt, q.rounding)
    assert np.all(y[~inside] == np.where(exact[~inside] > 0, fmt.max_int, fmt.min_int))
    assert np.count_nonzero(err) > 0


@pytest.mark.parametrize("name", HEAD_CONFIGS)
def test_head_pruned_bank_balanced(name):
    from lstm_hw.numerics.sparsity import bank_width, kept_per_bank
    design = build_design(parse_config(HEAD_CONFIGS[name]))
    head, s = design.head, design.config.sparsity
    assert head.k == kept_per_bank(bank_width(head.input_size, s.banks), s.head_density)
    padded = np.zeros((head.outputs, s.banks * head.bank_width), dtype=np.int64)
    padded[:, :head.input_size] = head.w_float != 0
    assert padded.reshape(head.outputs, -1, s.banks).sum(axis=1).max() <= head.k   # column c in bank c % banks
    # the LSTM layers are the same with or without a head
    lstm = build_design(parse_config(_lstm_only(HEAD_CONFIGS[name])))
    for a, b in zip(design.layers, lstm.layers):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b)


@pytest.mark.parametrize("name", HEAD_CONFIGS)
def test_float_head_and_real_output(name):
    design = build_design(parse_config(HEAD_CONFIGS[name]))
    lstm = build_design(parse_config(_lstm_only(HEAD_CONFIGS[name])))
    xr = np.random.default_rng(2).uniform(-1, 1, (3, 5, design.config.model.input_size))
    for stored in (False, True):
        h = float_lstm(lstm, xr, quantized_weights=stored)
        q, head = design.config.quant, design.head
        w, b = ((q.weight.to_real(head.w), q.bias_format.to_real(head.b)) if stored else (head.w_float, head.b_float))
        np.testing.assert_allclose(float_lstm(design, xr, quantized_weights=stored), h @ w.T + b, rtol=0, atol=1e-12)
    y = run_golden_real(design, xr)
    np.testing.assert_array_equal(y, design.output_format.to_real(run_golden(design, design.io_format.quantize(xr))))
    bound = rounding_error(design.output_format, design.config.quant.rounding) + 0.02  # + the recurrence's error
    assert np.abs(y - float_lstm(design, xr, quantized_weights=True)).max() < bound


# -- framing: transfers, sequence_length, stateful -------------------------------------------------

FRAMING = {"seq": {"model": {"input_size": 3, "hidden_size": 5, "num_layers": 2}},
           "last_head": {"model": {"input_size": 3, "hidden_size": 5, "num_layers": 1, "return_sequences": False,
                                   "output_size": 2}}}


def _framed(name, **model):
    """The FRAMING design ``name``, with ``model`` keys (sequence_length, stateful) set, and its plain twin."""
    config = FRAMING[name]
    return (build_design(parse_config({**config, "model": {**config["model"], **model}})),
            build_design(parse_config(config)))


def _steps(design, n, seed=0):
    return design.io_format.quantize(np.random.default_rng(seed).uniform(-1.5, 1.5, (n, design.layers[0].input_size)))


@pytest.mark.parametrize("name", FRAMING)
def test_a_batch_in_one_transfer_is_the_batch_of_sequences(name):
    d, plain = _framed(name, sequence_length=6)
    batch = _steps(d, 4 * 6).reshape(4, 6, -1)
    [got] = run_transfers(d, [batch.reshape(24, -1)])
    want = run_golden(plain, batch)
    np.testing.assert_array_equal(got, want.reshape(-1, want.shape[-1]))


@pytest.mark.parametrize("name", FRAMING)
def test_a_transfer_ending_inside_a_sequence_ends_it_there(name):
    d, plain = _framed(name, sequence_length=4)
    steps = _steps(d, 10)
    first, second = run_transfers(d, [steps[:7], steps[7:]])
    # Sequences of 4 and 3 steps (the framing error), then one of 3 from a fresh state.
    want = [run_golden(plain, part) for part in (steps[:4], steps[4:7])]
    np.testing.assert_array_equal(first, np.concatenate(want))
    np.testing.assert_array_equal(second, run_golden(plain, steps[7:]))


@pytest.mark.parametrize("name", FRAMING)
def test_stateful_chunks_equal_the_sequences_sent_whole(name):
    d, plain = _framed(name, stateful=True)
    a, b = _steps(d, 11, seed=1), _steps(d, 7, seed=2)
    chunks = [a[:1], a[1:4], a[4:11], b[:3], b[3:]]
    got = run_transfers(d, chunks, state_resets={3})
    if d.config.model.return_sequences:
        np.testing.assert_array_equal(np.concatenate(got[:3]), run_golden(plain, a))
        np.testing.assert_array_equal(np.concatenate(got[3:]), run_golden(plain, b))
    else:   # each chunk's last output is the state so far
        for k, end in enumerate((1, 4, 11)):
            np.testing.assert_array_equal(got[k], run_golden(plain, a[:end]))
        np.testing.assert_array_equal(got[4], run_golden(plain, b))
    # Without the reset, b continues from a's state, which differs from b alone.
    carried = run_transfers(d, chunks)
    assert not np.array_equal(carried[4], got[4])


@pytest.mark.parametrize("name", FRAMING)
def test_a_sequence_longer_than_sequence_length_is_cut(name):
    """With model.sequence_length = 4, a sequence of 10 steps is what the hardware makes of it in one
    transfer: sequences of 4, 4 and 2 steps, each from zero state (and h_T of each)."""
    d, plain = _framed(name, sequence_length=4)
    x = np.stack([_steps(d, 10, seed=3), _steps(d, 10, seed=4)])
    got = run_golden(d, x)
    want = np.concatenate([run_golden(plain, x[:, s:s + 4]) for s in (0, 4, 8)], axis=1)
    np.testing.assert_array_equal(got, want)
    assert got.shape[1] == (10 if d.config.model.return_sequences else 3)
    np.testing.assert_array_equal(run_golden(d, x[0]), want[0])
    np.testing.assert_array_equal(run_transfers(d, list(x))[1], want[1])
    # Up to the sequence length, nothing is cut.
    np.testing.assert_array_equal(run_golden(d, x[:, :4]), run_golden(plain, x[:, :4]))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_interleaved_order_is_each_timestep_of_each_sequence_in_turn(n):
    """Group g's step t n + s is sequence g n + s's step t; split_steps gives the sequences back."""
    rng = np.random.default_rng(n)
    x = rng.integers(-100, 100, (2 * n, 4, 3))
    stream = interleave_steps(x, n)
    assert stream.shape == (2, 4 * n, 3)
    for g in range(2):
        for t in range(4):
            for s in range(n):
                np.testing.assert_array_equal(stream[g, t * n + s], x[g * n + s, t])
    np.testing.assert_array_equal(split_steps(stream, n), x)


def test_interleaving_refuses_incomplete_groups():
    with pytest.raises(UsageError, match="groups of 3: got 4 sequences, not a multiple of 3"):
        interleave_steps(np.zeros((4, 2, 1)), 3)
    with pytest.raises(UsageError, match="whole timesteps of 2, got 3 steps"):
        split_steps(np.zeros((1, 3, 1)), 2)
