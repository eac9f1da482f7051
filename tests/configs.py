"""Configs shared by the end-to-end, lint and determinism tests.

Dense and sparse, 1 and 2 layers, awkward sizes (banks that do not divide
I+H, bank width 1), every row-lane arrangement (1, 2, 4, 8, 12 rows), both
rounding modes, narrow formats, return_sequences on and off, and every
activation method (folded and not, and one chosen by ``auto``).
"""

E2E_CONFIGS = {
    "default": {},
    "dense_awkward_r1": {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 1},
                         "sparsity": {"banks": 5, "density": 1.0}, "hardware": {"rows": 1}},
    "sparse_r2_trunc": {"model": {"input_size": 2, "hidden_size": 6, "num_layers": 1},
                        "sparsity": {"banks": 8, "density": 0.125}, "hardware": {"rows": 2},
                        "quant": {"rounding": "truncate", "weight": {"bits": 6, "frac": 4}}},
    "r8_last_only": {"model": {"input_size": 3, "hidden_size": 9, "num_layers": 2, "return_sequences": False},
                     "sparsity": {"banks": 2, "density": 0.25}, "hardware": {"rows": 8}},
    "r12_dense_b1": {"model": {"input_size": 4, "hidden_size": 10, "num_layers": 1},
                     "sparsity": {"banks": 14, "density": 1.0}, "hardware": {"rows": 12},
                     "quant": {"activation": {"bits": 12, "frac": 8}}},
    "quadratic_unfolded": {"model": {"input_size": 3, "hidden_size": 5, "num_layers": 1},
                           "activation": {"method": "quadratic", "segments": 16, "fold": False}},
    "taylor3_trunc": {"model": {"input_size": 4, "hidden_size": 6, "num_layers": 2},
                      "quant": {"rounding": "truncate"}, "sparsity": {"density": 0.75},
                      "activation": {"method": "taylor", "taylor_order": 3, "segments": 8}},
    # auto at this bound picks a table-only (lut) design.
    "auto_lut": {"model": {"input_size": 2, "hidden_size": 4, "num_layers": 1},
                 "activation": {"method": "auto", "max_error": 4e-3}},
}
