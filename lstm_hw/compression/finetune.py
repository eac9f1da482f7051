"""Fine-tune an LSTM (and its dense head) while pruning it gradually (PyTorch), until held-out data stops improving.

The model is built from canonical weights (:mod:`lstm_hw.model.torch_io` names).

**Validation.** A seeded part of the data (``val_fraction``, stratified by
label for a classifier: :func:`lstm_hw.compression.data.validation_split`) is
held out; training never sees it. After every epoch the model is scored on it:
accuracy and loss for labels, the loss for real targets. Training has made
*progress* when either figure beats its best so far at the final density (the
loss by more than :data:`MIN_DELTA` of itself): a few hundred held-out
sequences move the accuracy in steps of a fraction of a point, so it alone
stalls for epochs while the model still gets better (stopping on it, the loss
only breaking ties, cost the small digits models up to 3 points of golden
accuracy at lr 1e-3 and a patience of 10). The weights *kept* are those of
the highest accuracy, the lowest loss breaking ties (the lowest loss for real
targets).

**Pruning** follows the cubic schedule of Zhu & Gupta (2017) over ``R`` ramp
epochs: at the start of epoch ``e`` the kept fraction of every pruning group is

    d(e) = d_f + (1 - d_f) (1 - min(1, (e + 1) / R))^3,   R = min(ramp_epochs, max(1, E - E // 3)),

``E`` the epoch cap, so the target ``d_f`` holds from epoch ``R`` (1-based)
on and at least a third of a small cap fine-tunes at it. A group is a matrix
(a layer's ``W_ih`` or ``W_hh``, the head's weight) and a NumPy function that
prunes it to a density; its mask is that function's kept positions. Masks only
shrink: a pruned weight stays zero (its gradient is masked and it is re-zeroed
after every optimizer step). The ramp is fixed rather than driven by the
validation score: a score that falls as weights go is the price of pruning, not
a reason to stop.

**At the final density** training goes on until it has made no progress for
``patience`` epochs, or the cap ``E`` is reached; the weights of the best
validation score *at the final density* are restored (never a state from the
ramp, which would not have the target density). The learning rate halves
after every ``max(1, patience // 3)`` epochs without progress
(``lr_schedule = "plateau"``, the default): a plateau is often a learning rate
too large for the pruned, quantized weights, and a few halvings before giving
up recover it. ``"constant"`` keeps it, ``"cosine"`` anneals it from the end of
the ramp to the cap (measured against each other in docs/finetuning.md).

With ``val_fraction = 0`` nothing is held out: exactly ``E`` epochs run on all
the data (the same ramp) and the last weights are kept.

Quantization-aware training (``weight_format`` / ``activation_format``)
passes weights, the summed biases, ``x`` and ``h`` through the hardware's
rounding (round half up to ``frac`` bits, saturate to ``bits``) in the
forward pass, with a straight-through gradient; the validation score is then
the quantized model's.

Runs in float64 on the CPU, seeded: the same inputs give the same weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.torch_io import import_torch, model_sizes
from ..numerics.fixed import Fixed
from .options import FINETUNE_DEFAULTS as DEFAULTS, check_finetune_options

__all__ = ["PruneGroup", "FinetuneResult", "cubic_density", "ramp_length", "kept_mask", "LSTMModel",
           "finetune", "evaluate_loss", "MIN_DELTA"]

torch = import_torch("fine-tuning")
nn = torch.nn


@dataclass(frozen=True)
class PruneGroup:
    """Weights pruned together: ``names`` side by side (columns) form one matrix."""

    names: tuple[str, ...]
    density: float                                  # final kept fraction
    prune: Callable[[np.ndarray, float], np.ndarray]  # matrix, density -> pruned matrix


#: A loss must fall by this fraction of itself to count as an improvement (as ReduceLROnPlateau's threshold).
MIN_DELTA = 1e-3


@dataclass
class FinetuneResult:
    """What :func:`finetune` did. ``curve`` has one dict per epoch run: ``epoch`` (1-based), ``density``,
    ``lr``, ``train_loss``, and with validation ``val_loss`` (and ``val_accuracy`` for labels)."""

    weights: dict[str, np.ndarray]          # canonical, float64, masked
    masks: dict[str, np.ndarray]            # per weight name, bool
    losses: list[float] = field(default_factory=list)      # mean training loss of every epoch
    densities: list[float] = field(default_factory=list)   # schedule: density applied at each epoch
    curve: list[dict] = field(default_factory=list)
    ramp_epochs: int = 0                    # R: the final density holds from epoch R (1-based) on
    best_epoch: int | None = None           # 1-based epoch whose weights were kept (None: no validation)
    stopped: str | None = None              # "patience", "cap" (None: epochs = 0)
    train_sequences: int = 0
    val_sequences: int = 0

    @property
    def epochs_run(self) -> int:
        return len(self.curve)


def ramp_length(epochs: int, ramp_epochs: int) -> int:
    """R: the epochs over which the density ramps down, at most ``ramp_epochs`` and two thirds of the cap."""
    return max(1, min(ramp_epochs, epochs - epochs // 3))


def cubic_density(epoch: int, ramp: int, final: float) -> float:
    """Kept fraction at the start of ``epoch`` (0-based) of a ``ramp``-epoch ramp: Zhu & Gupta's cubic schedule."""
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




def _scores(model, x, y, kind: str) -> dict:
    """Loss (and accuracy for labels) of ``model`` on ``x``, no gradient."""
    with torch.no_grad():
        out = model(x)
        scores = {"val_loss": float(_loss(out, y, kind))}
        if kind == "cross_entropy":
            scores["val_accuracy"] = float((out[:, -1].argmax(1) == y).double().mean())
    return scores


