"""Fine-tune an LSTM (and its dense head) while pruning it gradually (PyTorch).

The model is built from canonical weights (:mod:`lstm_hw.model.torch_io` names).
Pruning follows the cubic schedule of Zhu & Gupta (2017): at the start of
epoch ``e`` of ``E`` the kept fraction of every pruning group is

    d(e) = d_f + (1 - d_f) (1 - min(1, (e + 1) / P))^3,   P = max(1, E - E // 3),

so the target ``d_f`` is reached after ``P`` epochs and the last third of the
epochs fine-tunes at the final density. A group is a matrix (a layer's
``[W_ih | W_hh]``, the head's weight) and a NumPy function that prunes it to
a density; its mask is that function's kept positions. Masks only shrink:
a pruned weight stays zero (its gradient is masked and it is re-zeroed after
every optimizer step).

Quantization-aware training (``weight_format`` / ``activation_format``)
passes weights, the summed biases, ``x`` and ``h`` through the hardware's
rounding (round half up to ``frac`` bits, saturate to ``bits``) in the
forward pass, with a straight-through gradient.

Runs in float64 on the CPU, seeded: the same inputs give the same weights.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.torch_io import import_torch, model_sizes
from ..numerics.fixed import Fixed

__all__ = ["PruneGroup", "FinetuneResult", "cubic_density", "kept_mask", "LSTMModel",
           "finetune", "evaluate_loss"]

torch = import_torch("fine-tuning")
nn = torch.nn


@dataclass(frozen=True)
class PruneGroup:
    """Weights pruned together: ``names`` side by side (columns) form one matrix."""

    names: tuple[str, ...]
    density: float                                  # final kept fraction
    prune: Callable[[np.ndarray, float], np.ndarray]  # matrix, density -> pruned matrix


@dataclass
class FinetuneResult:
    weights: dict[str, np.ndarray]          # canonical, float64, masked
    masks: dict[str, np.ndarray]            # per weight name, bool
    losses: list[float] = field(default_factory=list)      # mean training loss of every epoch
    densities: list[float] = field(default_factory=list)   # schedule: density applied at each epoch


def cubic_density(epoch: int, epochs: int, final: float) -> float:
    """Kept fraction at the start of ``epoch`` (0-based) of ``epochs``: Zhu & Gupta's cubic schedule."""
    ramp = max(1, epochs - epochs // 3)
    progress = min(1.0, (epoch + 1) / ramp)
    return final + (1.0 - final) * (1.0 - progress) ** 3


def kept_mask(w: np.ndarray, density: float, prune, previous: np.ndarray | None = None) -> np.ndarray:
    """The positions ``prune`` keeps, zeros included, within ``previous``.

    Kept zeros are told apart from pruned ones by giving every zero still in
    ``previous`` a magnitude below every non-zero weight before pruning; the
    positions outside ``previous`` stay exactly zero and so rank last.
    """
    previous = np.ones(w.shape, dtype=bool) if previous is None else previous
    w = np.where(previous, w, 0.0)
    nonzero = np.abs(w[w != 0])
    tiny = (nonzero.min() if nonzero.size else 1.0) * 2.0 ** -20
    probe = np.where(previous & (w == 0), tiny, w)
    return (prune(probe, density) != 0) & previous


class _RoundSTE(torch.autograd.Function):
    """floor(v + 1/2) forward, identity backward."""

    @staticmethod
    def forward(ctx, v):
        return torch.floor(v + 0.5)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _fake_quant(v, fmt: Fixed | None):
    if fmt is None:
        return v
    scale = 2.0 ** fmt.frac
    # the clamp passes no gradient beyond the range, as saturation does
    return torch.clamp(_RoundSTE.apply(v * scale), fmt.min_int, fmt.max_int) / scale


class LSTMModel(nn.Module):
    """An LSTM (gate order i, f, g, o) with an optional dense head, from canonical weights.

    ``forward(x)`` takes ``(N, T, I)`` and returns the head's output (or h)
    for every step, ``(N, T, O or H)``. ``trace``, if given, receives per
    layer the per-step ``(z, c, h)`` tensors.
    """

    def __init__(self, weights: dict[str, np.ndarray], *, weight_format: Fixed | None = None,
                 bias_format: Fixed | None = None, activation_format: Fixed | None = None):
        super().__init__()
        self.sizes = model_sizes(weights)
        self.weight_format, self.bias_format = weight_format, bias_format
        self.activation_format = activation_format
        self.params = nn.ParameterDict({
            _key(name): nn.Parameter(torch.tensor(np.asarray(a, dtype=np.float64)))
            for name, a in weights.items()})

    def weight(self, name: str):
        return self.params[_key(name)]

    def forward(self, x, trace: list | None = None):
        q_act = self.activation_format
        out = _fake_quant(x, q_act)
        for k in range(self.sizes["num_layers"]):
            w = torch.cat([self.weight(f"weight_ih_l{k}"), self.weight(f"weight_hh_l{k}")], dim=1)
            w = _fake_quant(w, self.weight_format)
            b = _fake_quant(self.weight(f"bias_ih_l{k}") + self.weight(f"bias_hh_l{k}"), self.bias_format)
            n, hid = out.shape[0], self.sizes["hidden_size"]
            h = out.new_zeros(n, hid)
            c = out.new_zeros(n, hid)
            steps, hs = [], []
            for t in range(out.shape[1]):
                z = torch.cat([out[:, t], h], dim=1) @ w.T + b
                zi, zf, zg, zo = z.chunk(4, dim=1)
                c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
                h = _fake_quant(torch.sigmoid(zo) * torch.tanh(c), q_act)
                hs.append(h)
                steps.append((z, c, h))
            if trace is not None:
                trace.append(steps)
            out = torch.stack(hs, dim=1)
        if self.sizes["output_size"]:
            out = out @ _fake_quant(self.weight("fc.weight"), self.weight_format).T + self.weight("fc.bias")
        return out

    def to_weights(self) -> dict[str, np.ndarray]:
        return {_name(key): p.detach().cpu().numpy().copy() for key, p in self.params.items()}


def _key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys may not contain dots


def _name(key: str) -> str:
    return key.replace("__", ".")


def _loss(out, y, kind: str):
    if kind == "cross_entropy":
        return nn.functional.cross_entropy(out[:, -1], y)
    if kind == "mse_last":
        return nn.functional.mse_loss(out[:, -1], y)
    return nn.functional.mse_loss(out, y)


@contextlib.contextmanager
def _deterministic(seed: int):
    """Seeded, deterministic kernels, one thread: these matrices are far too small to gain from more,
    and on a busy machine thread hand-offs cost a hundred times the arithmetic."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def evaluate_loss(weights: dict[str, np.ndarray], x, y, kind: str, **formats) -> float:
    """The loss of ``weights`` on the whole data set, no gradient."""
    model = LSTMModel(weights, **formats)
    with _deterministic(0), torch.no_grad():
        return float(_loss(model(torch.tensor(x)), torch.tensor(y), kind))


def _group_matrix(weights, group: PruneGroup) -> np.ndarray:
    return np.concatenate([weights[n] for n in group.names], axis=1)


def _split(matrix: np.ndarray, weights, group: PruneGroup) -> dict[str, np.ndarray]:
    cuts = np.cumsum([weights[n].shape[1] for n in group.names])[:-1]
    return dict(zip(group.names, np.split(matrix, cuts, axis=1)))


def finetune(weights: dict[str, np.ndarray], x, y, kind: str, groups: list[PruneGroup], *, epochs: int,
             lr: float = 1e-3, batch_size: int = 32, seed: int = 0, weight_format: Fixed | None = None,
             bias_format: Fixed | None = None, activation_format: Fixed | None = None,
             progress=None) -> FinetuneResult:
    """Train ``epochs`` epochs of Adam while pruning ``groups`` to their densities (cubic schedule).

    ``x`` and ``y`` as checked by :func:`lstm_hw.compression.data.check_data`, ``kind`` its loss. With
    ``epochs = 0`` the groups are pruned at once and nothing is trained. Each epoch's
    density, loss, time and the time left go to ``progress`` (:mod:`lstm_hw.progress`).
    """
    from ..progress import stage, steps
    masks = {n: np.ones(weights[n].shape, dtype=bool) for g in groups for n in g.names}
    result = FinetuneResult(weights={}, masks=masks)

    def update_masks(model, density_of):
        current = model.to_weights()
        for g in groups:
            mask = kept_mask(_group_matrix(current, g), density_of(g), g.prune, _group_matrix(masks, g))
            masks.update(_split(mask, current, g))
        apply_masks(model)

    def apply_masks(model):
        with torch.no_grad():
            for n, m in masks.items():
                model.weight(n).mul_(torch.from_numpy(m.astype(np.float64)))

    with _deterministic(seed):
        model = LSTMModel(weights, weight_format=weight_format, bias_format=bias_format,
                          activation_format=activation_format)
        if epochs == 0:
            update_masks(model, lambda g: g.density)
        else:
            xt, yt = torch.tensor(x), torch.tensor(y)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            order = torch.Generator().manual_seed(seed)
            start = time.perf_counter()
            with steps(progress, "fine-tune", epochs, "epoch") as done:
                for epoch in range(epochs):
                    fraction = {g.names: cubic_density(epoch, epochs, g.density) for g in groups}
                    update_masks(model, lambda g: fraction[g.names])
                    total, count = 0.0, 0
                    for idx in torch.randperm(len(xt), generator=order).split(batch_size):
                        opt.zero_grad()
                        loss = _loss(model(xt[idx]), yt[idx], kind)
                        loss.backward()
                        for n, m in masks.items():
                            model.weight(n).grad.mul_(torch.from_numpy(m.astype(np.float64)))
                        opt.step()
                        apply_masks(model)
                        total += loss.item() * len(idx)
                        count += len(idx)
                    result.losses.append(total / count)
                    result.densities.append(min(fraction.values()) if fraction else 1.0)
                    done(epoch + 1)
                    spent = time.perf_counter() - start
                    shown = ", ".join(f"{d:.3f}" for d in dict.fromkeys(fraction.values()))
                    stage(progress, f"epoch {epoch + 1}/{epochs}: density {shown or '1'}, loss "
                                    f"{result.losses[-1]:.6g}, {spent:.1f} s, ETA "
                                    f"{spent / (epoch + 1) * (epochs - epoch - 1):.1f} s")
            # the last epochs ran at the final density already; this only makes sure of it
            update_masks(model, lambda g: g.density)
    result.weights = model.to_weights()
    return result
