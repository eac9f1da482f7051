"""Configs shared by the end-to-end, lint and determinism tests.

Dense and sparse, 1 and 2 layers, awkward sizes (banks that do not divide
I+H, bank width 1), every row-lane arrangement (1, 2, 4, 8, 12 rows), both
rounding modes, narrow formats, return_sequences on and off, every
activation method (folded and not, and one chosen by ``auto``), and heads:
dense with every h_t, sparse with h_T only, and one that bounds throughput,
each with an output format other than the activation format; several
elements per stream beat (``io_lanes``), packed and unpacked every way; and
MAC chains (``mac_chain``) of 1 (a plain adder tree), 2 (chains of unequal
length) and 8 (one chain, no tree) besides the default 4.
"""

E2E_CONFIGS = {
    "default": {},
    "dense_awkward_r1": {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 1},
                         "sparsity": {"banks": 5, "density": 1.0}, "hardware": {"rows": 1}},
    "sparse_r2_trunc": {"model": {"input_size": 2, "hidden_size": 6, "num_layers": 1},
                        "sparsity": {"banks": 8, "density": 0.125}, "hardware": {"rows": 2, "mac_chain": 8},
                        "quant": {"rounding": "truncate", "weight": {"bits": 6, "frac": 4}}},
    "r8_last_only": {"model": {"input_size": 3, "hidden_size": 9, "num_layers": 2, "return_sequences": False},
                     "sparsity": {"banks": 2, "density": 0.25}, "hardware": {"rows": 8}},
    "r12_dense_b1": {"model": {"input_size": 4, "hidden_size": 10, "num_layers": 1},
                     "sparsity": {"banks": 14, "density": 1.0}, "hardware": {"rows": 12, "mac_chain": 1},
                     "quant": {"activation": {"bits": 12, "frac": 8}}},
    "quadratic_unfolded": {"model": {"input_size": 3, "hidden_size": 5, "num_layers": 1},
                           "activation": {"method": "quadratic", "segments": 16, "fold": False}},
    "taylor3_trunc": {"model": {"input_size": 4, "hidden_size": 6, "num_layers": 2},
                      "quant": {"rounding": "truncate"}, "sparsity": {"density": 0.75},
                      "activation": {"method": "taylor", "taylor_order": 3, "segments": 8}},
    # auto at this bound picks a table-only (lut) design.
    "auto_lut": {"model": {"input_size": 2, "hidden_size": 4, "num_layers": 1},
                 "activation": {"method": "auto", "max_error": 4e-3}},
    # Heads: 7 columns in 3 banks (two padding columns), O = 3.
    "head_dense_seq": {"model": {"input_size": 4, "hidden_size": 7, "num_layers": 2, "output_size": 3},
                       "sparsity": {"banks": 3}, "hardware": {"mac_chain": 2},
                       "quant": {"output": {"bits": 12, "frac": 7}}},
    "head_sparse_last": {"model": {"input_size": 3, "hidden_size": 9, "num_layers": 1, "return_sequences": False,
                                   "output_size": 10},
                         "sparsity": {"banks": 2, "head_density": 0.4}, "hardware": {"rows": 8},
                         "quant": {"rounding": "truncate", "output": {"bits": 10, "frac": 4}}},
    # The head (10 x 16 dense, one bank: 161 cycles) is slower than the layer; s8.6 saturates beyond +-2.
    "head_bound": {"model": {"input_size": 2, "hidden_size": 16, "num_layers": 1, "output_size": 10},
                   "sparsity": {"banks": 1, "density": 1.0}, "hardware": {"rows": 16},
                   "quant": {"output": {"bits": 8, "frac": 6}}},
    # ESE-style unstructured sparsity: every bank padded to the fullest bank's count.
    "unstructured": {"model": {"input_size": 6, "hidden_size": 8, "num_layers": 1, "output_size": 3},
                     "sparsity": {"pattern": "unstructured", "density": 0.3, "head_density": 0.5}},
    # Several elements per beat (io_lanes), every way of forming the output beats, partial last beats:
    # one h per cycle packed two to a beat, between two layers too;
    "lanes2_serial": {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 2},
                      "hardware": {"io_lanes": 2}},
    # two h per cycle (8 rows) packed two groups to a beat, and a head's 5 outputs in beats of 4;
    "lanes4_parallel_head": {"model": {"input_size": 6, "hidden_size": 9, "num_layers": 1, "output_size": 5},
                             "sparsity": {"banks": 4, "density": 0.5}, "hardware": {"rows": 8, "io_lanes": 4},
                             "quant": {"output": {"bits": 12, "frac": 8}}},
    # four h per cycle (16 rows) handed out two at a time, only h_T emitted.
    "lanes2_unpack_last": {"model": {"input_size": 3, "hidden_size": 10, "num_layers": 1,
                                     "return_sequences": False},
                           "sparsity": {"banks": 5, "density": 0.6}, "hardware": {"rows": 16, "io_lanes": 2}},
    # more cell lanes than banks: a pass's h written in groups, two a cycle, and handed out one at a time;
    "r16_b2_pairs": {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 1},
                     "sparsity": {"banks": 2, "density": 0.5}, "hardware": {"rows": 16}},
    # six cell lanes, four banks, four elements a beat: groups of two (three would not fit the beats), packed.
    "r24_b4_lanes4": {"model": {"input_size": 6, "hidden_size": 11, "num_layers": 1},
                      "sparsity": {"banks": 4, "density": 0.5}, "hardware": {"rows": 24, "io_lanes": 4}},
    # run-time weights never loaded: the generate-time ones, as the ROM twin computes them.
    "ram_lanes2_head": {"model": {"input_size": 5, "hidden_size": 6, "num_layers": 2, "output_size": 3},
                        "hardware": {"io_lanes": 2, "mac_chain": 2, "weights": "ram"}},
}

#: Interleaved sequences (``hardware.interleave``): 2, 3 and 4 of them on two layers, a head with packed
#: beats, dense awkward banks, h written in groups through a queue with h_T only (which needs a
#: sequence_length: inputs of whole multiples of it), and run-time weights on two row lanes. Inputs are
#: whole groups of ``interleave`` sequences.
INTERLEAVE_CONFIGS = {
    "il2_default": {"hardware": {"interleave": 2}},
    "il3_lanes4_head": {"model": {"input_size": 6, "hidden_size": 9, "num_layers": 1, "output_size": 5},
                        "sparsity": {"banks": 4, "density": 0.5},
                        "hardware": {"rows": 8, "io_lanes": 4, "interleave": 3},
                        "quant": {"output": {"bits": 12, "frac": 8}}},
    "il4_dense_awkward": {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 1},
                          "sparsity": {"banks": 5, "density": 1.0}, "hardware": {"interleave": 4, "mac_chain": 2}},
    "il2_pairs_last": {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 1, "return_sequences": False,
                                 "sequence_length": 3},
                       "sparsity": {"banks": 2, "density": 0.5}, "hardware": {"rows": 16, "interleave": 2}},
    "il3_ram_r2": {"model": {"input_size": 2, "hidden_size": 6, "num_layers": 2},
                   "sparsity": {"banks": 8, "density": 0.125},
                   "hardware": {"rows": 2, "mac_chain": 8, "weights": "ram", "interleave": 3}},
}
