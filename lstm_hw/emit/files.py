"""Verilog, metadata, constraints and Vivado scripts for a design, written all or nothing.

The XDC and TCL files are filled in from templates in ``constraints/``
(``@key@`` placeholders) and the board table of :mod:`lstm_hw.config.parts`.
On a Zynq board, ``system.tcl`` builds the whole system (processing system,
AXI DMA, the core) from the plan of :func:`system_plan`.

Output is a pure function of (config, weights): Verilog is emitted without
source locations by Amaranth's builtin Yosys, and JSON keys keep a fixed order.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import __version__
from ..config.parts import DMA_LENGTH_BITS, FCLK_TOLERANCE, Board, FabricClock, board, fabric_clock, parse_part
from ..errors import ConfigError, UsageError
from ..model.design import Design
from .driver import driver_text
from .verilog import is_data_file, is_module_file, split_modules

__all__ = ["build_top", "weight_image_bytes", "verilog_text", "verilog_files", "metadata", "design_files",
           "vivado_files", "output_names",
           "system_plan", "SystemPlan", "SYSTEM_IP", "write_files", "check_output_dir", "previous_sources"]


def build_top(design: Design):
    """The top as Verilog is emitted from it: each weight ROM a module of its own that loads a ``.mem`` file."""
    from ..generators.top import LSTMTop
    return LSTMTop(design=design, rom_files=True)


def verilog_text(top, name: str) -> str:
    """Amaranth's Verilog for ``top``: every module in one text, as Amaranth emits it."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"  # a system Yosys would change the output
    from amaranth.back import verilog
    return verilog.convert(top, name=name, emit_src=False)


def verilog_files(top, name: str) -> dict[str, str]:
    """``{file: text}``: one module per file, ``<name>.v`` first, without dead alias wires; then each weight
    ROM's module (``<name>__<path>__rom_p<j>.v``) and, last, each one's ``$readmemh`` contents (``.mem``),
    written straight from the weights (:meth:`~lstm_hw.generators.top.LSTMTop.rom_files`)."""
    return {**split_modules(verilog_text(top, name), name), **top.rom_files()}


def _latency(top) -> int:
    """Cycles from the last input beat of ``x_t`` to the first output beat of ``h_t`` (or ``y_t``), idle pipeline."""
    layers = top.layers
    if top.head is not None:  # the head starts once the last layer has passed it all of h_t
        return sum(1 + layer.last_output_cycles for layer in layers) + 1 + top.head.first_output_cycles
    through = sum(1 + layer.last_output_cycles for layer in layers[:-1])
    return through + 1 + layers[-1].first_output_cycles


def _per_step(cycles: int, interleave: int):
    """Cycles per timestep of one of ``interleave`` sequences taking turns, of ``cycles`` for all of them:
    an integer where they divide evenly, else rounded to three decimals."""
    return cycles // interleave if cycles % interleave == 0 else round(cycles / interleave, 3)


def _head_metadata(top) -> dict | None:
    if top.head is None:
        return None
    p = top.design.head
    return {
        "input_size": p.input_size, "output_size": p.outputs, "banks": p.banks, "bank_width": p.bank_width,
        "weights_per_bank": p.k, "macs": p.banks * p.rows, "nnz": p.nnz, "stored_weights": p.stored, "pe_utilisation": round(p.nnz / p.stored, 4),
        "ideal_cycles_per_timestep": round(p.nnz / (p.banks * p.rows), 3),
        "issue_cycles_per_timestep": p.issue_cycles,
        "compute_cycles_per_timestep": top.head.step_cycles,
        "stream_cycles_per_timestep": top.head.stream_cycles,
        "sum_bits": top.head.mvm.sum_bits,
    }


def _weights_metadata(top) -> dict:
    """Where the weights live: ROMs, or memories loadable through ``s_axis_weights`` with the image they take."""
    from ..generators.image import HEADER_WORDS, MAGIC, WORD_BITS, header_words
    from ..generators.weight_loader import LOAD_OVERHEAD_CYCLES
    if top.design.config.hardware.weights == "rom":
        return {"memory": "rom"}
    memories, digest = top.loadable_memories(), top.structure_digest()
    words = header_words(digest, memories)[-1]
    return {"memory": "ram", "port": "s_axis_weights", "word_bits": WORD_BITS,
            "image": {"magic": MAGIC, "digest": list(digest), "header_words": HEADER_WORDS, "words": words,
                      "memories": [mem.describe() for mem in memories]},
            "load_cycles": words + LOAD_OVERHEAD_CYCLES}


