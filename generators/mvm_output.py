"""The output stage of :class:`~lstm_hw.generators.mvm.SparseMatVec`: a pass's sums to pre-activations, or back."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixed import check_count, counter_shape, requantize
from .mvm_sum import sum_layout
from ..numerics.fixed import Fixed

__all__ = ["preact_layout", "OutputStage"]


def preact_layout(*, rows: int, passes: int, preact: Fixed) -> data.StructLayout:
    """A pass's pre-activations on ``o``: ``pass`` and ``z``, one per row lane in ``preact``."""
    return data.StructLayout({"pass": counter_shape(passes), "z": data.ArrayLayout(preact.shape(), rows)})


class OutputStage(wiring.Component):
    """A pass's exact sums rounded and saturated to the pre-activation format, or written back as partial sums.

    The rounding offset rides in the sums (it is in the accumulators' start
    values), so rounding drops bits (``"truncate"``) and saturation tests the
    top bits (:func:`~lstm_hw.generators.fixed.requantize`): a few LUTs before
    the ``o`` register. With ``writeback``, the sums of the input phase
    (``phase`` low) go back to the accumulators' partial-sum memories instead
    of to ``o``.

    Latency: ``o`` is valid :attr:`latency` cycle after its ``sum``; ``writeback``
    is high in the cycle of its ``sum`` (combinational). Throughput: a pass
    every cycle. No backpressure: every port is always ready, and ``o``'s
    payload follows ``sum``'s in every cycle, valid or not.

    Parameters
    ----------
    rows : int
        Lanes.
    passes : int
        Passes (the width of ``pass``).
    width : int
        Width of a sum.
    frac : int
        Fraction bits of a sum.
    preact : Fixed
        The pre-activation format.
    writeback : bool
        Sums of the input phase go to ``writeback``, not ``o``.

    Members
    -------
    sum : In(stream.Signature(sum_layout(width=width, phase=writeback), always_ready=True))
        A pass's sums (:class:`~lstm_hw.generators.mvm_sum.Accumulator`'s ``sum``).
    o : Out(stream.Signature(preact_layout(...), always_ready=True))
        The pass's pre-activations.
    writeback : Out(1)
        This cycle's ``sum`` is the input phase's: the accumulator keeps it (only with ``writeback``).
    """

    def __init__(self, *, rows: int, passes: int, width: int, frac: int, preact: Fixed, writeback: bool):
        if not isinstance(preact, Fixed):
            raise TypeError(f"preact must be a Fixed, not {preact!r}")
        if not isinstance(writeback, bool):
            raise TypeError(f"writeback must be a bool, not {writeback!r}")
        if isinstance(frac, bool) or not isinstance(frac, int):
            raise TypeError(f"frac must be an integer, not {frac!r}")
        self._rows = check_count("rows", rows)
        self._frac, self._preact, self._writeback = frac, preact, writeback
        sums = sum_layout(rows=rows, passes=check_count("passes", passes), width=check_count("width", width),
                          phase=writeback)
        super().__init__({
            "sum": In(stream.Signature(sums, always_ready=True)),
            "o": Out(stream.Signature(preact_layout(rows=rows, passes=passes, preact=preact), always_ready=True)),
            **({"writeback": Out(1)} if writeback else {}),
        })

    @property
    def latency(self) -> int:
        """Cycles from a ``sum`` to its ``o``: the output register."""
        return 1

    def elaborate(self, platform):
        m = Module()
        total = self.sum.payload
        for lane in range(self._rows):
            # The offset is in the sum already: "truncate" just drops the bits.
            m.d.sync += self.o.payload.z[lane].eq(requantize(total.z[lane], self._frac, self._preact, "truncate"))
        m.d.sync += self.o.payload["pass"].eq(total["pass"])
        if self._writeback:
            m.d.comb += self.writeback.eq(self.sum.valid & ~total.phase)
            m.d.sync += self.o.valid.eq(self.sum.valid & total.phase)
        else:
            m.d.sync += self.o.valid.eq(self.sum.valid)
        return m
