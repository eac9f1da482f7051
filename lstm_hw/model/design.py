"""A design: the config and weights turned into exactly what the hardware stores.

:func:`build_design` prunes, quantizes and schedules every layer once. The
golden model, the Amaranth generators and the metadata all read the result, so
the numbers they use cannot drift apart.

Schedule of a layer (``R = hardware.rows`` row lanes, ``banks`` PEs per lane):
hardware row ``r' = 4 j + gate`` is PyTorch row ``gate * H + j``, so the four
gates of hidden unit ``j`` are adjacent. ``W_ih`` and ``W_hh`` are pruned
separately, each bank-balanced (``k_x`` and ``k_h`` stored weights per bank
of every row), and a timestep runs in two phases: the input phase computes
``W_ih x_t + b`` for every pass (``k_x`` cycles each) into stored partial
sums, and the recurrent phase adds ``W_hh h_{t-1}`` (``k_h`` cycles per
pass). Only the recurrent phase waits for ``h_{t-1}``, so the input phase of
step ``t`` overlaps the end of step ``t - 1``. Pass ``p`` computes rows
``p R .. p R + R - 1``, one stored weight per PE per cycle. Rows past ``4H``
(when ``R`` does not divide ``4H``) are zero.

The vector store holds ``x`` in entries ``0 .. x_width - 1`` of every bank
(element ``i`` in bank ``i % banks``, entry ``i // banks``) and ``h`` after
them (``h_j`` in bank ``j % banks``, entry ``x_width + j // banks``).

The optional head (``model.output_size = O > 0``) is the same kind of matrix:
:class:`HeadPlan` schedules ``fc.weight`` (``O x H``) on one row lane, row
``o`` in pass ``o``, pruned with ``sparsity.head_density``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..config.schema import Config, cell_lanes, tdata_widths
from ..numerics.cell import ActivationTables, CellMath
from ..numerics.fixed import Fixed, bits_for, quantize_real
from ..numerics.sparsity import bank_width, pack_banks
from .pruning import MatrixPruning, check_strict, pruned_with_slots, pruning_summary
from .sums import check_sum_bits
from .weights import random_weights

__all__ = ["slot_bits", "LayerPlan", "HeadPlan", "Design", "build_design"]


def slot_bits(interleave: int) -> int:
    """Bits of a vector-store slot: the double-buffer half and, with ``interleave`` > 1 sequences taking
    turns, the sequence (bit 0 the half, the sequence above it)."""
    return 1 + (interleave - 1).bit_length()


@dataclass(frozen=True, eq=False)
class LayerPlan:
    """One quantized, pruned, scheduled LSTM layer."""

    index: int
    input_size: int       # I of this layer
    hidden: int           # H
    banks: int
    bank_width: int       # B: vector entries per bank (x_width for x, the rest for h)
    k: int                # stored weights per bank per row: k_x + k_h
    rows: int             # R: row lanes
    w: np.ndarray         # int64 (4H, I+H), quantized and pruned, PyTorch row order
    b: np.ndarray         # int64 (4H,), bias format (b_ih + b_hh, quantized once)
    w_float: np.ndarray   # float64 (4H, I+H), pruned, before quantization
    b_float: np.ndarray   # float64 (4H,)
    x_width: int          # vector entries per bank that hold x
    k_x: int              # stored weights of W_ih per bank per row (the input phase)
    interleave: int = field(default=1, kw_only=True)   # sequences taking turns, each with its own h and c

    @property
    def slot_bits(self) -> int:
        """Bits of a vector-store slot (:func:`slot_bits` of :attr:`interleave`)."""
        return slot_bits(self.interleave)

    @property
    def k_h(self) -> int:
        """Stored weights of ``W_hh`` per bank per row (the recurrent phase); 0 for a head."""
        return self.k - self.k_x

    @property
    def columns(self) -> int:
        return self.input_size + self.hidden

    @property
    def passes(self) -> int:
        return -(-4 * self.hidden // self.rows)

    @property
    def units_per_pass(self) -> int:
        """Hidden units completed per pass: the number of cell-update lanes."""
        return cell_lanes(self.rows)

    @property
    def index_bits(self) -> int:
        return bits_for(self.bank_width - 1)

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.w))

    @property
    def stored(self) -> int:
        """Stored weights, zeros included: what the PEs actually multiply."""
        return 4 * self.hidden * self.banks * self.k

    @property
    def issue_cycles(self) -> int:
        return self.passes * self.k

    def hw_rows(self) -> np.ndarray:
        """PyTorch row of each hardware row ``r'`` (``-1`` for padding rows), length ``passes * rows``."""
        r = np.arange(self.passes * self.rows)
        unit, gate = r // 4, r % 4
        return np.where(unit < self.hidden, gate * self.hidden + unit, -1)

    def roms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ROM contents: weights and indices ``(rows, banks, passes*k)``, biases ``(rows, passes)``.

        Address ``p * k_x + c`` holds cycle ``c`` of pass ``p`` of the input phase (indices into
        the ``x`` entries), and ``passes * k_x + p * k_h + c`` the same of the recurrent phase
        (indices ``x_width ..`` into the ``h`` entries).
        """
        I, src = self.input_size, self.hw_rows()
        pad = src < 0
        phases = [(self.w[:, :I], self.k_x, 0)] + ([(self.w[:, I:], self.k_h, self.x_width)] if self.k_h else [])
        vals, idx = [], []
        for w, k, base in phases:
            values, index = pack_banks(w, self.banks, k)                   # (4H, banks, k)
            # hardware row p*R + l -> lane l, pass p; address p*k + c within the phase
            for out, a in ((vals, values), (idx, index + base)):
                a = np.where(pad[:, None, None], 0, a[np.maximum(src, 0)])
                a = a.reshape(self.passes, self.rows, self.banks, k)
                out.append(a.transpose(1, 2, 0, 3).reshape(self.rows, self.banks, self.passes * k))
        bias = np.where(pad, 0, self.b[np.maximum(src, 0)])
        return np.concatenate(vals, axis=2), np.concatenate(idx, axis=2), bias.reshape(self.passes, self.rows).T.copy()


@dataclass(frozen=True, eq=False)
class HeadPlan(LayerPlan):
    """The dense head ``fc`` (``O x H``), quantized, pruned and scheduled as a one-lane matrix.

    It reuses the layer schedule with ``input_size = H`` columns and no
    recurrent part (``hidden = 0``); hardware row ``r`` is ``fc`` row ``r``,
    and pass ``p`` computes rows ``p R .. p R + R - 1`` (``R = rows``).
    ``w`` is ``(O, H)`` in the weight format and ``b`` ``(O,)`` in the bias format.
    """

    outputs: int          # O

    @property
    def passes(self) -> int:
        return -(-self.outputs // self.rows)

    @property
    def stored(self) -> int:
        return self.outputs * self.banks * self.k

    def hw_rows(self) -> np.ndarray:
        r = np.arange(self.passes * self.rows)
        return np.where(r < self.outputs, r, -1)


@dataclass(frozen=True, eq=False)
class Design:
    config: Config
    layers: tuple[LayerPlan, ...]
    tables: ActivationTables
    cell: CellMath
    head: HeadPlan | None = None
    pruning: tuple[MatrixPruning, ...] = ()   # what the pruning dropped of each matrix (lstm_hw.model.pruning)
    weights_given: bool = False               # False: the seeded default weights

    @property
    def io_format(self) -> Fixed:
        """Format of the input stream ``x`` (and of every ``h_t``); see :attr:`output_format`."""
        return self.config.quant.activation

    @property
    def output_format(self) -> Fixed:
        """Format of the output stream: the head's outputs, or ``h_t`` without a head."""
        return self.config.quant.output_format if self.head is not None else self.io_format

    def unit_quant(self, plan: LayerPlan):
        """The number formats of ``plan``'s matrix unit: the config's, but a head rounds and saturates its sums
        into the output format (its ``preact``)."""
        q = self.config.quant
        return replace(q, preact=self.output_format) if plan is self.head else q

    @property
    def output_size(self) -> int:
        """Elements per output timestep: ``O`` with a head, else ``H``."""
        return self.head.outputs if self.head is not None else self.config.model.hidden_size

    @property
    def lanes(self) -> int:
        """Elements per stream beat (``hardware.io_lanes``)."""
        return self.config.hardware.io_lanes

    @property
    def tdata_width(self) -> int:
        """Input ``tdata`` width: ``lanes`` elements of whole bytes (:func:`~lstm_hw.config.schema.tdata_widths`)."""
        return tdata_widths(self.config)[0]

    @property
    def output_tdata_width(self) -> int:
        return tdata_widths(self.config)[1]


