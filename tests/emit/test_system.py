"""system.tcl, the Zynq system build, run under tclsh with every Vivado command recorded.

Vivado cannot run here, so the script runs under ``helpers.TCL_RECORDER``: the
tests check the order of the steps, every IP's VLNV and every property set
(against :data:`PROPERTIES`, which says where each is defined), the
connections, the clock, the output paths, both board-part branches and the
timing gate. What they cannot check is that Vivado agrees; the names are
Xilinx's as the documents in the tables spell them.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import TCLSH, run_tcl, tcl_option as option
from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files, output_names
from lstm_hw.model.design import build_design

needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")

SMALL = {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1}, "sparsity": {"banks": 2}}
#: Two systems: PYNQ-Z2 with 16-bit streams; ZedBoard at 1000/7 MHz written short, with a head and two lanes
#: of 8-bit inputs and 16-bit outputs, so that the two stream widths differ.
SYSTEMS = {
    "pynq-z2": {"hardware": {"board": "pynq-z2", "clock_mhz": 125}},
    "zedboard": {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2},
                 "quant": {"activation": {"bits": 8, "frac": 5}, "output": {"bits": 12, "frac": 6}},
                 "hardware": {"board": "zedboard", "part": "xc7z020clg484-1", "clock_mhz": 142.857, "io_lanes": 2,
                              "top": "lstm_zed"}},
    # A stateful core: its state_rst driven by an AXI GPIO.
    "stateful": {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "stateful": True},
                 "hardware": {"board": "pynq-z2"}},
    # Run-time weights: s_axis_weights fed by a second DMA, weights_ok read by an AXI GPIO; and both GPIOs.
    "weights": {"hardware": {"board": "pynq-z2", "weights": "ram"}},
    "stateful_weights": {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "stateful": True},
                         "hardware": {"board": "zedboard", "part": "xc7z020clg484-1", "clock_mhz": 100,
                                      "weights": "ram"}},
}
EXPECTED = {  # system: (FCLK_CLK0 as set, input tdata bits, output tdata bits, core cell)
    "pynq-z2": ("125.000000", 16, 16, "lstm_top_0"),
    "zedboard": ("142.857143", 16, 32, "lstm_zed_0"),
    "stateful": ("200.000000", 16, 16, "lstm_top_0"),
    "weights": ("200.000000", 16, 16, "lstm_top_0"),
    "stateful_weights": ("100.000000", 16, 16, "lstm_top_0"),
}


def stateful(name: str) -> bool:
    return SYSTEMS[name].get("model", {}).get("stateful", False)


def loads_weights(name: str) -> bool:
    return SYSTEMS[name]["hardware"].get("weights") == "ram"

#: IP VLNVs: PG082 (Processing System 7 v5.5), PG021 (AXI DMA v7.1), PG059 (AXI Interconnect v2.1),
#: PG164 (Processor System Reset v5.0); the core is a module reference (UG994, "Referencing RTL Modules").
VLNV = {
    "ps7": "xilinx.com:ip:processing_system7:5.5",
    "axi_dma": "xilinx.com:ip:axi_dma:7.1",
    "control_interconnect": "xilinx.com:ip:axi_interconnect:2.1",
    "memory_interconnect": "xilinx.com:ip:axi_interconnect:2.1",
    "reset": "xilinx.com:ip:proc_sys_reset:5.0",
}
#: A stateful core's AXI GPIO: PG144 (AXI GPIO v2.0).
GPIO_VLNV = {"state_gpio": "xilinx.com:ip:axi_gpio:2.0"}
#: A "ram" core's weights DMA (PG021, AXI DMA v7.1) and the AXI GPIO that reads weights_ok (PG144).
WEIGHTS_VLNV = {"weights_dma": "xilinx.com:ip:axi_dma:7.1", "weights_gpio": "xilinx.com:ip:axi_gpio:2.0"}

# Every property system.tcl sets, and the document (and section) that defines it. The PS7 CONFIG names are
# the ones Vivado's write_bd_tcl writes for processing_system7 (for example PYNQ's boards/Pynq-Z2/base/base.tcl);
# PG082 names the options only by their GUI pages.
PROPERTIES = [  # (cell, property, expected value: str or f(fclk, in_bits, out_bits), document)
    ("ps7", "PCW_USE_M_AXI_GP0", "1", "PG082 PS-PL Configuration, GP Master AXI Interface; UG585 Interconnect, "
                                      "AXI_GP interfaces"),
    ("ps7", "PCW_USE_S_AXI_HP0", "1", "PG082 PS-PL Configuration, HP Slave AXI Interface; UG585 Interconnect, "
                                      "AXI_HP interfaces"),
    ("ps7", "PCW_S_AXI_HP0_DATA_WIDTH", "64", "UG585 Interconnect, AXI_HP interfaces (32 or 64 bits)"),
    ("ps7", "PCW_EN_CLK0_PORT", "1", "PG082 Clock Configuration, PL Fabric Clocks (FCLK_CLK0 port)"),
    ("ps7", "PCW_EN_RST0_PORT", "1", "PG082 PS-PL Configuration (FCLK_RESET0_N port); UG585 Reset System, "
                                     "PL resets"),
    ("ps7", "PCW_FPGA_FCLK0_ENABLE", "1", "PG082 Clock Configuration, PL Fabric Clocks"),
    ("ps7", "PCW_FCLK0_PERIPHERAL_CLKSRC", "IO PLL", "UG585 Clocks, PL clocks: FPGA0_CLK_CTRL.SRCSEL"),
    ("ps7", "PCW_FPGA0_PERIPHERAL_FREQMHZ", lambda f, i, o: f, "UG585 Clocks, PL clocks: IO PLL / DIVISOR0 / "
                                                               "DIVISOR1 (FPGA0_CLK_CTRL)"),
    ("axi_dma", "c_include_sg", "0", "PG021 Customizing the core, Enable Scatter Gather Engine (off: Direct "
                                     "Register Mode)"),
    ("axi_dma", "c_sg_include_stscntrl_strm", "0", "PG021 Customizing the core, Enable Control/Status Stream"),
    ("axi_dma", "c_sg_length_width", "26", "PG021 Customizing the core, Width of Buffer Length Register "
                                           "(8 to 26); Register Space, MM2S_LENGTH and S2MM_LENGTH"),
    ("axi_dma", "c_include_mm2s", "1", "PG021 Customizing the core, Enable Read Channel"),
    ("axi_dma", "c_include_s2mm", "1", "PG021 Customizing the core, Enable Write Channel"),
    ("axi_dma", "c_m_axi_mm2s_data_width", lambda f, i, o: str(max(64, i)),
     "PG021 Customizing the core, Memory Map Data Width (32 to 1024, not below the stream's)"),
    ("axi_dma", "c_m_axis_mm2s_tdata_width", lambda f, i, o: str(i),
     "PG021 Customizing the core, Stream Data Width (8 to 1024)"),
    ("axi_dma", "c_mm2s_burst_size", "16", "PG021 Customizing the core, Max Burst Size; UG585 AXI_HP "
                                           "interfaces are AXI3, 16-beat bursts"),
    ("axi_dma", "c_m_axi_s2mm_data_width", lambda f, i, o: str(max(64, o)),
     "PG021 Customizing the core, Memory Map Data Width"),
    ("axi_dma", "c_s_axis_s2mm_tdata_width", lambda f, i, o: str(o), "PG021 Customizing the core, Stream Data Width"),
    ("axi_dma", "c_s_axis_s2mm_tdata_width.VALUE_SRC", "USER", "UG994 Propagating parameters (a user value is "
                                                              "not overwritten by propagation)"),
    ("axi_dma", "c_s2mm_burst_size", "16", "PG021 Customizing the core, Max Burst Size"),
    ("control_interconnect", "NUM_SI", "1", "PG059 Customizing the core, Number of Slave Interfaces"),
    ("control_interconnect", "NUM_MI", "1", "PG059 Customizing the core, Number of Master Interfaces"),
    ("memory_interconnect", "NUM_SI", "2", "PG059 Customizing the core, Number of Slave Interfaces"),
    ("memory_interconnect", "NUM_MI", "1", "PG059 Customizing the core, Number of Master Interfaces"),
]
#: What a stateful core changes and adds: a second control port, for the AXI GPIO that drives state_rst.
GPIO_PROPERTIES = [
    ("control_interconnect", "NUM_MI", "2", "PG059 Customizing the core, Number of Master Interfaces (the DMA's "
                                            "registers and the GPIO's)"),
    ("state_gpio", "C_GPIO_WIDTH", "1", "PG144 Customizing the core, GPIO Width (1 to 32)"),
    ("state_gpio", "C_ALL_OUTPUTS", "1", "PG144 Customizing the core, All Outputs (gpio_io_o alone)"),
    ("state_gpio", "C_DOUT_DEFAULT", "0x00000000", "PG144 Customizing the core, Default Output Value (after "
                                                   "reset: state_rst low)"),
]
#: What a "ram" core changes and adds: two control ports more (the weights DMA's registers, the weights_ok
#: GPIO's), a memory port more (the weights DMA's MM2S master), and the two cells.
WEIGHTS_PROPERTIES = [
    ("control_interconnect", "NUM_MI", "3", "PG059 Customizing the core, Number of Master Interfaces (the two "
                                            "DMAs' registers and the weights_ok GPIO's)"),
    ("memory_interconnect", "NUM_SI", "3", "PG059 Customizing the core, Number of Slave Interfaces (the data "
                                           "DMA's two memory masters and the weights DMA's one)"),
    ("weights_dma", "c_include_sg", "0", "PG021 Customizing the core, Enable Scatter Gather Engine (off: Direct "
                                         "Register Mode)"),
    ("weights_dma", "c_sg_include_stscntrl_strm", "0", "PG021 Customizing the core, Enable Control/Status Stream"),
    ("weights_dma", "c_sg_length_width", "26", "PG021 Customizing the core, Width of Buffer Length Register"),
    ("weights_dma", "c_include_mm2s", "1", "PG021 Customizing the core, Enable Read Channel"),
    ("weights_dma", "c_include_s2mm", "0", "PG021 Customizing the core, Enable Write Channel (off: MM2S only)"),
    ("weights_dma", "c_m_axi_mm2s_data_width", "64", "PG021 Customizing the core, Memory Map Data Width (S_AXI_HP0's "
                                                     "64 bits)"),
    ("weights_dma", "c_m_axis_mm2s_tdata_width", "32", "PG021 Customizing the core, Stream Data Width "
                                                       "(s_axis_weights_tdata)"),
    ("weights_dma", "c_mm2s_burst_size", "16", "PG021 Customizing the core, Max Burst Size; UG585 AXI_HP "
                                               "interfaces are AXI3, 16-beat bursts"),
    ("weights_gpio", "C_GPIO_WIDTH", "1", "PG144 Customizing the core, GPIO Width (1 to 32)"),
    ("weights_gpio", "C_ALL_INPUTS", "1", "PG144 Customizing the core, All Inputs (gpio_io_i alone)"),
]
#: Both: the state GPIO, the weights DMA and the weights_ok GPIO after the data DMA.
STATEFUL_WEIGHTS_PROPERTIES = [
    ("control_interconnect", "NUM_MI", "4", "PG059 Customizing the core, Number of Master Interfaces"),
]

#: Interface connections (UG994, "Interface connections"; pin names from PG082, PG021 Port Descriptions, PG059).
INTERFACES = [
    ("ps7/M_AXI_GP0", "control_interconnect/S00_AXI"),
    ("control_interconnect/M00_AXI", "axi_dma/S_AXI_LITE"),
    ("axi_dma/M_AXI_MM2S", "memory_interconnect/S00_AXI"),
    ("axi_dma/M_AXI_S2MM", "memory_interconnect/S01_AXI"),
    ("memory_interconnect/M00_AXI", "ps7/S_AXI_HP0"),
    ("axi_dma/M_AXIS_MM2S", "{core}/s_axis"),
    ("{core}/m_axis", "axi_dma/S_AXIS_S2MM"),
]
#: Nets: the driver first (pin names from PG082, PG021, PG059 and PG164 Port Descriptions).
NETS = [
    ("ps7/FCLK_CLK0", {"ps7/M_AXI_GP0_ACLK", "ps7/S_AXI_HP0_ACLK", "axi_dma/s_axi_lite_aclk",
                       "axi_dma/m_axi_mm2s_aclk", "axi_dma/m_axi_s2mm_aclk", "control_interconnect/ACLK",
                       "control_interconnect/S00_ACLK", "control_interconnect/M00_ACLK", "memory_interconnect/ACLK",
                       "memory_interconnect/S00_ACLK", "memory_interconnect/S01_ACLK",
                       "memory_interconnect/M00_ACLK", "reset/slowest_sync_clk", "{core}/aclk"}),
    ("ps7/FCLK_RESET0_N", {"reset/ext_reset_in"}),
    ("reset/peripheral_aresetn", {"{core}/aresetn", "axi_dma/axi_resetn", "control_interconnect/S00_ARESETN",
                                  "control_interconnect/M00_ARESETN", "memory_interconnect/S00_ARESETN",
                                  "memory_interconnect/S01_ARESETN", "memory_interconnect/M00_ARESETN"}),
    ("reset/interconnect_aresetn", {"control_interconnect/ARESETN", "memory_interconnect/ARESETN"}),
]
#: A stateful core's GPIO: its AXI4-Lite port on the control interconnect, gpio_io_o (PG144 Port
#: Descriptions) to state_rst, and its clock and reset.
GPIO_INTERFACES = [("control_interconnect/M01_AXI", "state_gpio/S_AXI")]
GPIO_NETS = [
    ("state_gpio/gpio_io_o", {"{core}/state_rst"}),
    ("ps7/FCLK_CLK0", {"state_gpio/s_axi_aclk", "control_interconnect/M01_ACLK"}),
    ("reset/peripheral_aresetn", {"state_gpio/s_axi_aresetn", "control_interconnect/M01_ARESETN"}),
]
#: A "ram" core's weights DMA: registers on the control port {dma} (M01, or M02 after a state GPIO), its MM2S
#: memory master on the memory interconnect's S02, its stream into s_axis_weights; the GPIO on port {gpio}, its
#: gpio_io_i (PG144 Port Descriptions) from weights_ok; their clocks and resets.
WEIGHTS_INTERFACES = [
    ("control_interconnect/{dma}_AXI", "weights_dma/S_AXI_LITE"),
    ("control_interconnect/{gpio}_AXI", "weights_gpio/S_AXI"),
    ("weights_dma/M_AXI_MM2S", "memory_interconnect/S02_AXI"),
    ("weights_dma/M_AXIS_MM2S", "{core}/s_axis_weights"),
]
WEIGHTS_NETS = [
    ("{core}/weights_ok", {"weights_gpio/gpio_io_i"}),
    ("ps7/FCLK_CLK0", {"weights_dma/s_axi_lite_aclk", "weights_dma/m_axi_mm2s_aclk", "weights_gpio/s_axi_aclk",
                       "control_interconnect/{dma}_ACLK", "control_interconnect/{gpio}_ACLK",
                       "memory_interconnect/S02_ACLK"}),
    ("reset/peripheral_aresetn", {"weights_dma/axi_resetn", "weights_gpio/s_axi_aresetn",
                                  "control_interconnect/{dma}_ARESETN", "control_interconnect/{gpio}_ARESETN",
                                  "memory_interconnect/S02_ARESETN"}),
]


def weights_ports(name: str) -> dict:
    """The control interconnect's ports of the weights DMA and GPIO: after the data DMA and any state GPIO."""
    first = 2 if stateful(name) else 1
    return {"dma": f"M{first:02d}", "gpio": f"M{first + 1:02d}"}

