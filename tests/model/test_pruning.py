"""What the hardware keeps of the given weights: lstm_hw.prune, the per-matrix summary, strict mode, warnings.

The figures are checked against hand-worked matrices and against counts taken
straight from the arrays, not against the module's own arithmetic.
"""

import json
import warnings

import numpy as np
import pytest

from configs import E2E_CONFIGS
from helpers import bbs_weights
from lstm_hw.config.schema import parse_config
from lstm_hw.errors import ConfigError
from lstm_hw.model.design import build_design
from lstm_hw.model.pruning import (NonConformingWeightsWarning, WeightsPrunedWarning, check_strict, prune_weights,
                                   pruned_matrices, pruning_lines, pruning_summary, warn_pruning)
from lstm_hw.model.weights import random_weights

ONE_ROW = {"model": {"input_size": 4, "hidden_size": 1, "num_layers": 1}, "sparsity": {"banks": 2, "density": 0.5}}


def test_hand_worked_matrix():
    """W_ih row [1, 2, 3, 4] in 2 interleaved banks, {1, 3} and {2, 4}, one kept each: 3 and 4 stay."""
    config = parse_config(ONE_ROW)
    w = random_weights(config)
    w["weight_ih_l0"] = np.array([[1.0, 2.0, 3.0, 4.0]] * 4)
    w["weight_hh_l0"] = np.array([[0.0], [5.0], [0.0], [0.0]])  # one column in a bank of its own: kept
    pruned = prune_weights(w, config)
    np.testing.assert_array_equal(pruned["weight_ih_l0"], [[0.0, 0.0, 3.0, 4.0]] * 4)
    np.testing.assert_array_equal(pruned["weight_hh_l0"], w["weight_hh_l0"])
    ih, hh = pruning_summary(w, pruned, config)
    assert (ih.name, ih.size, ih.nonzero_given, ih.nonzero_kept, ih.dropped) == ("weight_ih_l0", 16, 16, 8, 8)
    assert ih.max_abs_dropped == 2.0
    assert ih.norm_dropped == pytest.approx(np.sqrt(5 / 30), abs=1e-6)   # |(1, 2)| / |(1, 2, 3, 4)| per row
    assert ih.status == "pruned"                                          # dense: pruning on purpose
    assert (hh.nonzero_given, hh.nonzero_kept, hh.max_abs_dropped, hh.norm_dropped, hh.status) == \
        (1, 1, 0.0, 0.0, "unchanged")


def test_status_is_decided_by_how_dense_the_given_matrix_is():
    """Nearer dense than the configured density: pruned on purpose; nearer the density: non-conforming."""
    config = parse_config(ONE_ROW)
    w = random_weights(config)
    rows = w["weight_ih_l0"].shape[0]
    # 3 of 4 non-zero (0.75, exactly between 1 and 0.5): bank 1 holds two, one is dropped -> non-conforming
    w["weight_ih_l0"] = np.tile([0.0, 2.0, 3.0, 4.0], (rows, 1))
    (ih, _) = pruning_summary(w, prune_weights(w, config), config)
    assert (ih.nonzero_given, ih.nonzero_kept, ih.status) == (12, 8, "nonconforming")
    # the same pattern in interleaved banks, one per bank: kept whole
    w["weight_ih_l0"] = np.tile([0.0, 0.0, 3.0, 4.0], (rows, 1))
    assert pruning_summary(w, prune_weights(w, config), config)[0].status == "unchanged"
    # one zero in 16 entries: still dense
    dense = np.tile([1.0, 2.0, 3.0, 4.0], (rows, 1))
    dense[0, 0] = 0.0
    w["weight_ih_l0"] = dense
    assert pruning_summary(w, prune_weights(w, config), config)[0].status == "pruned"


@pytest.mark.parametrize("name", sorted(E2E_CONFIGS))
def test_prune_weights_is_what_the_hardware_stores(name):
    """lstm_hw.prune gives the design's own float weights, is idempotent, and its output passes strict."""
    config = parse_config(E2E_CONFIGS[name])
    w = random_weights(config)
    pruned = prune_weights(w, config)
    design = build_design(config, w)
    for layer in design.layers:
        n, i = layer.index, layer.input_size
        np.testing.assert_array_equal(pruned[f"weight_ih_l{n}"], layer.w_float[:, :i])
        np.testing.assert_array_equal(pruned[f"weight_hh_l{n}"], layer.w_float[:, i:])
    if design.head is not None:
        np.testing.assert_array_equal(pruned["fc.weight"], design.head.w_float)
    again = prune_weights(pruned, config)
    assert all(np.array_equal(again[k], pruned[k]) for k in pruned)
    strict = build_design(config, pruned, strict=True)
    assert all(m.status == "unchanged" for m in strict.pruning)
    assert [m.name for m in strict.pruning] == [n for n, _ in pruned_matrices(config)]
    for m, (mat, _) in zip(design.pruning, pruned_matrices(config)):
        assert m.nonzero_given == np.count_nonzero(w[mat]) and m.nonzero_kept == np.count_nonzero(pruned[mat])
        assert (m.status == "unchanged") == (m.nonzero_given == m.nonzero_kept)