def build_design(config: Config, weights: dict[str, np.ndarray] | None = None, *, strict: bool = False,
                 source: str = "weights") -> Design:
    """Prune and quantize ``weights`` (checked, PyTorch names) or, without them, the seeded defaults.

    :attr:`Design.pruning` says what the pruning dropped of each given matrix
    (:mod:`lstm_hw.model.pruning`). With ``strict``, given weights of which it would
    drop any non-zero are refused with a :class:`~lstm_hw.errors.ConfigError`
    naming ``source`` (the weights' file) and the matrix. Weights whose gate sums could need more than
    ``hardware.sum_bits`` are refused (:func:`~lstm_hw.model.sums.check_sum_bits`).
    """
    given = weights is not None
    if not given:
        weights = random_weights(config)
    pruned = pruned_with_slots(weights, config)
    summary = pruning_summary(weights, {name: w for name, (w, _) in pruned.items()}, config)
    if strict and given:
        check_strict(summary, source)
    q, s, m = config.quant, config.sparsity, config.model
    layers = []
    for n in range(m.num_layers):
        # W_ih and W_hh each bank-balanced: the two phases of a step each keep every PE busy.
        w_ih, k_x = pruned[f"weight_ih_l{n}"]
        w_hh, k_h = pruned[f"weight_hh_l{n}"]
        w = np.concatenate([w_ih, w_hh], axis=1)
        b = weights[f"bias_ih_l{n}"] + weights[f"bias_hh_l{n}"]
        x_width = bank_width(w_ih.shape[1], s.banks)
        layers.append(LayerPlan(
            index=n, input_size=config.layer_input_size(n), hidden=m.hidden_size, banks=s.banks,
            bank_width=x_width + bank_width(w_hh.shape[1], s.banks), k=k_x + k_h, rows=config.hardware.rows,
            w=quantize_real(w, q.weight), b=quantize_real(b, q.bias_format),
            w_float=w, b_float=b, x_width=x_width, k_x=k_x, interleave=config.hardware.interleave))
    head = None
    if m.output_size > 0:
        w, k = pruned["fc.weight"]
        b = weights["fc.bias"]
        width = bank_width(m.hidden_size, s.banks)
        head = HeadPlan(
            index=m.num_layers, input_size=m.hidden_size, hidden=0, banks=s.banks, bank_width=width,
            k=k, rows=1, outputs=m.output_size,
            w=quantize_real(w, q.weight), b=quantize_real(b, q.bias_format), w_float=w, b_float=b,
            x_width=width, k_x=k)
    design = Design(config=config, layers=tuple(layers), tables=ActivationTables.from_config(config),
                    cell=CellMath.from_config(config), head=head, pruning=summary, weights_given=given)
    check_sum_bits(design, source if given else "the seeded weights")
    return design
