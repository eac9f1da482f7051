"""Python driver of an lstm-hw accelerator on a Zynq board, through PYNQ and an AXI DMA.

``lstm-hw generate`` writes this file as ``<top>_driver.py`` with the
design's formats filled into ``DESIGN`` below (from ``<top>.json``). It runs
on the board's own Python (PYNQ images ship 3.10) and imports only NumPy,
``pynq`` and the standard library's ``time`` (and ``lstm_hw``, where it is
installed, only to pack weights that are not yet an image)::

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
- with ``hardware.interleave = n > 1``, each group of ``n`` sequences, their
  timesteps taking turns (a batch short of a whole group is completed with
  sequences of zeros, whose outputs are dropped);
- on a stateful design (``model.stateful``), each sequence of ``x`` is the
  next chunk of one stream, a transfer each, and the state carries from
  chunk to chunk and from call to call; ``reset_state()`` returns it to zero
  (through the AXI GPIO that drives the core's ``state_rst``), as does
  loading the driver.

On a design with ``hardware.weights = "ram"``, ``load_weights`` puts another
model into the same bitstream::

    acc.load_weights("b.bin")                  # an image: lstm-hw pack CONFIG -w b.npz -o b.bin
    acc.load_weights(image_bytes)              # the same, as bytes (Accelerator.pack_weights)
    acc.load_weights({"weight_ih_l0": ...})    # arrays by PyTorch's names, or a path to a .npz

An image is checked against the design before anything reaches the
hardware: its magic word, structure digest and length (``DESIGN["weights"]``).
It goes through the second AXI DMA (MM2S only) into ``s_axis_weights`` as one
transfer, ``tlast`` on its last word, and then ``weights_ok``, read through
an AXI GPIO, must be high. Weights that are not yet an image are packed with
``lstm_hw`` where it is installed (from the design's config, written below);
without it, pack them on a host with ``lstm-hw pack`` and load the ``.bin``.
A load clears a stateful design's state, as ``reset_state()`` does.
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


def check_image(data, weights):
    """The words (``uint32``) of image bytes ``data`` for the design's weight port ``weights``
    (``DESIGN["weights"]``), or ``ValueError`` in one line: not whole words, shorter than the header, another
    magic word, another structure's digest, another length."""
    data = bytes(data)
    if len(data) % 4:
        raise ValueError(f"the weight image is {len(data)} bytes, not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    header, digest = weights["header_words"], weights["digest"]
    if len(words) < header:
        raise ValueError(f"the weight image is {len(words)} words, shorter than its {header}-word header")
    if int(words[0]) != weights["magic"]:
        raise ValueError(f"not a weight image: its first word is 0x{int(words[0]):08x}, "
                         f"not the magic word 0x{weights['magic']:08x}")
    got = [int(w) for w in words[1:1 + len(digest)]]
    if got != list(digest):
        raise ValueError(f"the weight image is for another structure: digest {_hex(got)}, this design takes "
                         f"{_hex(digest)} (pack the weights with this design's config)")
    length = int(words[1 + len(digest)])
    if length != weights["words"]:
        raise ValueError(f"the weight image's header says {length} words, this design takes {weights['words']}")
    if len(words) != length:
        raise ValueError(f"the weight image is {len(words)} words, its header says {length}")
    return words


def _hex(words):
    return "".join(f"{w:08x}" for w in words)


def pack_weights(weights, config):
    """The image bytes of ``weights`` (a dict of arrays by PyTorch's names, or a model file's path) for
    ``config``, packed by ``lstm_hw``; without it, ``ImportError`` in one line."""
    try:
        import lstm_hw
    except ImportError as e:
        if e.name != "lstm_hw":     # installed, but something it needs is not: that error says what
            raise
        raise ImportError("packing weights needs lstm_hw, which is not installed here: pack them on a host "
                          "with `lstm-hw pack CONFIG -w WEIGHTS -o image.bin` and load the .bin") from None
    return lstm_hw.convert(weights, config).pack_weights()


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
        weights = DESIGN["weights"]
        self.weights_dma = getattr(self.overlay, weights["dma"]) if weights else None
        self.weights_gpio = getattr(self.overlay, weights["gpio"]) if weights else None
        if self.gpio is not None:
            self.reset_state()

    def reset_state(self):
        """Return a stateful design's h and c to zero: the next ``predict`` starts a new stream."""
        if self.gpio is None:
            raise RuntimeError(f"{DESIGN['top']} is not stateful (model.stateful): "
                               "every sequence already starts from zero state")
        self.gpio.write(0x0, 1)   # GPIO_DATA of channel 1 (PG144): state_rst high, then low again
        self.gpio.write(0x0, 0)

    @property
    def weights_ok(self):
        """Whether the core holds a complete, accepted model (its ``weights_ok``, through the AXI GPIO); always
        true for weights in ROM."""
        if self.weights_gpio is None:
            return True
        return bool(self.weights_gpio.read(0x0) & 1)   # GPIO_DATA of channel 1 (PG144), the input bit

    def load_weights(self, weights):
        """Load another model into a ``hardware.weights = "ram"`` design, for every later ``predict``.

        ``weights`` is an image's bytes (what ``lstm-hw pack`` writes, or ``Accelerator.pack_weights``), a path
        to such a ``.bin`` file, a dict of arrays by PyTorch's names, or a path to a model file (``.npz``).
        Bytes and ``.bin`` files need only NumPy; the others are packed with ``lstm_hw`` (the design's config),
        or refused with ``ImportError`` where it is not installed.

        The image must be this design's, checked before it is sent: a wrong magic word, structure digest or
        length raises ``ValueError`` and leaves the hardware as it was. It goes as one MM2S transfer of the
        weights DMA (``TimeoutError`` after ``timeout`` seconds), after which ``weights_ok`` must be high, or
        ``RuntimeError`` (the data stream then waits for a good image). The core finishes the transfer in
        flight with the old weights; a load clears a stateful design's state.
        """
        d = DESIGN["weights"]
        if d is None:
            raise RuntimeError(f"{DESIGN['top']} has its weights in ROM (hardware.weights = \"rom\"): "
                               "generate it with \"ram\" to load weights")
        if isinstance(weights, (bytes, bytearray, memoryview)):
            data = bytes(weights)
        elif isinstance(weights, dict):
            data = pack_weights(weights, d["config"])
        elif isinstance(weights, str) or hasattr(weights, "__fspath__"):
            path = weights.__fspath__() if hasattr(weights, "__fspath__") else weights
            if str(path).endswith(".bin"):
                with open(path, "rb") as f:
                    data = f.read()
            else:
                data = pack_weights(path, d["config"])
        else:
            raise TypeError("weights must be an image's bytes, a path to a .bin image or a model file, or a dict "
                            f"of arrays, not {type(weights).__name__}")
        words = check_image(data, d)
        if words.nbytes > DESIGN["max_transfer_bytes"]:
            raise ValueError(f"the weight image is {words.nbytes} bytes, more than the DMA's longest transfer "
                             f"of {DESIGN['max_transfer_bytes']} bytes")
        buf = self._allocate(shape=words.shape, dtype=np.uint32)
        try:
            buf[:] = words
            self.weights_dma.sendchannel.transfer(buf)
            self._wait(self.weights_dma.sendchannel, "MM2S (weights)")
        finally:
            free = getattr(buf, "freebuffer", None)
            if free is not None:
                free()
        if not self.weights_ok:
            raise RuntimeError("the core did not accept the weight image (weights_ok is low after the load): "
                               "the data stream waits until a good image is loaded")

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
        interleave = d["interleave"]
        if n % interleave:    # whole groups of interleaved sequences: zeros complete the last
            codes = np.concatenate([codes, np.zeros((interleave - n % interleave,) + codes.shape[1:], codes.dtype)])
        size = d["sequence_length"]
        if d["return_sequences"]:
            steps_out = steps
        else:
            steps_out = -(-steps // size) if size else 1
        group = 1                                   # sequences per transfer, in whole groups of interleave
        if size and steps % size == 0:
            group = max(1, min(d["max_transfer_bytes"] // self._bytes(interleave * steps, d["input"]),
                               d["max_transfer_bytes"] // self._bytes(interleave * steps_out, d["output"])))
        group *= interleave
        out = np.empty((len(codes), steps_out, d["output"]["elements"]))
        for k in range(0, len(codes), group):
            out[k:k + group] = self._run(codes[k:k + group], steps_out)
        return out[0] if single else out[:n]

    @staticmethod
    def _bytes(steps, port):
        """Bytes of ``steps`` timesteps on a stream port."""
        return steps * -(-port["elements"] // DESIGN["lanes"]) * DESIGN["lanes"] * port["width"] // 8

    def _run(self, codes, steps_out):
        """Sequences of codes ``(m, T, I)`` through the DMA in one transfer each way: their real outputs
        ``(m, steps_out, O)``. Interleaved, ``m`` is whole groups, each group's timesteps taking turns."""
        d, i, o = DESIGN, DESIGN["input"], DESIGN["output"]
        m, steps = codes.shape[:2]
        n = d["interleave"]
        codes = codes.reshape(m // n, n, steps, -1).swapaxes(1, 2)
        who = "a sequence" if n == 1 else f"a group of {n} sequences"
        for size, what in ((self._bytes(m * steps, i), "input"), (self._bytes(m * steps_out, o), "output")):
            if size > d["max_transfer_bytes"]:
                raise ValueError(f"{who}'s {what} takes {size} bytes, more than the DMA's longest "
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
        out = np.ldexp(words.astype(np.float64), -o["frac"]).reshape(m // n, steps_out, n, -1)
        return out.swapaxes(1, 2).reshape(m, steps_out, -1)

    def _wait(self, channel, name):
        """Wait for ``channel`` to go idle, at most ``timeout`` seconds; then let PYNQ finish the transfer."""
        deadline = time.monotonic() + self.timeout
        while not channel.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the DMA's {name} channel did not finish within {self.timeout:g} s: "
                                   "is the bitstream loaded, and does the core get its clock and reset?")
        channel.wait()
