"""The top level: stacked layers behind AXI4-Stream ports named for Vivado."""

from dataclasses import replace

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .beats import PORT_FLAGS
from .framer import Framer
from .head import DenseHead
from .image import WORD_BITS, header_words, image_words, structure_digest
from .layer import LSTMLayer
from .weight_loader import WeightLoader
from ..model.design import Design

__all__ = ["LSTMTop", "weight_image", "mark_built"]


def weight_image(design: Design):
    """``design``'s weights as an image (:meth:`LSTMTop.weight_image`), from a top built for its tables only."""
    top = LSTMTop(design=design)
    try:
        return top.weight_image()
    finally:
        mark_built(top)


def mark_built(obj) -> list[wiring.Component]:
    """Tell Amaranth that ``obj`` and every elaboratable reachable from it (through attributes, lists, tuples
    and dicts) were built on purpose, not to be elaborated: Amaranth warns of an elaboratable it never
    elaborates otherwise. Returns the components (:class:`~amaranth.lib.wiring.Component`) among them, each
    once, in the order a depth-first walk reaches them."""
    seen, out, stack = set(), [], [obj]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Elaboratable):
            obj._MustUse__used = True
            if isinstance(obj, wiring.Component):
                out.append(obj)
            children = vars(obj).values()
        elif isinstance(obj, (list, tuple)):
            children = obj
        elif isinstance(obj, dict):
            children = obj.values()
        else:
            continue
        stack.extend(c for c in children if isinstance(c, (Elaboratable, list, tuple, dict)))
    return out