#: The steps of the build, in order, after the sources (UG835 for each command; UG994 for the block design flow).
STEPS = ["create_bd_design", "apply_bd_automation", "assign_bd_address", "validate_bd_design", "save_bd_design",
         "generate_target", "make_wrapper", "add_files", "update_compile_order", "launch_runs", "wait_on_run",
         "launch_runs", "wait_on_run", "open_run", "report_utilization", "report_timing_summary", "get_timing_paths",
         "write_bitstream"]


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    """Each system of :data:`SYSTEMS` generated into a folder of its own."""
    out = {}
    for name, cfg in SYSTEMS.items():
        files = design_files(build_design(parse_config({**SMALL, **cfg})))
        d = tmp_path_factory.mktemp(name) / "gen"
        d.mkdir()
        for file, data in files.items():
            (d / file).write_bytes(data)
        meta = json.loads(files[next(f for f in files if f.endswith(".json"))])
        out[name] = (d, files, meta)
    return out


def fake_handoff(d: Path, where: str = "gen") -> Path:
    """The .hwh that generate_target leaves in the project (Vivado 2020.2 on: .gen; before: .srcs)."""
    hwh = d / "vivado_out" / "system_project" / f"system_project.{where}" / "sources_1" / "bd" / "system"
    hwh = hwh / "hw_handoff" / "system.hwh"
    hwh.parent.mkdir(parents=True, exist_ok=True)
    hwh.write_text(f"<MODULE hwh from {where}/>\n")
    return hwh


