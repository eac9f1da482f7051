"""Helpers shared by the tests: weights and models made the way users bring them."""

import numpy as np

from lstm_hw.weights import random_weights


def contiguous_bbs(w: np.ndarray, banks: int, density: float) -> np.ndarray:
    """The BBS paper's pattern: each row cut into ``banks`` contiguous blocks, the largest ``density`` share of each kept."""
    out = np.zeros_like(w)
    for cols in np.array_split(np.arange(w.shape[1]), banks):
        keep = max(1, round(density * len(cols)))
        top = cols[np.argsort(-np.abs(w[:, cols]), axis=1, kind="stable")[:, :keep]]
        np.put_along_axis(out, top, np.take_along_axis(w, top, axis=1), axis=1)
    return out


def bbs_weights(config):
    """Seeded weights pruned to contiguous banks over [W_ih | W_hh], as a user of the BBS paper would bring them."""
    w = random_weights(config)
    for k in range(config.model.num_layers):
        ih, hh = w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"]
        both = contiguous_bbs(np.concatenate([ih, hh], axis=1), config.sparsity.banks, config.sparsity.density)
        w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"] = both[:, :ih.shape[1]], both[:, ih.shape[1]:]
    return w


class RunsCode:
    """Unpickling this object creates the file ``marker``: the harm a model file could do, made visible."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def trapped_model(path, marker):
    """A PyTorch file with a real LSTM state_dict and an object whose unpickling writes ``marker``."""
    import torch
    state = dict(torch.nn.LSTM(3, 4).state_dict())
    state["payload"] = RunsCode(marker)
    torch.save(state, path)
    return path
