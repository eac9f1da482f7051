"""Python driver of an lstm-hw accelerator on a Zynq board, through PYNQ and an AXI DMA.

``lstm-hw generate`` writes this file as ``<top>_driver.py`` with the
design's formats filled into ``DESIGN`` below (from ``<top>.json``). It runs
on the board's own Python (PYNQ images ship 3.10) and imports only NumPy,
``pynq`` and the standard library's ``time``::

    from lstm_top_driver import LstmAccelerator
    acc = LstmAccelerator("vivado_out/system.bit")    # pynq.Overlay underneath
    y = acc.predict(x)                                 # real x (T, I) or (N, T, I)

``predict`` quantizes ``x`` as lstm-hw's golden model does (nearest code,
ties up, saturated), packs it into the stream contract (``lanes`` elements a
beat, each sign-extended to whole bytes, little end first, a timestep
starting a new beat), sends it with the DMA's MM2S channel, receives the
output words with S2MM, and returns their real values, as
``lstm_hw.Accelerator.predict`` does. One transfer each way per sequence:
``tlast`` ends a sequence, and the S2MM channel ends a transfer at ``tlast``.
"""

import time

import numpy as np

# -- design: written by lstm-hw generate from <top>.json --
DESIGN = None
# -- end of design --


def quantize(x, bits, frac):
    """Codes of real ``x``: nearest, ties up, saturated to ``bits`` (lstm-hw's ``quantize_real``)."""
    r = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError("cannot quantize NaN or infinite values")
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.ldexp(r, frac)
        low = np.floor(scaled)
        code = low + (scaled - low >= 0.5)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(code, lo, hi).astype(np.int64)


def pack(codes, lanes, width):
    """Stream bytes of element codes ``(steps, elements)``: one row of ``lanes * width / 8`` bytes per beat.

    A timestep takes ``ceil(elements / lanes)`` beats; the unused lanes of
    its last beat are zero.
    """
    codes = np.asarray(codes, dtype=np.int64)
    steps, elements = codes.shape
    beats = -(-elements // lanes)
    padded = np.zeros((steps, beats * lanes), dtype="<i8")
    padded[:, :elements] = codes
    octets = width // 8
    # Two's complement bytes, cut to the element's width: the sign extension of the code.
    raw = padded.view(np.uint8).reshape(steps * beats, lanes, 8)[:, :, :octets]
    return np.ascontiguousarray(raw.reshape(steps * beats, lanes * octets))


def unpack(raw, lanes, width, elements):
    """Element codes ``(steps, elements)`` of stream bytes, one row per beat (the inverse of :func:`pack`)."""
    octets = width // 8
    beats = -(-elements // lanes)
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1, beats * lanes, octets)   # (steps, lanes per step, octets)
    value = np.zeros(raw.shape[:2], dtype=np.int64)
    for k in range(octets):
        value |= raw[:, :, k].astype(np.int64) << (8 * k)
    value -= (value >> (width - 1)) << width
    return value[:, :elements]


class LstmAccelerator:
    """The accelerator of ``bitfile`` (``.bit`` with its ``.hwh`` beside it).

    Parameters
    ----------
    bitfile : str
        The bitstream, as ``pynq.Overlay`` takes it.
    timeout : float
        Seconds to wait for each DMA transfer before raising ``TimeoutError``.
    """

    def __init__(self, bitfile, timeout=10.0):
        if DESIGN is None:
            raise RuntimeError("this is the driver's template: use the <top>_driver.py that lstm-hw generate wrote")
        from pynq import Overlay, allocate
        self._allocate = allocate
        self.timeout = float(timeout)
        self.overlay = Overlay(bitfile)
        self.dma = getattr(self.overlay, DESIGN["dma"])   # the block design's name for the AXI DMA

    def predict(self, x):
        """Real outputs of real ``x``: ``(T', O)`` for one sequence ``(T, I)``, ``(N, T', O)`` for ``(N, T, I)``.

        ``T'`` is ``T``, or 1 when the design returns only each sequence's last output.
        """
        d = DESIGN
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != d["input"]["elements"] or x.shape[1] < 1:
            raise ValueError(f"x must be (T, {d['input']['elements']}) or (N, T, {d['input']['elements']}) "
                             f"with T >= 1, got shape {x.shape}")
        codes = quantize(x, d["input"]["bits"], d["input"]["frac"])
        steps_out = x.shape[1] if d["return_sequences"] else 1
        out = np.empty((x.shape[0], steps_out, d["output"]["elements"]))
        for n in range(x.shape[0]):
            out[n] = self._run(codes[n], steps_out)
        return out[0] if single else out

    def _run(self, codes, steps_out):
        """One sequence of codes through the DMA: its real outputs ``(steps_out, O)``."""
        d, i, o = DESIGN, DESIGN["input"], DESIGN["output"]
        sent = pack(codes, d["lanes"], i["width"])
        out_beats = steps_out * -(-o["elements"] // d["lanes"])
        ibuf = self._allocate(shape=sent.shape, dtype=np.uint8)
        obuf = self._allocate(shape=(out_beats, d["lanes"] * o["width"] // 8), dtype=np.uint8)
        try:
            ibuf[:] = sent
            obuf[:] = 0
            self.dma.recvchannel.transfer(obuf)
            self.dma.sendchannel.transfer(ibuf)
            self._wait(self.dma.sendchannel, "MM2S (input)")
            self._wait(self.dma.recvchannel, "S2MM (output)")
            words = unpack(np.array(obuf), d["lanes"], o["width"], o["elements"])
        finally:
            for buf in (ibuf, obuf):
                free = getattr(buf, "freebuffer", None)
                if free is not None:
                    free()
        return np.ldexp(words.astype(np.float64), -o["frac"])

    def _wait(self, channel, name):
        """Wait for ``channel`` to go idle, at most ``timeout`` seconds; then let PYNQ finish the transfer."""
        deadline = time.monotonic() + self.timeout
        while not channel.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the DMA's {name} channel did not finish within {self.timeout:g} s: "
                                   "is the bitstream loaded, and does the core get its clock and reset?")
        channel.wait()