def test_bbs_contiguous_weights_are_reported_and_refused_when_strict():
    """The outside finding: contiguous-bank weights lose non-zeros, are said to, and strict refuses them."""
    config = parse_config({"model": {"num_layers": 2}})
    w = bbs_weights(config)
    design = build_design(config, w)
    bad = [m for m in design.pruning if m.status == "nonconforming"]
    assert bad, "contiguous banks should not fit the interleaved ones"
    for m in bad:
        lost = w[m.name] - prune_weights(w, config)[m.name]
        assert m.max_abs_dropped == np.abs(lost).max() > 0
        assert m.norm_dropped == pytest.approx(np.linalg.norm(lost) / np.linalg.norm(w[m.name]), abs=1e-6)
    lines = pruning_lines(design.pruning, "w.npz")
    assert len(lines) == len(bad)
    for line, m in zip(lines, bad):
        assert line.startswith(f"warning: w.npz:{m.name}: ") and "\n" not in line
        assert f"{m.nonzero_kept} of {m.nonzero_given} non-zeros kept" in line and "lstm_hw.prune" in line
    with pytest.raises(ConfigError) as info:
        build_design(config, w, strict=True, source="w.npz")
    text = str(info.value)
    assert text.startswith(f"w.npz:{bad[0].name}: the hardware keeps {bad[0].nonzero_kept} of its "
                           f"{bad[0].nonzero_given} non-zeros") and "\n" not in text
    assert f"{len(bad) - 1} more matrices" in text
    # the seeded defaults are no one's model: strict has nothing to refuse
    assert build_design(config, strict=True).weights_given is False


def test_strict_refuses_dense_weights_too():
    """Strict means the hardware computes exactly the given (quantized) model: dense weights need pruning first."""
    config = parse_config({})
    w = random_weights(config)
    with pytest.raises(ConfigError, match="weight_ih_l0: the hardware keeps"):
        check_strict(build_design(config, w).pruning)
    check_strict(build_design(parse_config({"sparsity": {"density": 1.0}}), w).pruning)  # nothing dropped


def test_warnings_for_the_api():
    config = parse_config({"model": {"num_layers": 2}})
    with pytest.warns(NonConformingWeightsWarning) as record:
        warn_pruning(build_design(config, bbs_weights(config)).pruning, "w.npz")
    assert all(issubclass(r.category, WeightsPrunedWarning) for r in record)
    assert all(str(r.message).startswith("w.npz:weight_") for r in record)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_pruning(build_design(config, random_weights(config)).pruning)
    assert record and {r.category for r in record} == {WeightsPrunedWarning}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_pruning(build_design(config, prune_weights(random_weights(config), config)).pruning)


def test_metadata_records_the_pruning():
    from lstm_hw.emit.files import build_top, metadata
    config = parse_config({"model": {"num_layers": 2}})
    for weights, source in ((None, "seeded"), (bbs_weights(config), "given")):
        design = build_design(config, weights)
        meta = json.loads(json.dumps(metadata(design, build_top(design), [])))
        assert meta["pruning"]["weights"] == source
        assert meta["pruning"]["matrices"] == [m.to_dict() for m in design.pruning]
        assert [m["name"] for m in meta["pruning"]["matrices"]] == [n for n, _ in pruned_matrices(config)]


def test_lstm_hw_prune_checks_its_input_and_passes_strict():
    import lstm_hw
    config = parse_config({"model": {"num_layers": 2, "output_size": 3}, "sparsity": {"head_density": 0.5}})
    given = {k: v.astype(np.float32) for k, v in bbs_weights(config).items()}
    pruned = lstm_hw.prune(given, config)
    assert all(a.dtype == np.float64 for a in pruned.values()) and sorted(pruned) == sorted(given)
    design = build_design(config, pruned, strict=True)
    assert [m.status for m in design.pruning] == ["unchanged"] * 5
    for name in ("bias_ih_l0", "fc.bias"):
        np.testing.assert_array_equal(pruned[name], given[name])
    with pytest.raises(lstm_hw.ConfigError, match=r"weights:weight_hh_l1: shape \(48, 11\) does not match"):
        lstm_hw.prune({**given, "weight_hh_l1": np.zeros((48, 11))}, config)
