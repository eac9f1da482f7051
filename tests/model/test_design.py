"""Scheduling: how the pruning pattern becomes stored weights per bank."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import build_top, metadata
from lstm_hw.model.design import build_design
from lstm_hw.model.pruning import prune_matrix
from lstm_hw.numerics.sparsity import bank_loads, kept_per_bank, bank_width


def unstructured(density=0.3, **model):
    return parse_config({"model": {"input_size": 6, "hidden_size": 8, "num_layers": 2, **model},
                         "sparsity": {"pattern": "unstructured", "density": density, "banks": 4}})


def test_unstructured_pads_every_bank_to_the_fullest():
    design = build_design(unstructured())
    for layer in design.layers:
        # W_ih and W_hh are pruned, and padded, each on its own.
        ih, hh = layer.w_float[:, :layer.input_size], layer.w_float[:, layer.input_size:]
        loads = [bank_loads(w, layer.banks) for w in (ih, hh)]
        assert (layer.k_x, layer.k_h) == (loads[0].max(), loads[1].max())
        assert layer.nnz <= np.count_nonzero(layer.w_float)
        assert layer.stored == layer.w.shape[0] * layer.banks * layer.k
        assert layer.nnz < layer.stored, "unstructured pruning leaves some banks emptier than the fullest"
        # Same overall density as asked, but not per bank.
        for w in (ih, hh):
            assert np.count_nonzero(w) == int(np.floor(0.3 * w.size + 0.5))
        assert loads[1].min() < loads[1].max()


def test_bank_balanced_is_fully_utilised_at_the_same_density():
    bb = build_design(parse_config({"model": {"input_size": 6, "hidden_size": 8, "num_layers": 2},
                                    "sparsity": {"density": 0.3, "banks": 4}}))
    un = build_design(unstructured())
    for b, u in zip(bb.layers, un.layers):
        assert b.k_x == kept_per_bank(bank_width(b.input_size, 4), 0.3)
        assert b.k_h == kept_per_bank(bank_width(b.hidden, 4), 0.3)
        assert u.k > b.k
        assert u.issue_cycles > b.issue_cycles


def test_metadata_reports_utilisation():
    design = build_design(unstructured())
    top = build_top(design)
    Fragment.get(top, None)  # elaborated, as generate does (and no UnusedElaboratable warning)
    for entry, layer in zip(metadata(design, top, sources=[])["layers"], design.layers):
        assert entry["pe_utilisation"] == pytest.approx(layer.nnz / layer.stored, abs=1e-4)
        assert entry["pe_utilisation"] < 1


@pytest.mark.parametrize("pattern", ["bank_balanced", "unstructured"])
def test_prune_returns_a_k_that_holds_every_bank(pattern):
    w = np.random.default_rng(2).normal(size=(12, 10))
    pruned, k = prune_matrix(w, 3, 0.4, pattern)
    assert bank_loads(pruned, 3).max() <= k