def weight_image_bytes(design: Design) -> bytes:
    """``design``'s weights as an image (``lstm-hw pack``): little-endian 32-bit words (:mod:`~lstm_hw.generators.image`).

    Only for ``hardware.weights = "ram"``; a ROM design refuses with a :class:`~lstm_hw.errors.ConfigError`.
    """
    from ..generators.image import image_bytes
    from ..generators.top import weight_image
    if design.config.hardware.weights != "ram":
        raise ConfigError("hardware.weights", 'is "rom": the weights are fixed when the Verilog is generated; '
                                              'set it to "ram" for a design that loads images')
    return image_bytes(weight_image(design))


def metadata(design: Design, top, sources: list[str]) -> dict:
    c = design.config
    fmt, out_fmt = design.io_format, design.output_format
    name = c.hardware.top
    constraints, scripts = output_names(c)
    per_layer, n = [], c.hardware.interleave
    for layer in top.layers:
        p = layer.plan
        per_layer.append({
            "input_size": p.input_size, "hidden_size": p.hidden, "banks": p.banks, "bank_width": p.bank_width,
            "weights_per_bank": p.k, "input_weights_per_bank": p.k_x, "recurrent_weights_per_bank": p.k_h,
            "rows": p.rows, "passes": p.passes, "macs": p.banks * p.rows,
            "nnz": p.nnz, "stored_weights": p.stored, "pe_utilisation": round(p.nnz / p.stored, 4),
            "ideal_cycles_per_timestep": round(p.nnz / (p.banks * p.rows), 3),
            "issue_cycles_per_timestep": p.issue_cycles,
            "input_phase_cycles": p.passes * p.k_x, "recurrent_phase_cycles": p.passes * p.k_h,
            "tail_cycles": layer.tail_cycles, "tail_wait_cycles": layer.tail_wait_cycles,
            "phase_gap_cycles": layer.phase_gap_cycles,
            "compute_cycles_per_timestep": _per_step(layer.group_cycles, n),
            "stream_cycles_per_timestep": layer.stream_cycles,
            "cycles_per_group": max(layer.group_cycles, n * layer.stream_cycles),
            "sum_bits": layer.mvm.sum_bits,
        })
    head = _head_metadata(top)
    if head:   # the head has no recurrence: the sequences' steps simply follow each other
        head["cycles_per_group"] = n * max(head["compute_cycles_per_timestep"], head["stream_cycles_per_timestep"])
    stages = per_layer + ([head] if head else [])
    for x in stages:   # a stage's timestep takes the longer of its compute and its streams
        x["cycles_per_timestep"] = _per_step(x["cycles_per_group"], n)
    meta = {
        "generator": f"lstm-hw {__version__}",
        "top": name,
        "part": c.hardware.part,
        "clock_mhz": c.hardware.clock_mhz,
        "sources": sources,
        "constraints": constraints,
        "scripts": scripts,
        "input": {"bits": fmt.bits, "frac": fmt.frac, "tdata_width": design.tdata_width, "lanes": design.lanes,
                  "elements_per_timestep": c.model.input_size},
        "output": {"bits": out_fmt.bits, "frac": out_fmt.frac, "tdata_width": design.output_tdata_width,
                   "lanes": design.lanes, "elements_per_timestep": design.output_size,
                   "return_sequences": c.model.return_sequences},
        # How transfers become sequences; a stateful design has the state_rst port.
        "framing": {"sequence_length": c.model.sequence_length, "stateful": c.model.stateful},
        "macs": sum(x["macs"] for x in stages),
        # A timestep of one of the interleaved sequences (on average), and of all of them.
        "interleave": n,
        "cycles_per_timestep": _per_step(max(x["cycles_per_group"] for x in stages), n),
        "cycles_per_group": max(x["cycles_per_group"] for x in stages),
        "ideal_cycles_per_timestep": max(x["ideal_cycles_per_timestep"] for x in stages),
        "latency_cycles": _latency(top),
        "layers": per_layer,
        "head": head,
        "pruning": {"weights": "given" if design.weights_given else "seeded",
                    "matrices": [m.to_dict() for m in design.pruning]},
        "activation": design.tables.describe(),
        "weights": _weights_metadata(top),
        "config": c.to_dict(),
    }
    if c.hardware.macs:   # what the MAC budget chose, and why
        from ..config.budget import choose_mapping
        chosen = choose_mapping(c.model, c.quant, c.sparsity, c.activation, c.hardware)
        meta["mapping"] = {**chosen.to_dict(), "reason": chosen.reason()}
    if head is None:
        del meta["head"]  # no "head" key at all without a head
    system = system_plan(c)
    if system is not None:
        meta["system"] = system.to_dict()
    return meta