def build(systems, name, tmp_path, **env):
    d, files, meta = systems[name]
    fake_handoff(d)
    return d, meta, run_tcl(d / "system.tcl", cwd=tmp_path, env=env)


def step_commands(run) -> list[str]:
    return [c for c in run.commands() if c in STEPS or c == "create_project"]


# -- what generate writes ----------------------------------------------------------------

@pytest.mark.parametrize("name", SYSTEMS)
def test_zynq_board_writes_system_tcl(systems, name):
    d, files, meta = systems[name]
    fclk, in_bits, out_bits, _ = EXPECTED[name]
    driver = f"{meta['top']}_driver.py"
    assert meta["scripts"] == ["build.tcl", "package_ip.tcl", "system.tcl", driver]
    assert list(files)[-2:] == ["system.tcl", driver]
    assert (meta["input"]["tdata_width"], meta["output"]["tdata_width"]) == (in_bits, out_bits)
    assert meta["system"] == {"script": "system.tcl", "driver": driver, "bitstream": "vivado_out/system.bit",
                              "hwh": "vivado_out/system.hwh", "fclk_mhz": float(fclk), "dma": "axi_dma",
                              **({"gpio": "state_gpio"} if stateful(name) else {}),
                              **({"weights_dma": "weights_dma", "weights_gpio": "weights_gpio"}
                                 if loads_weights(name) else {}),
                              "max_transfer_bytes": 2 ** 26 - 1}
    assert meta["framing"] == {"sequence_length": 0, "stateful": stateful(name)}
    assert meta["weights"]["memory"] == ("ram" if loads_weights(name) else "rom")
    again = design_files(build_design(parse_config({**SMALL, **SYSTEMS[name]})))
    assert again["system.tcl"] == files["system.tcl"]
    assert max(map(len, files["system.tcl"].decode().splitlines())) <= 120


