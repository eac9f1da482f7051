"""A design: the config and weights turned into exactly what the hardware stores.

:func:`build_design` prunes, quantizes and schedules every layer once. The
golden model, the Amaranth generators and the metadata all read the result, so
the numbers they use cannot drift apart.

Schedule of a layer (``R = hardware.rows`` row lanes, ``banks`` PEs per lane):
hardware row ``r' = 4 j + gate`` is PyTorch row ``gate * H + j``, so the four
gates of hidden unit ``j`` are adjacent. Pass ``p`` computes rows
``p R .. p R + R - 1`` in ``k`` cycles, one stored weight per PE per cycle.
Rows past ``4H`` (when ``R`` does not divide ``4H``) are zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cell import ActivationTables, CellMath
from .config import Config
from .numerics import Fixed, bits_for, quantize_real
from .sparsity import bank_width, kept_per_bank, pack_banks, prune_bank_balanced
from .weights import random_weights

__all__ = ["LayerPlan", "Design", "build_design"]


@dataclass(frozen=True, eq=False)
class LayerPlan:
    """One quantized, pruned, scheduled LSTM layer."""

    index: int
    input_size: int       # I of this layer
    hidden: int           # H
    banks: int
    bank_width: int       # B: columns per bank
    k: int                # stored weights per bank per row
    rows: int             # R: row lanes
    w: np.ndarray         # int64 (4H, I+H), quantized and pruned, PyTorch row order
    b: np.ndarray         # int64 (4H,), bias format (b_ih + b_hh, quantized once)
    w_float: np.ndarray   # float64 (4H, I+H), pruned, before quantization
    b_float: np.ndarray   # float64 (4H,)

    @property
    def columns(self) -> int:
        return self.input_size + self.hidden

    @property
    def passes(self) -> int:
        return -(-4 * self.hidden // self.rows)

    @property
    def units_per_pass(self) -> int:
        """Hidden units completed per pass: the number of cell-update lanes."""
        return max(1, self.rows // 4)

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
        """ROM contents: weights and indices ``(rows, banks, passes*k)``, biases ``(rows, passes)``."""
        values, index = pack_banks(self.w, self.banks, self.k)             # (4H, banks, k)
        src = self.hw_rows()
        pad = src < 0
        vals = np.where(pad[:, None, None], 0, values[np.maximum(src, 0)])
        idx = np.where(pad[:, None, None], 0, index[np.maximum(src, 0)])
        bias = np.where(pad, 0, self.b[np.maximum(src, 0)])
        # hardware row p*R + l -> lane l, pass p; address p*k + c
        def lanes(a):
            a = a.reshape(self.passes, self.rows, self.banks, self.k)
            return a.transpose(1, 2, 0, 3).reshape(self.rows, self.banks, self.passes * self.k)
        return lanes(vals), lanes(idx), bias.reshape(self.passes, self.rows).T.copy()


@dataclass(frozen=True, eq=False)
class Design:
    config: Config
    layers: tuple[LayerPlan, ...]
    tables: ActivationTables
    cell: CellMath

    @property
    def io_format(self) -> Fixed:
        return self.config.quant.activation

    @property
    def tdata_width(self) -> int:
        return 8 * -(-self.io_format.bits // 8)


def build_design(config: Config, weights: dict[str, np.ndarray] | None = None) -> Design:
    """Prune and quantize ``weights`` (checked, PyTorch names) or the seeded defaults."""
    if weights is None:
        weights = random_weights(config)
    q, s, m = config.quant, config.sparsity, config.model
    layers = []
    for n in range(m.num_layers):
        w = np.concatenate([weights[f"weight_ih_l{n}"], weights[f"weight_hh_l{n}"]], axis=1)
        w = prune_bank_balanced(w, s.banks, s.density)
        b = weights[f"bias_ih_l{n}"] + weights[f"bias_hh_l{n}"]
        width = bank_width(w.shape[1], s.banks)
        layers.append(LayerPlan(
            index=n, input_size=config.layer_input_size(n), hidden=m.hidden_size, banks=s.banks,
            bank_width=width, k=kept_per_bank(width, s.density), rows=config.hardware.rows,
            w=quantize_real(w, q.weight), b=quantize_real(b, q.bias_format),
            w_float=w, b_float=b))
    return Design(config=config, layers=tuple(layers), tables=ActivationTables.from_config(config),
                  cell=CellMath.from_config(config))