class LSTMTop(wiring.Component):
    """The accelerator: ``num_layers`` :class:`LSTMLayer` in a chain, then the optional :class:`DenseHead`.

    This is the only place where Vivado naming appears. Vivado infers an
    AXI4-Stream slave ``s_axis`` and master ``m_axis`` from the port names,
    and the clock ``aclk`` with active-low synchronous reset ``aresetn``.

    Stream contract: ``lanes = hardware.io_lanes`` elements per beat in the
    activation format, each sign-extended to ``8 * ceil(bits / 8)`` bits and
    packed little end first (element ``e`` of a beat in bits ``e * w ..``), so
    ``tdata_width = lanes * 8 * ceil(bits / 8)``. Each timestep starts a new
    beat; its last beat may be partial, with the unused input lanes ignored
    and the unused output lanes zero. Input order
    ``x_0[0..I-1], x_1[0..I-1], ...``; ``s_axis_tlast`` on the last beat of
    a transfer's last timestep. While ``aresetn`` is low, ``m_axis_tvalid``
    and ``s_axis_tready`` are low (combinationally, so also at the first edge
    of a reset asserted mid-transfer), and a sequence cut by reset is dropped.
    Output: the last layer's ``h_t`` elements, in
    the same order and packing (only each sequence's last when
    ``return_sequences`` is false), ``m_axis_tlast`` on the last beat of the transfer's last output
    timestep. With a head (``model.output_size = O > 0``) the output is instead
    ``y_t = fc(h_t)`` for each of those ``h_t``: ``O`` elements per timestep in
    ``quant.output``, sign-extended to ``8 * ceil(bits / 8)``.

    Framing (:class:`Framer`): a transfer ends a sequence. With
    ``model.sequence_length = T > 0``, so do every ``T`` steps, so one
    transfer may hold a batch of sequences; every sequence starts from
    ``h = c = 0``, and transfers may follow back to back. With
    ``model.stateful``, ``h`` and ``c`` instead carry from each transfer
    into the next, and only reset and ``state_rst`` (high for a cycle or
    more between transfers) return them to zero. A transfer that ends
    inside a timestep has that step completed with zero elements.

    Weights (``hardware.weights = "ram"``): the weight, index and bias
    memories are loadable through ``s_axis_weights`` (:class:`WeightLoader`,
    an image of :mod:`.image`): a load holds ``s_axis_tready`` low from the
    end of the transfer under way until the image's last word, and the data
    stream runs on while ``weights_ok``. A load clears a stateful design's
    state.

    Latency and throughput: ``Design``-level figures in the generated metadata
    (``latency_cycles``, ``cycles_per_timestep``); layers work concurrently on
    successive timesteps.

    Parameters
    ----------
    design : Design
    rom_files : bool
        Each weight ROM a module of its own, ``<top>__<path>__rom_p<j>``, that loads its ``.mem``
        file (:meth:`rom_files`): the form :mod:`lstm_hw.emit.files` writes. Without it (the default)
        they are Amaranth memories, as Amaranth's simulator needs them.

    Members
    -------
    aclk, aresetn : In(1)
    s_axis_tdata : In(tdata_width); s_axis_tvalid, s_axis_tlast : In(1); s_axis_tready : Out(1)
    m_axis_tdata : Out(output_tdata_width); m_axis_tvalid, m_axis_tlast : Out(1); m_axis_tready : In(1)
    state_rst : In(1), only with ``model.stateful``
    s_axis_weights_tdata : In(32); s_axis_weights_tvalid, s_axis_weights_tlast : In(1);
    s_axis_weights_tready, weights_ok : Out(1), only with ``hardware.weights = "ram"``
    """

    def __init__(self, *, design: Design, rom_files: bool = False):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {design!r}")
        self._design = design
        top = design.config.hardware.top
        n = len(design.layers)
        emit_all = design.config.model.return_sequences

        def files(path):  # the ROMs' modules and .mem files are named after the MVM's path, as its own module is
            return f"{top}__{path}__mvm" if rom_files else None

        self._head = DenseHead(design=design, rom_files=files("head")) if design.head is not None else None
        # Each stream carries the step flags its consumers need: from the output port (tlast alone) back.
        flags, layers = PORT_FLAGS, []
        for i in reversed(range(n)):
            layers.insert(0, LSTMLayer(design=design, plan=design.layers[i], emit_all=emit_all or i < n - 1,
                                       rom_files=files(f"layer{i}"), flags=flags))
            flags = layers[0].in_flags
        self._layers = layers
        model = design.config.model
        self._framer = Framer(shape=design.io_format.shape(), lanes=design.lanes, elements=model.input_size,
                              sequence_length=model.sequence_length, stateful=model.stateful, flags=flags,
                              interleave=design.config.hardware.interleave)
        self._loader = None
        if design.config.hardware.weights == "ram":
            self._loader = WeightLoader(memories=self.loadable_memories(), stateful=model.stateful,
                                        header=header_words(self.structure_digest(), self.loadable_memories()))
        weight_port = {
            "s_axis_weights_tdata": In(WORD_BITS), "s_axis_weights_tvalid": In(1), "s_axis_weights_tready": Out(1),
            "s_axis_weights_tlast": In(1), "weights_ok": Out(1),
        } if self._loader is not None else {}
        super().__init__({
            "aclk": In(1), "aresetn": In(1),
            "s_axis_tdata": In(design.tdata_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(design.output_tdata_width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            **({"state_rst": In(1)} if model.stateful else {}),
            **weight_port,
        })

    @property
    def design(self) -> Design:
        return self._design

    @property
    def layers(self) -> tuple[LSTMLayer, ...]:
        return tuple(self._layers)

    @property
    def head(self) -> DenseHead | None:
        return self._head

    def _stages(self) -> list[tuple[str, object]]:
        """Each stage holding a matrix unit, by its path: the layers, then the head."""
        return [(f"layer{n}", layer) for n, layer in enumerate(self._layers)] + \
            ([("head", self._head)] if self._head is not None else [])

    def loadable_memories(self) -> list:
        """The memories a weight image fills, in image order (:mod:`.image`), each path from the top."""
        return [replace(mem, path=f"{path}.{mem.path}") for path, stage in self._stages()
                for mem in stage.mvm.loadable_memories()]

    def structure_digest(self) -> tuple[int, ...]:
        """The digest of this hardware structure, which an image's header carries (:func:`.image.structure_digest`)."""
        return structure_digest(self._design.config, self.loadable_memories(), self._design.tables)

    def weight_image(self):
        """The image of this design's weights, as ``uint32`` words (:func:`.image.image_words`)."""
        contents = [(replace(mem, path=f"{path}.{mem.path}"), entries) for path, stage in self._stages()
                    for mem, entries in stage.mvm.loadable_contents()]
        return image_words(self.structure_digest(), contents)

    def rom_files(self) -> dict[str, str]:
        """With ``rom_files``: every weight ROM's module (``.v``, :func:`~lstm_hw.generators.mvm.rom_module`),
        then every one's contents (``.mem``), layer by layer and then the head; else nothing."""
        stages = self._layers + ([self._head] if self._head is not None else [])
        modules, mems = {}, {}
        for stage in stages:
            v, mem = stage.mvm.rom_files()
            modules.update(v)
            mems.update(mem)
        return {**modules, **mems}

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.framer = framer = self._framer
        for n, layer in enumerate(self._layers):
            m.submodules[f"layer{n}"] = layer
        stages = self._layers
        if self._head is not None:
            m.submodules.head = self._head
            stages = stages + [self._head]
        wiring.connect(m, framer.o, stages[0].i)
        for a, b in zip(stages, stages[1:]):
            wiring.connect(m, a.o, b.i)

        d = self._design
        bits, lanes = d.io_format.bits, d.lanes
        w_in, w_out = d.tdata_width // lanes, d.output_tdata_width // lanes
        last = stages[-1]
        for e in range(lanes):
            out = Signal(d.output_format.shape(), name=f"out{e}")
            m.d.comb += [
                framer.i.payload.data[e].eq(self.s_axis_tdata[e * w_in:e * w_in + bits]),
                out.eq(last.o.payload.data[e]),
                self.m_axis_tdata[e * w_out:(e + 1) * w_out].eq(out),  # sign-extends: out is signed
            ]
        rst = self.state_rst if "state_rst" in self.signature.members else 0
        tvalid, tready = self.s_axis_tvalid, framer.i.ready & self.aresetn
        if self._loader is not None:           # the data stream runs while the loader lets it
            m.submodules.weights = loader = self._loader
            tvalid, tready = tvalid & loader.run, tready & loader.run
            if "clear" in loader.signature.members:
                rst = rst | loader.clear
            m.d.comb += [
                loader.i.payload.data.eq(self.s_axis_weights_tdata),
                loader.i.payload.last.eq(self.s_axis_weights_tlast),
                loader.i.valid.eq(self.s_axis_weights_tvalid),
                self.s_axis_weights_tready.eq(loader.i.ready & self.aresetn),
                self.weights_ok.eq(loader.ok),
                loader.beat.valid.eq(self.s_axis_tvalid & self.s_axis_tready),
                loader.beat.payload.last.eq(self.s_axis_tlast),
                loader.done.eq(self.m_axis_tvalid & self.m_axis_tready & self.m_axis_tlast),
            ]
            fields = 0
            for _, stage in self._stages():     # each stage's fields, in image order, and their data
                load, n = stage.load, len(stage.load.en)
                m.d.comb += [load.addr.eq(loader.write.addr), load.en.eq(loader.write.en[fields:fields + n]),
                             load.held.eq(loader.write.held)]
                m.d.comb += [load.data[name].eq(loader.write.data[name]) for name, _ in load.data.shape()]
                fields += n
        m.d.comb += [
            framer.i.payload.last.eq(self.s_axis_tlast),
            framer.i.valid.eq(tvalid),
            framer.state_rst.eq(rst),
            # Gated by aresetn so that neither port handshakes while reset is
            # held, including the first edge of a reset that lands mid-transfer.
            self.s_axis_tready.eq(tready),
            self.m_axis_tlast.eq(last.o.payload.flags.tlast),
            self.m_axis_tvalid.eq(last.o.valid & self.aresetn),
            last.o.ready.eq(self.m_axis_tready),
        ]
        return m
