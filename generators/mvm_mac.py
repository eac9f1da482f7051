"""The multiply-accumulate chains of :class:`~lstm_hw.generators.mvm.SparseMatVec`, one DSP48E1 per product."""

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count, delay, delay_taps
from .mvm_sum import chunk_bounds

__all__ = ["CHAIN_MAX", "chain_groups", "chain_positions", "MacArray"]

#: The default longest chain of DSP48E1s that sum their products through their
#: post-adders (``P = M + C``; ``hardware.mac_chain``). Every bank beyond the first of
#: a chain saves a fabric adder and costs a cycle of latency; four keeps the latency
#: within a cycle or two of a plain adder tree while cutting the fabric adders per MAC
#: to about a quarter.
CHAIN_MAX = 4


def chain_groups(banks: int, chain_max: int = CHAIN_MAX) -> list[list[int]]:
    """The banks split into the fewest chains of consecutive banks, at most ``chain_max`` long, as even as possible."""
    if banks < 1:
        raise ValueError(f"banks must be at least 1, got {banks}")
    n = -(-banks // chain_max)
    base, extra = divmod(banks, n)
    groups, start = [], 0
    for g in range(n):
        size = base + (1 if g < extra else 0)
        groups.append(list(range(start, start + size)))
        start += size
    return groups


def chain_positions(groups: list[list[int]]) -> list[int]:
    """Each bank's chain position: a chain of ``n`` banks sits at positions ``G - n .. G - 1`` of the
    longest chain's ``G``, so every chain ends at the last position."""
    longest = max(len(banks) for banks in groups)
    position = {bank: longest - len(banks) + i for banks in groups for i, bank in enumerate(banks)}
    return [position[bank] for bank in range(len(position))]


class MacArray(wiring.Component):
    """Every PE's product, the products of each chain of banks summed through DSP48E1 post-adders.

    PE ``(lane, bank)`` multiplies its weight ``w`` by its vector element ``v``,
    in the shape of one DSP48E1: A/B operand registers, the M (product)
    register, and the P register, whose post-adder adds the P of the bank
    before it in its chain (``P = M + C``, the C input or the PCIN cascade).
    Chains are :func:`chain_groups`; a bank at chain position ``j``
    (:func:`chain_positions`) runs ``j`` cycles behind position 0, so each sum
    meets the next bank's product as it comes and every chain ends in step.
    With ``mask``, a slot's elements are read as zero (``h_{t-1}`` of a
    sequence's first step). Each combinational path is a multiplier or one
    post-adder deep. The chain sums leave chunk-skewed, as the carry-pipelined
    adders after them take them (:mod:`~lstm_hw.generators.mvm_sum`).

    Latency: chunk 0 of a slot's chain sums comes :attr:`latency` cycles
    (``2 + positions``) after its position-0 elements ``v``, chunk ``j`` ``j``
    cycles later; its weights and ``mask`` come a cycle before its elements
    (with the vector read's address), and everything of position ``j`` ``j``
    cycles after that of position 0. Throughput: a slot every cycle. No
    handshake.

    Parameters
    ----------
    rows : int
        Lanes.
    groups : list of list of int
        The chains, consecutive banks each (:func:`chain_groups`).
    weight : ShapeLike
        Shape of a weight (signed).
    element : ShapeLike
        Shape of a vector element.
    product_bits : int
        Width of an exact product.
    sum_bits : int
        Width of the chain sums, which wrap modulo ``2**sum_bits``.
    mask : bool
        The ``mask`` input.

    Members
    -------
    w : In(ArrayLayout(weight, rows * banks))
        Each PE's weight, PE ``(lane, bank)``'s at ``lane * banks + bank``.
    v : In(ArrayLayout(element, rows * banks))
        Each PE's vector element, a cycle after its weight.
    mask : In(1)
        Read the slot's elements as zero; for position 0, the others follow (only with ``mask``).
    chains : Out(ArrayLayout(ArrayLayout(unsigned(sum_bits), len(groups)), rows))
        Each lane's chain sums, two's complement, chunk-skewed (:func:`~lstm_hw.generators.mvm_sum.chunk_bounds`).
    """

    def __init__(self, *, rows: int, groups: list[list[int]], weight, element, product_bits: int, sum_bits: int,
                 mask: bool):
        if not groups or [bank for banks in groups for bank in banks] != list(range(sum(map(len, groups)))):
            raise ValueError(f"groups must list every bank from 0 once, in order, got {groups!r}")
        if not isinstance(mask, bool):
            raise TypeError(f"mask must be a bool, not {mask!r}")
        self._rows = check_count("rows", rows)
        self._groups, self._mask = groups, mask
        self._positions = chain_positions(groups)
        banks = len(self._positions)
        self._weight, self._element = Shape.cast(weight), Shape.cast(element)
        self._sum = signed(check_count("sum_bits", sum_bits))
        self._chunks = chunk_bounds(sum_bits)
        # (No wider than the sum: the bits above it would only wrap away.)
        self._product = signed(min(check_count("product_bits", product_bits), sum_bits))
        super().__init__({
            "w": In(data.ArrayLayout(weight, rows * banks)),
            "v": In(data.ArrayLayout(element, rows * banks)),
            **({"mask": In(1)} if mask else {}),
            "chains": Out(data.ArrayLayout(data.ArrayLayout(unsigned(sum_bits), len(groups)), rows)),
        })

    @property
    def rows(self) -> int:
        """Lanes (``rows``)."""
        return self._rows

    @property
    def groups(self) -> list[list[int]]:
        """The chains, consecutive banks each (``groups``)."""
        return self._groups

    @property
    def bank_positions(self) -> list[int]:
        """Each bank's chain position (:func:`chain_positions`); a PE per bank and lane."""
        return self._positions

    @property
    def weight(self) -> Shape:
        """Shape of a weight (``weight``)."""
        return self._weight

    @property
    def element(self) -> Shape:
        """Shape of a vector element (``element``)."""
        return self._element

    @property
    def product(self) -> Shape:
        """Shape of a PE's product register: signed, ``product_bits`` wide, at most ``sum_bits``."""
        return self._product

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """The chain sums' chunks, ``[lo, hi)`` bit ranges (:func:`~lstm_hw.generators.mvm_sum.chunk_bounds`)."""
        return self._chunks

    @property
    def positions(self) -> int:
        """Chain positions: the longest chain's DSP48E1s."""
        return max(self._positions) + 1

    @property
    def latency(self) -> int:
        """Cycles from a slot's position-0 elements to chunk 0 of its chain sums: operand and product registers,
        then a post-adder per position."""
        return 2 + self.positions

    def elaborate(self, platform):
        m = Module()
        mask_at = delay_taps(m, self.mask, range(self.positions), name="mask") if self._mask else None
        ends = []                                   # each chain's sum, chunk-skewed, lane by lane
        n_banks = len(self._positions)
        for lane in range(self._rows):
            for g, banks in enumerate(self._groups):
                prev = None
                for bank in banks:
                    v = self.v[lane * n_banks + bank]
                    if self._mask:
                        # Every element of the recurrent phase is h_{t-1}: zero on a first step.
                        masked = Signal(name=f"mask_l{lane}_b{bank}")
                        m.d.sync += masked.eq(mask_at[self._positions[bank]])
                        v = Mux(masked, 0, v)
                    w = Signal(self._weight, name=f"w_l{lane}_b{bank}")
                    a = Signal(self._weight, name=f"opw_l{lane}_b{bank}")
                    b = Signal(self._element, name=f"opv_l{lane}_b{bank}")
                    prod = Signal(self._product, name=f"prod_l{lane}_b{bank}")
                    chain = Signal(self._sum, name=f"chain_l{lane}_b{bank}")
                    m.d.sync += [
                        w.eq(self.w[lane * n_banks + bank]),
                        a.eq(w),
                        b.eq(v),
                        prod.eq(a * b),
                        chain.eq(prod if prev is None else prod + prev),
                    ]
                    prev = chain
                # Skew the sum: chunk j leaves j cycles after chunk 0.
                ends.extend(delay(m, prev[lo:hi], j, name=f"skew_l{lane}_t{g}_c{j}")
                            for j, (lo, hi) in enumerate(self._chunks))
        # (One assignment: Amaranth checks the drivers of every bit of its target per assignment.)
        m.d.comb += self.chains.eq(Cat(ends))
        return m