@pytest.mark.parametrize("hardware", [{}, {"board": "kc705", "part": "xc7k325tffg900-2"},
                                      {"board": "arty-a7-35", "part": "xc7a35ticsg324-1L"},
                                      {"part": "xc7z020clg400-1", "clock_mhz": 150, "io_lanes": 1}])
def test_no_system_without_a_zynq_board(hardware):
    cfg = parse_config({**SMALL, "hardware": hardware})
    assert output_names(cfg)[1] == ["build.tcl", "package_ip.tcl"]
    files = design_files(build_design(cfg))
    assert "system.tcl" not in files and b'"system"' not in files["lstm_top.json"]


@needs_tclsh
def test_system_tcl_is_complete_tcl(systems, tmp_path):
    check = tmp_path / "check.tcl"
    check.write_text("set f [open [lindex $argv 0]]; set t [read $f]; close $f\nputs [info complete $t]\n")
    for name in SYSTEMS:
        d = systems[name][0]
        proc = subprocess.run([TCLSH, str(check), str(d / "system.tcl")], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == "1", proc.stderr


# -- the build, step by step ---------------------------------------------------------------

@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_steps_in_order(systems, name, tmp_path):
    d, meta, run = build(systems, name, tmp_path)
    assert run.returncode == 0, run.stderr
    sources = len(meta["sources"])
    assert step_commands(run) == ["create_project", *["add_files"] * sources, "update_compile_order", *STEPS]
    create = run.first("create_project")
    assert create[1:] == ["-force", "system_project", str(d / "vivado_out" / "system_project"), "-part", meta["part"]]
    assert [Path(c[-1]) for c in run.calls if c[0] == "add_files"][:sources] == [d / s for s in meta["sources"]]
    assert run.calls[run.commands().index("make_wrapper")] == ["make_wrapper", "-files", "file:system.bd", "-top"]
    assert ["add_files", "-norecurse", "wrapper:-top"] in run.calls
    assert ["set_property", "top", "system_wrapper", "sources_1"] in run.calls
    assert ["launch_runs", "synth_1", "-jobs", "4"] in run.calls
    assert ["launch_runs", "impl_1", "-to_step", "route_design", "-jobs", "4"] in run.calls
    # the block design is complete before it is validated
    last_bd_edit = max(i for i, c in enumerate(run.commands()) if c.startswith(("create_bd", "connect_bd")))
    assert last_bd_edit < run.commands().index("assign_bd_address") < run.commands().index("validate_bd_design")


@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_every_ip_and_its_vlnv(systems, name, tmp_path):
    d, meta, run = build(systems, name, tmp_path)
    core = EXPECTED[name][3]
    cells = [c for c in run.calls if c[0] == "create_bd_cell"]
    ips = {c[-1]: option(c, "-vlnv") for c in cells if option(c, "-type") == "ip"}
    want = {**VLNV, **(GPIO_VLNV if stateful(name) else {}), **(WEIGHTS_VLNV if loads_weights(name) else {})}
    assert ips == want
    assert ["create_bd_cell", "-type", "module", "-reference", meta["top"], core] in cells
    assert len(cells) == len(want) + 1


@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_every_property_set_is_in_the_table(systems, name, tmp_path):
    d, meta, run = build(systems, name, tmp_path)
    fclk, in_bits, out_bits, _ = EXPECTED[name]
    want = {}
    tables = PROPERTIES + (GPIO_PROPERTIES if stateful(name) else []) + \
        (WEIGHTS_PROPERTIES if loads_weights(name) else []) + \
        (STATEFUL_WEIGHTS_PROPERTIES if stateful(name) and loads_weights(name) else [])
    for cell, prop, value, document in tables:
        assert document
        want.setdefault(f"cell:{cell}", {})[f"CONFIG.{prop}"] = value(fclk, in_bits, out_bits) if callable(value) \
            else value
    got = {obj: values for obj, values in run.props.items() if obj.startswith("cell:")}
    assert got == want
    # set after the board preset, which would otherwise overwrite them
    ps7_set = next(i for i, c in enumerate(run.calls) if c[:2] == ["set_property", "-dict"] and c[-1] == "cell:ps7")
    assert run.commands().index("apply_bd_automation") < ps7_set


@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_connections(systems, name, tmp_path):
    d, meta, run = build(systems, name, tmp_path)
    core = EXPECTED[name][3]
    intf = [tuple(p.removeprefix("intf:") for p in c[1:]) for c in run.calls if c[0] == "connect_bd_intf_net"]
    gpio, weights = stateful(name), loads_weights(name)
    interfaces = INTERFACES + (GPIO_INTERFACES if gpio else []) + (WEIGHTS_INTERFACES if weights else [])
    want_nets = NETS + (GPIO_NETS if gpio else []) + (WEIGHTS_NETS if weights else [])
    names = {"core": core, **weights_ports(name)}
    assert intf == [(a.format(**names), b.format(**names)) for a, b in interfaces]
    nets = [[p.removeprefix("pin:") for p in c[1:]] for c in run.calls if c[0] == "connect_bd_net"]
    assert [(n[0], set(n[1:])) for n in nets] == [(a.format(**names), {p.format(**names) for p in b})
                                                  for a, b in want_nets]
    assert all(len(n) == len(set(n)) for n in nets)
    # no pin is driven twice
    sinks = [p for n in nets for p in n[1:]]
    assert len(sinks) == len(set(sinks))
    automation = run.first("apply_bd_automation")
    assert option(automation, "-rule") == "xilinx.com:bd_rule:processing_system7" and automation[-1] == "cell:ps7"


@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_every_slave_gets_an_address(systems, name, tmp_path):
    """assign_bd_address, run once without arguments after the last connection, maps each slave segment into
    every master's address space that reaches it through an interconnect: the AXI4-Lite registers of each DMA
    and GPIO into M_AXI_GP0's (each on its own control port, M00 up, as many as NUM_MI), and DDR into each DMA
    memory master's (S00 up, as many as NUM_SI). PYNQ finds each IP by its name in the .hwh, at whatever
    address Vivado gives it."""
    d, meta, run = build(systems, name, tmp_path)
    intf = [tuple(p.removeprefix("intf:") for p in c[1:]) for c in run.calls if c[0] == "connect_bd_intf_net"]
    peers = {}
    for a, b in intf:
        peers.setdefault(a, []).append(b)
        peers.setdefault(b, []).append(a)
    control, memory = run.props["cell:control_interconnect"], run.props["cell:memory_interconnect"]
    weights = loads_weights(name)
    lite = {"axi_dma/S_AXI_LITE", *(["state_gpio/S_AXI"] if stateful(name) else []),
            *(["weights_dma/S_AXI_LITE", "weights_gpio/S_AXI"] if weights else [])}
    masters = {"axi_dma/M_AXI_MM2S", "axi_dma/M_AXI_S2MM", *(["weights_dma/M_AXI_MM2S"] if weights else [])}
    assert peers["ps7/M_AXI_GP0"] == ["control_interconnect/S00_AXI"]
    control_ports = {f"control_interconnect/M{n:02d}_AXI" for n in range(int(control["CONFIG.NUM_MI"]))}
    assert {peers[port][0] for port in control_ports} == set(lite) and all(len(peers[p]) == 1 for p in control_ports)
    assert peers["ps7/S_AXI_HP0"] == ["memory_interconnect/M00_AXI"]
    memory_ports = {f"memory_interconnect/S{n:02d}_AXI" for n in range(int(memory["CONFIG.NUM_SI"]))}
    assert {peers[port][0] for port in memory_ports} == masters and all(len(peers[p]) == 1 for p in memory_ports)
    assert [c for c in run.calls if c[0] == "assign_bd_address"] == [["assign_bd_address"]]
    last_connection = max(i for i, c in enumerate(run.commands()) if c.startswith("connect_bd"))
    assert last_connection < run.commands().index("assign_bd_address") < run.commands().index("validate_bd_design")


@pytest.mark.parametrize("name", SYSTEMS)
def test_weights_port_only_with_ram(systems, name):
    """The script says what it builds: the second DMA and its GPIO only on a "ram" design, and why."""
    text = systems[name][1]["system.tcl"].decode()
    assert ("create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 $weights_dma" in text) == loads_weights(name)
    assert ('# The weights are in ROM (hardware.weights = "rom"): no s_axis_weights to feed.' in text) != \
        loads_weights(name)
    header = text[:text.index("set script_dir")]
    assert "A second DMA rather than the first one's MM2S shared" in header and "TDEST" in header


# -- board part installed or not -------------------------------------------------------------

@needs_tclsh
@pytest.mark.parametrize("name, installed, chosen", [
    ("pynq-z2", "tul.com.tw:pynq-z2:part0:1.0", "tul.com.tw:pynq-z2:part0:1.0"),
    ("zedboard", "digilentinc.com:zedboard:part0:1.0 avnet.com:zedboard:part0:1.4 em.avnet.com:zed:part0:1.4",
     "avnet.com:zedboard:part0:1.4"),
    ("zedboard", "digilentinc.com:zedboard:part0:1.1 digilentinc.com:zedboard:part0:1.0", 
     "digilentinc.com:zedboard:part0:1.1"),
    ("zedboard", "em.avnet.com:zed:part0:1.3 em.avnet.com:zed:part0:1.10 xilinx.com:zc702:part0:1.4",
     "em.avnet.com:zed:part0:1.10"),
])
def test_board_part_installed(systems, name, installed, chosen, tmp_path):
    d, meta, run = build(systems, name, tmp_path, STUB_BOARD_PARTS=installed)
    assert run.returncode == 0, run.stderr
    assert ["set_property", "board_part", chosen, "project0"] in run.calls
    set_board = run.calls.index(["set_property", "board_part", chosen, "project0"])
    assert run.commands().index("create_project") < set_board < run.commands().index("add_files")
    assert option(run.first("apply_bd_automation"), "-config") == (
        "make_external {FIXED_IO, DDR} apply_board_preset 1 Master Disable Slave Disable")
    assert f"system.tcl: board part {chosen}, with its processing system preset" in run.stdout


@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_board_part_not_installed(systems, name, tmp_path):
    d, meta, run = build(systems, name, tmp_path, STUB_BOARD_PARTS="xilinx.com:zc702:part0:1.4")
    assert run.returncode == 0, run.stderr
    asked = [c[-1] for c in run.calls if c[0] == "get_board_parts"]
    board = SYSTEMS[name]["hardware"]["board"]
    wanted = {"pynq-z2": ["tul.com.tw:pynq-z2:part0:*"],
              "zedboard": ["avnet.com:zedboard:part0:*", "digilentinc.com:zedboard:part0:*",
                           "em.avnet.com:zed:part0:*"]}[board]
    assert asked == wanted and all("-quiet" in c for c in run.calls if c[0] == "get_board_parts")
    assert not any(c[:2] == ["set_property", "board_part"] for c in run.calls)
    assert "apply_board_preset 0" in option(run.first("apply_bd_automation"), "-config")
    assert f"no board files for {board} ({', '.join(w[:-2] for w in wanted)}) installed: plain part " \
           f"{meta['part']}, processing system without the board preset" in run.stdout
    assert step_commands(run)[-1] == "write_bitstream"


# -- the clock ---------------------------------------------------------------------------------

@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
def test_clock_is_checked_after_vivado_picks_the_dividers(systems, name, tmp_path):
    fclk = EXPECTED[name][0]
    d, meta, run = build(systems, name, tmp_path)
    assert run.props["cell:ps7"]["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == fclk
    ask = run.calls.index(["get_property", "CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ", "cell:ps7"])
    ps7_set = max(i for i, c in enumerate(run.calls) if c[0] == "set_property" and c[-1] == "cell:ps7")
    dma = next(i for i, c in enumerate(run.calls) if c[0] == "create_bd_cell" and c[-1] == "axi_dma")
    assert ps7_set < ask < dma
    assert f"system.tcl: FCLK_CLK0 at {fclk} MHz" in run.stdout
    # Vivado's rounding (142.857132 for 1000/7) is within the tolerance
    assert build(systems, name, tmp_path, STUB_FCLK=f"{float(fclk) * (1 - 5e-7):.6f}")[2].returncode == 0


@needs_tclsh
@pytest.mark.parametrize("made", ["100.000000", "", "n/a"])
def test_clock_other_than_generate_checked_fails(systems, made, tmp_path):
    d, meta, run = build(systems, "pynq-z2", tmp_path, STUB_FCLK=made)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"system.tcl: the processing system makes FCLK_CLK0 at '{made}' MHz, not 125.000000 MHz "
        f"(its IO PLL: 1000.000 MHz; generate assumed 1000)")
    assert not any(c[0] == "create_bd_cell" and c[-1] == "axi_dma" for c in run.calls)
    assert "launch_runs" not in run.commands()


# -- outputs and the timing gate -----------------------------------------------------------------

@needs_tclsh
@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("wns", ["0.125", "0"])
def test_timing_met_writes_bit_and_hwh_side_by_side(systems, name, wns, tmp_path):
    d, meta, run = build(systems, name, tmp_path, STUB_WNS=wns)
    assert run.returncode == 0, run.stderr
    out = d / "vivado_out"
    assert run.calls[-1] == ["write_bitstream", "-force", str(out / "system.bit")]
    assert (out / "system.hwh").read_text() == "<MODULE hwh from gen/>\n"
    reports = {Path(option(c, "-file")) for c in run.calls if c[0].startswith("report_")}
    assert reports == {out / "utilization.rpt", out / "timing_summary.rpt"}
    assert f"system.tcl: timing met: WNS = {wns} ns" in run.stdout
    assert run.commands()[-4:] == ["report_timing_summary", "get_timing_paths", "get_property", "write_bitstream"]


@needs_tclsh
@pytest.mark.parametrize("wns", ["-0.001", "-1.25"])
def test_timing_not_met_fails_without_bitstream(systems, wns, tmp_path):
    d, _, _ = systems["pynq-z2"]
    out = d / "vivado_out"
    out.mkdir(exist_ok=True)
    for stale in ("system.bit", "system.hwh"):   # an earlier run's pair must not survive a failed one
        (out / stale).write_text("old")
    d, meta, run = build(systems, "pynq-z2", tmp_path, STUB_WNS=wns)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"system.tcl: timing not met: WNS = {wns} ns (see {out / 'timing_summary.rpt'})")
    assert "write_bitstream" not in run.commands()
    assert not (out / "system.bit").exists() and not (out / "system.hwh").exists()


