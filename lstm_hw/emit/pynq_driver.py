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
``lstm_hw.Accelerator.predict`` does. The MM2S channel raises ``tlast`` at
the end of a transfer only, and S2MM ends one at ``tlast``, so:

- with ``model.sequence_length = T`` and sequences of a multiple of ``T``
  steps, a batch goes in as few transfers each way as the DMA's length
  registers allow (the core starts a sequence every ``T`` steps);
- otherwise each sequence is a transfer of its own;
- on a stateful design (``model.stateful``), each sequence of ``x`` is the
  next chunk of one stream, a transfer each, and the state carries from
  chunk to chunk and from call to call; ``reset_state()`` returns it to zero
  (through the AXI GPIO that drives the core's ``state_rst``), as does
  loading the driver.
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
        self.gpio = getattr(self.overlay, DESIGN["gpio"]) if DESIGN["stateful"] else None
        if self.gpio is not None:
            self.reset_state()

    def reset_state(self):
        """Return a stateful design's h and c to zero: the next ``predict`` starts a new stream."""
        if self.gpio is None:
            raise RuntimeError(f"{DESIGN['top']} is not stateful (model.stateful): "
                               "every sequence already starts from zero state")
        self.gpio.write(0x0, 1)   # GPIO_DATA of channel 1 (PG144): state_rst high, then low again
        self.gpio.write(0x0, 0)

    def predict(self, x):
        """Real outputs of real ``x``: ``(T', O)`` for one sequence ``(T, I)``, ``(N, T', O)`` for ``(N, T, I)``.

        ``T'`` is ``T``, or with only each sequence's last output returned, 1 (with ``sequence_length``,
        one per ``sequence_length`` steps begun).
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
        n, steps = x.shape[:2]
        size = d["sequence_length"]
        if d["return_sequences"]:
            steps_out = steps
        else:
            steps_out = -(-steps // size) if size else 1
        group = 1                                   # sequences per transfer
        if size and steps % size == 0:
            group = max(1, min(d["max_transfer_bytes"] // self._bytes(steps, d["input"]),
                               d["max_transfer_bytes"] // self._bytes(steps_out, d["output"])))
        out = np.empty((n, steps_out, d["output"]["elements"]))
        for k in range(0, n, group):
            out[k:k + group] = self._run(codes[k:k + group], steps_out)
        return out[0] if single else out

    @staticmethod
    def _bytes(steps, port):
        """Bytes of ``steps`` timesteps on a stream port."""
        return steps * -(-port["elements"] // DESIGN["lanes"]) * DESIGN["lanes"] * port["width"] // 8

    def _run(self, codes, steps_out):
        """Sequences of codes ``(m, T, I)`` through the DMA in one transfer each way: their real outputs
        ``(m, steps_out, O)``."""
        d, i, o = DESIGN, DESIGN["input"], DESIGN["output"]
        m, steps = codes.shape[:2]
        for size, what in ((self._bytes(m * steps, i), "input"), (self._bytes(m * steps_out, o), "output")):
            if size > d["max_transfer_bytes"]:
                raise ValueError(f"a sequence's {what} takes {size} bytes, more than the DMA's longest "
                                 f"transfer of {d['max_transfer_bytes']} bytes")
        sent = pack(codes.reshape(m * steps, -1), d["lanes"], i["width"])
        out_beats = m * steps_out * -(-o["elements"] // d["lanes"])
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
        return np.ldexp(words.astype(np.float64), -o["frac"]).reshape(m, steps_out, -1)

    def _wait(self, channel, name):
        """Wait for ``channel`` to go idle, at most ``timeout`` seconds; then let PYNQ finish the transfer."""
        deadline = time.monotonic() + self.timeout
        while not channel.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the DMA's {name} channel did not finish within {self.timeout:g} s: "
                                   "is the bitstream loaded, and does the core get its clock and reset?")
        channel.wait()
