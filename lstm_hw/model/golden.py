"""The bit-exact NumPy model of the generated hardware, and a float64 reference LSTM.

Every sequence starts from h = c = 0. ``x`` codes are ``(N, T, I)``; the result
is ``(N, T, H)``, or ``(N, 1, H)`` when ``return_sequences`` is false; with a
head (``model.output_size = O``) every emitted ``h_t`` goes through it, giving
``(N, T', O)`` in the output format. The gate and head sums are exact
integers, as in the hardware's wide accumulators, so only the documented
rounding points (pre-activation, cell, h, head output) and the activation
tables shape the result.

With ``model.sequence_length = T > 0`` the hardware starts a new sequence
every ``T`` steps of a transfer, so :func:`run_golden` cuts a longer sequence
likewise; :func:`run_transfers` frames a whole stream of transfers.
"""

from __future__ import annotations

import numpy as np

from .design import Design, LayerPlan
from ..errors import UsageError
from ..numerics.cell import cell_update
from ..numerics.fixed import Fixed, requantize

__all__ = ["layer_preact", "head_output", "run_layer", "run_golden", "run_transfers", "run_golden_real",
           "float_lstm", "interleave_steps", "split_steps"]


def _matvec(design: Design, plan: LayerPlan, v, fmt: Fixed) -> np.ndarray:
    """``W v + b`` summed exactly in the product format, then rounded and saturated once into ``fmt``."""
    q = design.config.quant
    bias = np.asarray(plan.b, dtype=np.int64) << q.bias_shift
    acc = np.asarray(v, dtype=np.int64) @ plan.w.T + bias
    return requantize(acc, q.product.frac, fmt, q.rounding)


def layer_preact(design: Design, layer: LayerPlan, v) -> np.ndarray:
    """Pre-activation codes ``(N, 4H)`` for vectors ``v = [x_t; h_{t-1}]`` ``(N, I+H)``, PyTorch order."""
    return _matvec(design, layer, v, design.config.quant.preact)


def head_output(design: Design, h) -> np.ndarray:
    """The head's output codes ``(..., O)`` for hidden states ``h`` ``(..., H)``."""
    return _matvec(design, design.head, h, design.output_format)


def run_layer(design: Design, layer: LayerPlan, x, state=None) -> np.ndarray:
    """All hidden states ``(N, T, H)`` of one layer for input codes ``(N, T, I)``.

    ``state``, if given, is a ``[h, c]`` list of ``(N, H)`` codes to start from
    (zeros when ``None``); it is updated in place to the state after the last step.
    """
    x = np.asarray(x, dtype=np.int64)
    n, t_len, _ = x.shape
    hid = layer.hidden
    if state is None:
        state = [np.zeros((n, hid), dtype=np.int64), np.zeros((n, hid), dtype=np.int64)]
    h, c = state
    out = np.empty((n, t_len, hid), dtype=np.int64)
    for t in range(t_len):
        z = layer_preact(design, layer, np.concatenate([x[:, t], h], axis=1))
        c, h = cell_update(*np.split(z, 4, axis=1), c, design.tables, design.cell)
        out[:, t] = h
    state[:] = [h, c]
    return out


def run_golden(design: Design, x, states=None) -> np.ndarray:
    """Output codes of the whole stack for input codes ``(N, T, I)`` (or ``(T, I)``).

    ``states``, if given, holds one ``[h, c]`` per layer (see :func:`run_layer`),
    or ``None`` entries for zero states; each is left at the state after the last step.
    Without ``states``, each sequence is what the hardware gives for it sent as one
    transfer: with ``model.sequence_length = T > 0`` and more than ``T`` steps, it
    is cut into sequences of ``T`` steps (the last may be shorter), each from zero
    state, their outputs in order (with ``return_sequences`` false, each one's last).
    """
    x = np.asarray(x, dtype=np.int64)
    single = x.ndim == 2
    if single:
        x = x[None]
    size = design.config.model.sequence_length
    if states is None and size and x.shape[1] > size:
        out = np.concatenate([run_golden(design, x[:, s:s + size]) for s in range(0, x.shape[1], size)], axis=1)
        return out[0] if single else out
    for k, layer in enumerate(design.layers):
        if states is not None and states[k] is None:
            states[k] = [np.zeros((x.shape[0], layer.hidden), dtype=np.int64) for _ in range(2)]
        x = run_layer(design, layer, x, None if states is None else states[k])
    if not design.config.model.return_sequences:
        x = x[:, -1:]
    if design.head is not None:
        x = head_output(design, x)
    return x[0] if single else x