def design_files(design: Design) -> dict[str, bytes]:
    """Every output file, by name, fully rendered in memory."""
    top = build_top(design)
    name = design.config.hardware.top
    sources = verilog_files(top, name)
    meta = metadata(design, top, list(sources))
    texts = {
        **sources,
        f"{name}.json": json.dumps(meta, indent=2) + "\n",
        **vivado_files(design.config, meta),
    }
    if "system" in meta:
        texts[meta["system"]["driver"]] = driver_text(meta)
    assert list(texts) == meta["sources"] + [f"{name}.json"] + meta["constraints"] + meta["scripts"]
    return {file: text.encode() for file, text in texts.items()}


# -- Vivado hand-off: constraints and scripts ------------------------------------------

def output_names(config) -> tuple[list[str], list[str]]:
    """(constraints, scripts) that ``design_files`` writes besides the Verilog and the metadata."""
    h = config.hardware
    constraints = [f"{h.top}.xdc"] + ([f"{h.top}_board.xdc"] if h.board else [])
    system = ["system.tcl", f"{h.top}_driver.py"] if system_plan(config) is not None else []
    return constraints, ["build.tcl", "package_ip.tcl", *system]


def _template(file: str, **values: str) -> str:
    """A template from ``constraints/`` with every ``@key@`` replaced (TCL and XDC keep their braces and $)."""
    text = resources.files("lstm_hw.constraints").joinpath(file).read_text("utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.search(r"@[a-z_]+@", text)
    assert left is None, f"{file}: {left.group()} not filled in"
    return text


def _tcl_word(text: str) -> str:
    """``text`` as one TCL word; generated names never need quoting, so anything else is a bug."""
    assert re.fullmatch(r"[A-Za-z0-9_.:\-]+", text), text
    return text


_READ = {".v": "read_verilog", ".sv": "read_verilog -sv", ".mem": "read_mem"}  # by source file extension


def vivado_files(config, meta: dict) -> dict[str, str]:
    """``<top>.xdc``, the board XDC if a board is set, ``build.tcl`` and ``package_ip.tcl``."""
    h = config.hardware
    part = parse_part(h.part)
    sources = meta["sources"]
    constraints, scripts = output_names(config)
    common = {"generator": f"lstm-hw {__version__}", "top": _tcl_word(h.top), "part": _tcl_word(part.name),
              "clock_mhz": f"{h.clock_mhz:g}"}
    files = {constraints[0]: _template("clock.xdc", **common, period_ns=f"{1000.0 / h.clock_mhz:.3f}")}
    if h.board:
        b = board(h.board, h.part)
        files[constraints[1]] = _board_xdc(b, common, h.clock_mhz)
        board_note = (f"With board = \"{b.name}\", {constraints[1]} (pins of "
                      f"{', '.join(p.port for p in (*b.clock, b.reset))}) is read too.")
        read_board = f"    read_xdc [file join $script_dir {_tcl_word(constraints[1])}]"
    else:
        board_note = "No [hardware] board is set: pass the pin constraints as an .xdc FILE."
        read_board = "    # No [hardware] board: the pins come from the .xdc FILE arguments."
    read_sources = "\n".join(f"{_READ[Path(f).suffix]} [file join $script_dir {_tcl_word(f)}]" for f in sources)
    files["build.tcl"] = _template("build.tcl.in", **common, board_note=board_note, read_sources=read_sources,
                                   read_board_xdc=read_board, xdc=_tcl_word(constraints[0]),
                                   timing_gate=_timing_gate("build.tcl"))
    add_sources = "\n".join(f"add_files -norecurse [file join $script_dir {_tcl_word(f)}]" for f in sources)
    ports = ["s_axis", "m_axis"] + (["s_axis_weights"] if h.weights == "ram" else [])
    files["package_ip.tcl"] = _template("package_ip.tcl.in", **common, add_sources=add_sources,
                                        description=_ip_description(meta), stream_ports=" ".join(ports),
                                        stream_ports_text=", ".join(ports[:-1]) + " and " + ports[-1],
                                        all="both" if len(ports) == 2 else "all")
    system = system_plan(config)
    if system is not None:
        files["system.tcl"] = _system_tcl(system, common, meta, add_sources)
    assert list(files) == constraints + [s for s in scripts if s.endswith(".tcl")]
    return files


def _timing_gate(script: str) -> str:
    """The WNS check that ends build.tcl's and system.tcl's implementation."""
    return _template("timing_gate.tcl.in", script=script).rstrip("\n")


# -- the Zynq system: system.tcl ----------------------------------------------------

#: The IP of system.tcl's block design, by role, as Vendor:Library:Name:Version: PG082 (Processing System 7
#: v5.5), PG021 (AXI DMA v7.1), PG059 (AXI Interconnect v2.1), PG164 (Processor System Reset v5.0).
SYSTEM_IP = {
    "ps7": "xilinx.com:ip:processing_system7:5.5",
    "dma": "xilinx.com:ip:axi_dma:7.1",
    "interconnect": "xilinx.com:ip:axi_interconnect:2.1",
    "reset": "xilinx.com:ip:proc_sys_reset:5.0",
    "gpio": "xilinx.com:ip:axi_gpio:2.0",
}
#: S_AXI_HP0's data width (UG585, "AXI_HP Interfaces": 32 or 64 bits), and the narrowest the DMA's memory side
#: gets, so that the interconnect to it converts no width for streams of up to 64 bits.
HP0_DATA_WIDTH = 64
#: The DMA's longest burst: the HP ports are AXI3, whose bursts are at most 16 beats (UG585, "AXI_HP Interfaces").
DMA_BURST_BEATS = 16


@dataclass(frozen=True)
class SystemPlan:
    """What system.tcl builds on a Zynq board: the fabric clock, the block design's name and its cells."""

    board: Board
    clock: FabricClock
    top: str
    stateful: bool = False    # the core has state_rst, which an AXI GPIO drives
    weights: bool = False     # hardware.weights = "ram": s_axis_weights from a second DMA, weights_ok to a GPIO
    design: str = "system"

    @property
    def cells(self) -> dict[str, str]:
        """Block design cell names, by role (``dma``, ``gpio``, ``weights_dma`` and ``weights_gpio`` are what
        ``pynq.Overlay`` shows them as)."""
        return {"ps7": "ps7", "dma": "axi_dma", "core": f"{self.top}_0", "control": "control_interconnect",
                "memory": "memory_interconnect", "reset": "reset",
                **({"gpio": "state_gpio"} if self.stateful else {}),
                **({"weights_dma": "weights_dma", "weights_gpio": "weights_gpio"} if self.weights else {})}

    @property
    def control_slaves(self) -> list[tuple[str, str]]:
        """``(role, AXI4-Lite interface)`` on the control interconnect, by master port: M00_AXI, M01_AXI, ..."""
        return [("dma", "S_AXI_LITE"), *([("gpio", "S_AXI")] if self.stateful else []),
                *([("weights_dma", "S_AXI_LITE"), ("weights_gpio", "S_AXI")] if self.weights else [])]

    @property
    def memory_masters(self) -> list[tuple[str, str]]:
        """``(role, AXI4 memory master)`` on the memory interconnect, by slave port: S00_AXI, S01_AXI, ..."""
        return [("dma", "M_AXI_MM2S"), ("dma", "M_AXI_S2MM"),
                *([("weights_dma", "M_AXI_MM2S")] if self.weights else [])]

    def control_port(self, role: str) -> str:
        """The control interconnect's master port (``M<nn>``) of the cell ``role``."""
        return f"M{[r for r, _ in self.control_slaves].index(role):02d}"

    @property
    def fclk_mhz(self) -> str:
        """FCLK_CLK0 in MHz as the PS7's configuration writes frequencies, to the Hz."""
        return f"{self.clock.mhz:.6f}"

    @property
    def max_transfer_bytes(self) -> int:
        """The longest DMA transfer, each way: what the length registers hold."""
        return (1 << DMA_LENGTH_BITS) - 1

    def to_dict(self) -> dict:
        """For the metadata's ``system``: what a driver on the board needs to know."""
        cells = self.cells
        return {"script": "system.tcl", "driver": f"{self.top}_driver.py",
                "bitstream": f"vivado_out/{self.design}.bit", "hwh": f"vivado_out/{self.design}.hwh",
                "fclk_mhz": round(self.clock.mhz, 6), "dma": cells["dma"],
                **({"gpio": cells["gpio"]} if self.stateful else {}),
                **({"weights_dma": cells["weights_dma"], "weights_gpio": cells["weights_gpio"]} if self.weights
                   else {}),
                "max_transfer_bytes": self.max_transfer_bytes}


def system_plan(config) -> SystemPlan | None:
    """The system of a Zynq ``hardware.board``; None without a board or on one without a processing system."""
    h = config.hardware
    b = board(h.board, h.part) if h.board else None
    if b is None or b.ps7 is None:
        return None
    return SystemPlan(board=b, clock=fabric_clock(b, h.clock_mhz), top=h.top, stateful=config.model.stateful,
                      weights=h.weights == "ram")


def _tcl_properties(values: dict, indent: str = "") -> str:
    """``CONFIG.<name> <value>`` pairs, one a line, continued for a ``[list ...]`` (an empty indent: one line)."""
    pairs = [f"CONFIG.{name} {{{value}}}" for name, value in values.items()]
    if not indent:
        return " ".join(pairs)
    return "\n".join(f"{indent}{pair} \\" for pair in pairs)


def system_properties(plan: SystemPlan, in_width: int, out_width: int) -> dict[str, dict]:
    """The CONFIG properties system.tcl sets, by cell role (tests/emit/test_system.py names where each is defined)."""
    return {
        "ps7": {
            "PCW_USE_M_AXI_GP0": 1,
            "PCW_USE_S_AXI_HP0": 1,
            "PCW_S_AXI_HP0_DATA_WIDTH": HP0_DATA_WIDTH,
            "PCW_EN_CLK0_PORT": 1,
            "PCW_EN_RST0_PORT": 1,
            "PCW_FPGA_FCLK0_ENABLE": 1,
            "PCW_FCLK0_PERIPHERAL_CLKSRC": "IO PLL",
            "PCW_FPGA0_PERIPHERAL_FREQMHZ": plan.fclk_mhz,
        },
        "dma": {
            "c_include_sg": 0,
            "c_sg_include_stscntrl_strm": 0,
            "c_sg_length_width": DMA_LENGTH_BITS,
            "c_include_mm2s": 1,
            "c_include_s2mm": 1,
            "c_m_axi_mm2s_data_width": max(HP0_DATA_WIDTH, in_width),
            "c_m_axis_mm2s_tdata_width": in_width,
            "c_mm2s_burst_size": DMA_BURST_BEATS,
            "c_m_axi_s2mm_data_width": max(HP0_DATA_WIDTH, out_width),
            "c_s_axis_s2mm_tdata_width": out_width,
            "c_s2mm_burst_size": DMA_BURST_BEATS,
        },
        "control": {"NUM_SI": 1, "NUM_MI": len(plan.control_slaves)},
        "memory": {"NUM_SI": len(plan.memory_masters), "NUM_MI": 1},
        **({"gpio": {"C_GPIO_WIDTH": 1, "C_ALL_OUTPUTS": 1, "C_DOUT_DEFAULT": "0x00000000"}} if plan.stateful else {}),
        **(_weights_properties() if plan.weights else {}),
    }


def _weights_properties() -> dict[str, dict]:
    """The weights DMA (MM2S only, in direct register mode, the image's words as its stream) and the GPIO that
    reads weights_ok."""
    from ..generators.image import WORD_BITS
    return {
        "weights_dma": {
            "c_include_sg": 0,
            "c_sg_include_stscntrl_strm": 0,
            "c_sg_length_width": DMA_LENGTH_BITS,
            "c_include_mm2s": 1,
            "c_include_s2mm": 0,
            "c_m_axi_mm2s_data_width": max(HP0_DATA_WIDTH, WORD_BITS),
            "c_m_axis_mm2s_tdata_width": WORD_BITS,
            "c_mm2s_burst_size": DMA_BURST_BEATS,
        },
        "weights_gpio": {"C_GPIO_WIDTH": 1, "C_ALL_INPUTS": 1},
    }


def _system_tcl(plan: SystemPlan, common: dict, meta: dict, add_sources: str) -> str:
    in_width, out_width = meta["input"]["tdata_width"], meta["output"]["tdata_width"]
    props = system_properties(plan, in_width, out_width)
    b = plan.board
    cells = {role: _tcl_word(name) for role, name in plan.cells.items()}
    vlnvs = {f"vlnv_{role}": vlnv for role, vlnv in SYSTEM_IP.items()}
    return _template(
        "system.tcl.in", **common, **cells, **vlnvs, board=_tcl_word(b.name), board_title=b.title,
        design=_tcl_word(plan.design), board_parts=" ".join(map(_tcl_word, b.ps7.board_parts)),
        board_parts_text=", ".join(b.ps7.board_parts), fclk_mhz=plan.fclk_mhz, fclk_text=f"{plan.clock.mhz:.6g}",
        io_pll_mhz=f"{b.ps7.io_pll_mhz:g}", fclk_division=str(plan.clock.division),
        fclk_tolerance=f"{FCLK_TOLERANCE:g}",
        in_width=str(in_width), out_width=str(out_width), hp0_width=str(HP0_DATA_WIDTH),
        max_transfer_bytes=str(plan.max_transfer_bytes), add_sources=add_sources,
        ps7_config=_tcl_properties(props["ps7"], "    "), dma_config=_tcl_properties(props["dma"], "    "),
        control_config=_tcl_properties(props["control"]), memory_config=_tcl_properties(props["memory"]),
        state_reset=_state_reset_tcl(plan, props), weights_port=_weights_port_tcl(plan, props),
        timing_gate=_timing_gate("system.tcl"))


def _control_slave_tcl(plan: SystemPlan, role: str) -> str:
    """The connection of the AXI4-Lite slave of the cell ``role`` (its Tcl variable of that name) to its port on
    the control interconnect."""
    interface = dict(plan.control_slaves)[role]
    return (f"connect_bd_intf_net [get_bd_intf_pins $control/{plan.control_port(role)}_AXI] "
            f"[get_bd_intf_pins ${role}/{interface}]")


def _state_reset_tcl(plan: SystemPlan, props: dict) -> str:
    """A stateful core's state_rst, driven by an AXI GPIO on the control interconnect."""
    if not plan.stateful:
        return "# The core is not stateful: it has no state_rst to drive."
    gpio, port = _tcl_word(plan.cells["gpio"]), plan.control_port("gpio")
    return "\n".join([
        f"# state_rst: an AXI GPIO, one output bit (PG144), on the control interconnect's {port}_AXI;",
        "# the driver's reset_state() writes 1 and then 0 to its GPIO_DATA register.",
        f"set gpio {gpio}",
        f"create_bd_cell -type ip -vlnv {SYSTEM_IP['gpio']} $gpio",
        "set_property -dict [list \\",
        _tcl_properties(props["gpio"], "    "),
        "] [get_bd_cells $gpio]",
        _control_slave_tcl(plan, "gpio"),
        "connect_bd_net [get_bd_pins $gpio/gpio_io_o] [get_bd_pins $core/state_rst]",
        f"connect_bd_net [get_bd_pins $ps7/FCLK_CLK0] [get_bd_pins $gpio/s_axi_aclk] "
        f"[get_bd_pins $control/{port}_ACLK]",
        "connect_bd_net [get_bd_pins $reset/peripheral_aresetn] [get_bd_pins $gpio/s_axi_aresetn] \\",
        f"    [get_bd_pins $control/{port}_ARESETN]",
    ])


def _weights_port_tcl(plan: SystemPlan, props: dict) -> str:
    """A ``"ram"`` core's s_axis_weights, fed by a second AXI DMA (MM2S only), and its weights_ok, read through
    an AXI GPIO; both on the control interconnect, the DMA's memory master on the memory interconnect."""
    if not plan.weights:
        return '# The weights are in ROM (hardware.weights = "rom"): no s_axis_weights to feed.'
    dma, gpio = _tcl_word(plan.cells["weights_dma"]), _tcl_word(plan.cells["weights_gpio"])
    dma_port, gpio_port = plan.control_port("weights_dma"), plan.control_port("weights_gpio")
    memory_port = f"S{[role for role, _ in plan.memory_masters].index('weights_dma'):02d}"
    return "\n".join([
        "# s_axis_weights: a second AXI DMA in direct register mode, MM2S only (PG021), its AXI4-Lite registers",
        f"# on the control interconnect's {dma_port}_AXI, its memory master on the memory interconnect's",
        f"# {memory_port}_AXI; the driver's load_weights() sends an image as one transfer (tlast on its last word).",
        f"# weights_ok: an AXI GPIO, one input bit (PG144), on the control interconnect's {gpio_port}_AXI;",
        "# load_weights() reads its GPIO_DATA register after the transfer.",
        f"set weights_dma {dma}",
        f"set weights_gpio {gpio}",
        f"create_bd_cell -type ip -vlnv {SYSTEM_IP['dma']} $weights_dma",
        "set_property -dict [list \\",
        _tcl_properties(props["weights_dma"], "    "),
        "] [get_bd_cells $weights_dma]",
        f"create_bd_cell -type ip -vlnv {SYSTEM_IP['gpio']} $weights_gpio",
        "set_property -dict [list \\",
        _tcl_properties(props["weights_gpio"], "    "),
        "] [get_bd_cells $weights_gpio]",
        _control_slave_tcl(plan, "weights_dma"),
        _control_slave_tcl(plan, "weights_gpio"),
        f"connect_bd_intf_net [get_bd_intf_pins $weights_dma/M_AXI_MM2S] [get_bd_intf_pins $memory/{memory_port}_AXI]",
        "connect_bd_intf_net [get_bd_intf_pins $weights_dma/M_AXIS_MM2S] [get_bd_intf_pins $core/s_axis_weights]",
        "connect_bd_net [get_bd_pins $core/weights_ok] [get_bd_pins $weights_gpio/gpio_io_i]",
        "connect_bd_net [get_bd_pins $ps7/FCLK_CLK0] \\",
        "    [get_bd_pins $weights_dma/s_axi_lite_aclk] [get_bd_pins $weights_dma/m_axi_mm2s_aclk] \\",
        f"    [get_bd_pins $weights_gpio/s_axi_aclk] [get_bd_pins $control/{dma_port}_ACLK] \\",
        f"    [get_bd_pins $control/{gpio_port}_ACLK] [get_bd_pins $memory/{memory_port}_ACLK]",
        "connect_bd_net [get_bd_pins $reset/peripheral_aresetn] \\",
        "    [get_bd_pins $weights_dma/axi_resetn] [get_bd_pins $weights_gpio/s_axi_aresetn] \\",
        f"    [get_bd_pins $control/{dma_port}_ARESETN] [get_bd_pins $control/{gpio_port}_ARESETN] \\",
        f"    [get_bd_pins $memory/{memory_port}_ARESETN]",
    ])


def _ip_description(meta: dict) -> str:
    m = meta["config"]["model"]
    head = f", dense head to {m['output_size']}" if m["output_size"] else ""
    text = (f"LSTM accelerator: input {m['input_size']}, hidden {m['hidden_size']}, {m['num_layers']} layer(s)"
            f"{head}; {meta['macs']} MACs, {meta['cycles_per_timestep']} cycles per timestep. "
            f"Generated by {meta['generator']}.")
    assert re.fullmatch(r"[A-Za-z0-9 ,.;:()\-]+", text), text  # goes inside a TCL "..." string
    return text


def _board_xdc(b, common: dict, clock_mhz: float) -> str:
    clock, reset = b.clock, b.reset
    lines = [
        f"# Generated by {common['generator']} for {common['top']} on {common['part']}: board {b.name} ({b.title}).",
        f"# Pins from {b.reference}.",
        "#",
        "# These are the ports of the wrapper top of build.tcl's bitstream flow. The",
        "# AXI4-Stream ports (s_axis_*, m_axis_*) connect to a processing system or",
        "# DMA in a block design, not to pins, so none of them appears here.",
    ]
    if len(clock) == 2:
        lines.append(f"# aclk_p/aclk_n: {b.clock_source}; the wrapper buffers it (IBUFDS) into aclk.")
    else:
        lines.append(f"# aclk: {b.clock_source}.")
    if b.clock_mhz == clock_mhz:
        lines.append(f"# The core runs at its {b.clock_mhz:g} MHz, the hardware.clock_mhz.")
    else:
        lines.append(f"# Fed straight to the core it runs at {b.clock_mhz:g} MHz, not at the {common['clock_mhz']} MHz")
        lines.append("# of hardware.clock_mhz; for that, derive aclk from it with an MMCM in the wrapper.")
    if b.reset_active_low:
        lines.append(f"# {reset.port}: {b.reset_source}, active low like the core's aresetn.")
    else:
        lines.append(f"# {reset.port}: {b.reset_source}, active high, so the wrapper drives the core's")
        lines.append("# aresetn with its inverse (held low >= 16 aclk cycles, synchronised to aclk).")
    for p in clock:
        lines.append(f"set_property -dict {{PACKAGE_PIN {p.pin} IOSTANDARD {p.iostandard}}} [get_ports {p.port}]")
    lines.append(f"create_clock -period {1000.0 / b.clock_mhz:.3f} -name board_clk [get_ports {clock[0].port}]")
    lines.append(f"set_property -dict {{PACKAGE_PIN {reset.pin} IOSTANDARD {reset.iostandard}}} "
                 f"[get_ports {reset.port}]")
    lines.append(f"set_false_path -from [get_ports {reset.port}]")
    return "\n".join(lines) + "\n"


def check_output_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """``out_dir`` as a Path, if it can take new files: refuse a file, or a folder that holds files unless ``force``.

    Called before slow work too, so that a refusal comes at once.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: directory is not empty (use --force to overwrite)")
    return out


def write_files(out_dir: str | Path, files: dict[str, bytes], *, force: bool = False) -> list[Path]:
    """Write ``files`` into ``out_dir``; refuse a non-empty directory unless ``force``.

    Each file goes to a temporary name first and is renamed into place, so a
    failure leaves no partial file, and existing files are only replaced whole.
    """
    out = check_output_dir(out_dir, force=force)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staged = []
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            staged.append((Path(tmp), out / name))
            with os.fdopen(fd, "wb") as f:
                f.write(content)
    except OSError as e:
        for tmp, _ in locals().get("staged", []):
            tmp.unlink(missing_ok=True)
        raise UsageError(f"{out}: cannot write ({e.strerror or e})") from None
    umask = os.umask(0)
    os.umask(umask)
    for tmp, final in staged:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give what open() would have
        os.replace(tmp, final)
    return [final for _, final in staged]


def previous_sources(out: Path, top: str) -> set[str]:
    """The sources (Verilog and ``.mem``) an earlier generation of ``top`` listed in ``out/<top>.json``, if sound.

    Only names of the form ``<top>.v``, ``<top>__<path>.v`` or ``<top>__<path>.mem`` count,
    so nothing but this generator's own output is ever replaced or removed.
    """
    try:
        sources = json.loads((Path(out) / f"{top}.json").read_text("utf-8"))["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    if not isinstance(sources, list):
        return set()
    return {s for s in sources if isinstance(s, str) and (is_module_file(s, top) or is_data_file(s, top))}