@needs_tclsh
def test_newest_handoff_is_copied(systems, tmp_path):
    d, _, _ = systems["pynq-z2"]
    old = fake_handoff(d, "srcs")
    os.utime(old, (1, 1))
    d, meta, run = build(systems, "pynq-z2", tmp_path)   # writes the .gen one, newer
    assert run.returncode == 0, run.stderr
    assert (d / "vivado_out" / "system.hwh").read_text() == "<MODULE hwh from gen/>\n"


@needs_tclsh
def test_missing_handoff_fails_before_bitstream(systems, tmp_path):
    d, _, _ = systems["zedboard"]
    shutil.rmtree(d / "vivado_out", ignore_errors=True)
    run = run_tcl(d / "system.tcl", cwd=tmp_path)
    assert run.returncode == 1 and "system.tcl: no hw_handoff/system.hwh under" in run.stderr
    assert "write_bitstream" not in run.commands()


@needs_tclsh
@pytest.mark.parametrize("run_name, status, step, ran", [
    ("synth_1", "synth_design ERROR", "synthesis", ["launch_runs"]),
    ("synth_1", "Not started", "synthesis", ["launch_runs"]),
    ("impl_1", "place_design ERROR", "implementation", ["launch_runs", "launch_runs"]),
])
def test_failed_run_stops_the_build(systems, run_name, status, step, ran, tmp_path):
    d, meta, run = build(systems, "pynq-z2", tmp_path, **{f"STUB_STATUS_{run_name}": status})
    assert run.returncode == 1
    assert f"system.tcl: {step} failed: {status} (see the {run_name} log in " in run.stderr
    assert [c for c in run.commands() if c == "launch_runs"] == ran
    assert "open_run" not in run.commands() and "write_bitstream" not in run.commands()