def run_transfers(design: Design, transfers, *, state_resets=()) -> list[np.ndarray]:
    """Output codes of each transfer of a stream, as the hardware frames them.

    ``transfers`` is a list of input codes ``(S_k, I)``, each ending with
    ``tlast``, framed by the design's ``model.sequence_length`` and
    ``model.stateful``. Without ``stateful``, a sequence starts from zero state at the
    start of every transfer and, with ``sequence_length = T > 0``, after every
    ``T`` steps of it; a transfer that ends inside a sequence ends that
    sequence there (a framing error: the short sequence is run and emitted like
    any other). With ``stateful``, the state carries from each transfer into
    the next and returns to zero only before the transfers whose indices are in
    ``state_resets`` (and before the first). Each result holds the transfer's
    outputs ``(S'_k, O)``: every step's, or with ``return_sequences = false``
    the last step's of each sequence (of each transfer, when stateful).
    """
    if not design.config.model.stateful:   # each transfer on its own, cut by run_golden
        return [run_golden(design, np.asarray(steps, dtype=np.int64)) for steps in transfers]
    results, states = [], [None] * len(design.layers)
    for k, steps in enumerate(transfers):
        if k in state_resets:
            states = [None] * len(design.layers)
        results.append(run_golden(design, np.asarray(steps, dtype=np.int64)[None], states)[0])
    return results


def interleave_steps(seqs, interleave: int) -> np.ndarray:
    """Sequences ``(N, T, ...)`` as ``hardware.interleave = n`` streams them: ``(N / n, T n, ...)``, group ``g``'s
    step ``t n + s`` being step ``t`` of sequence ``g n + s``. Inputs go in, and outputs (:func:`run_golden`'s)
    come out, in this order; :func:`split_steps` undoes it. ``N`` must be a multiple of ``n``."""
    a = np.asarray(seqs)
    n = interleave
    if a.ndim < 2 or a.shape[0] % n:
        raise UsageError(f"interleave = {n} streams sequences in groups of {n}: got {a.shape[0] if a.ndim else 0} "
                         f"sequences, not a multiple of {n}")
    rest = a.shape[2:]
    return a.reshape(a.shape[0] // n, n, a.shape[1], *rest).swapaxes(1, 2).reshape(a.shape[0] // n, -1, *rest)


def split_steps(stream, interleave: int) -> np.ndarray:
    """The sequences ``(N, T, ...)`` of groups streamed as :func:`interleave_steps` orders them, ``(G, T n, ...)``."""
    a = np.asarray(stream)
    n = interleave
    if a.ndim < 2 or a.shape[1] % n:
        raise UsageError(f"interleave = {n}: a group's steps come in whole timesteps of {n}, "
                         f"got {a.shape[1] if a.ndim > 1 else 0} steps")
    rest = a.shape[2:]
    return a.reshape(a.shape[0], a.shape[1] // n, n, *rest).swapaxes(1, 2).reshape(-1, a.shape[1] // n, *rest)


def run_golden_real(design: Design, x_real) -> np.ndarray:
    """Real-valued in, real-valued out: quantize ``x``, run, and convert the output words."""
    return design.output_format.to_real(run_golden(design, design.io_format.quantize(x_real)))


def float_lstm(design: Design, x_real, *, quantized_weights: bool = False, trace: list | None = None) -> np.ndarray:
    """A float64 LSTM with exact sigmoid and tanh and the design's pruned weights.

    ``quantized_weights`` uses the weights and biases as the hardware stores
    them, which isolates the datapath's own error from weight quantization.
    A head is applied to every returned ``h_t``, in float, without saturation.
    ``trace``, if given, receives per layer a list of per-step ``(z, c, h)`` arrays.
    """
    q = design.config.quant
    x = np.asarray(x_real, dtype=np.float64)
    single = x.ndim == 2
    if single:
        x = x[None]
    def weights(plan):
        if quantized_weights:
            return q.weight.to_real(plan.w), q.bias_format.to_real(plan.b)
        return plan.w_float, plan.b_float

    for layer in design.layers:
        w, b = weights(layer)
        n, t_len, _ = x.shape
        h = np.zeros((n, layer.hidden))
        c = np.zeros((n, layer.hidden))
        out = np.empty((n, t_len, layer.hidden))
        steps = []
        for t in range(t_len):
            z = np.concatenate([x[:, t], h], axis=1) @ w.T + b
            zi, zf, zg, zo = np.split(z, 4, axis=1)
            c = _sigmoid(zf) * c + _sigmoid(zi) * np.tanh(zg)
            h = _sigmoid(zo) * np.tanh(c)
            out[:, t] = h
            steps.append((z, c, h))
        if trace is not None:
            trace.append(steps)
        x = out
    if not design.config.model.return_sequences:
        x = x[:, -1:]
    if design.head is not None:
        w, b = weights(design.head)
        x = x @ w.T + b
    return x[0] if single else x


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))