def _better(scores: dict, best: dict | None) -> bool:
    """Whether ``scores`` beat the kept weights' ``best``: higher accuracy, or at equal accuracy a lower loss."""
    if best is None:
        return True
    if "val_accuracy" in scores and scores["val_accuracy"] != best["val_accuracy"]:
        return scores["val_accuracy"] > best["val_accuracy"]
    return scores["val_loss"] < best["val_loss"]


def _progressed(scores: dict, record: dict) -> bool:
    """Whether any validation figure beats its best so far (``record``, updated): the accuracy, or the loss by
    more than :data:`MIN_DELTA` of itself."""
    gained = False
    if "val_accuracy" in scores and scores["val_accuracy"] > record.get("val_accuracy", -1.0):
        record["val_accuracy"], gained = scores["val_accuracy"], True
    if "val_loss" not in record or scores["val_loss"] < record["val_loss"] * (1 - MIN_DELTA):
        record["val_loss"], gained = scores["val_loss"], True
    return gained


def finetune(weights: dict[str, np.ndarray], x, y, kind: str, groups: list[PruneGroup], *, epochs: int,
             lr: float = DEFAULTS["lr"], batch_size: int = DEFAULTS["batch_size"], seed: int = 0,
             val_fraction: float = DEFAULTS["val_fraction"], patience: int = DEFAULTS["patience"],
             ramp_epochs: int = DEFAULTS["ramp_epochs"], lr_schedule: str = DEFAULTS["lr_schedule"],
             weight_format: Fixed | None = None,
             bias_format: Fixed | None = None, activation_format: Fixed | None = None,
             progress=None) -> FinetuneResult:
    """Adam while pruning ``groups`` to their densities, then at the final density until validation stops improving.

    ``x`` and ``y`` as checked by :func:`lstm_hw.compression.data.check_data`,
    ``kind`` its loss. ``epochs`` is the cap E (see the module docstring for
    the ramp, the stopping rule and ``lr_schedule``); ``val_fraction`` of the
    sequences is held out (0: none, and exactly E epochs run). With ``epochs =
    0`` the groups are pruned at once and nothing is trained. Each epoch's
    density, losses, time and the time left go to ``progress``
    (:mod:`lstm_hw.progress`).
    """
    from ..progress import stage, steps
    from .data import validation_split
    check_finetune_options(epochs=epochs, lr=lr, batch_size=batch_size, val_fraction=val_fraction,
                           patience=patience, ramp_epochs=ramp_epochs, lr_schedule=lr_schedule)
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
            result.weights = model.to_weights()
            return result
        train, val = validation_split(y, val_fraction, seed) if val_fraction else (np.arange(len(x)), None)
        result.train_sequences, result.val_sequences = len(train), 0 if val is None else len(val)
        xt, yt = torch.tensor(x[train]), torch.tensor(y[train])
        xv, yv = (None, None) if val is None else (torch.tensor(x[val]), torch.tensor(y[val]))
        ramp = result.ramp_epochs = ramp_length(epochs, ramp_epochs)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        order = torch.Generator().manual_seed(seed)
        best = best_state = None     # the kept weights and their scores
        record: dict = {}            # the best of each validation figure at the final density
        bad = 0                      # epochs since one of them last improved
        start = time.perf_counter()
        with steps(progress, "fine-tune", epochs, "epoch") as done:
            for epoch in range(epochs):
                fraction = {g.names: cubic_density(epoch, ramp, g.density) for g in groups}
                update_masks(model, lambda g: fraction[g.names])
                rate = opt.param_groups[0]["lr"]
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
                density = min(fraction.values()) if fraction else 1.0
                point = {"epoch": epoch + 1, "density": density, "lr": rate, "train_loss": total / count}
                result.losses.append(point["train_loss"])
                result.densities.append(density)
                if xv is not None:
                    point.update(_scores(model, xv, yv, kind))
                result.curve.append(point)
                final = epoch + 1 >= ramp   # this epoch trained at the final density
                if xv is not None and final:
                    if _better(point, best):
                        best, best_state = point, model.to_weights()
                    bad = 0 if _progressed(point, record) else bad + 1
                    if lr_schedule == "plateau" and bad and bad % max(1, patience // 3) == 0:
                        for g in opt.param_groups:
                            g["lr"] *= 0.5
                if final and lr_schedule == "cosine" and epochs > ramp:
                    for g in opt.param_groups:
                        g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (epoch + 2 - ramp) / (epochs + 1 - ramp)))
                done(epoch + 1)
                spent = time.perf_counter() - start
                shown = ", ".join(f"{d:.3f}" for d in dict.fromkeys(fraction.values()))
                val_text = "" if xv is None else f", validation loss {point['val_loss']:.4g}" + (
                    f" accuracy {point['val_accuracy']:.2%}" if "val_accuracy" in point else "")
                stage(progress, f"epoch {epoch + 1}/{epochs}: density {shown or '1'}, loss "
                                f"{point['train_loss']:.6g}{val_text}, lr {rate:.3g}, {spent:.1f} s, ETA at most "
                                f"{spent / (epoch + 1) * (epochs - epoch - 1):.1f} s")
                if xv is not None and bad >= patience:
                    result.stopped = "patience"
                    break
            else:
                result.stopped = "cap"
        if best_state is not None:
            result.best_epoch = best["epoch"]
            for name, w in best_state.items():
                with torch.no_grad():
                    model.weight(name).copy_(torch.from_numpy(w))
        # the best (or last) epochs ran at the final density already; this only makes sure of it
        update_masks(model, lambda g: g.density)
    result.weights = model.to_weights()
    return result
