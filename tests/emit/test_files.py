"""The Vivado hand-off: XDC files, and build.tcl / package_ip.tcl run under tclsh with Vivado stubbed.

Vivado cannot run here, so the scripts are sourced by ``tclsh`` with every
Vivado command caught by ``unknown``, which records the call
(``helpers.TCL_RECORDER``). The tests then check the calls: what is read,
``synth_design``'s part, top and mode, the implementation steps, the timing
gate, and where reports, checkpoints and the bitstream go. system.tcl, the
Zynq system build, has tests of its own (test_system.py).
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from helpers import TCLSH, run_tcl, tcl_option as option
from lstm_hw.config.parts import boards
from lstm_hw.config.schema import parse_config, tdata_widths
from lstm_hw.emit.files import design_files, output_names, vivado_files
from lstm_hw.model.design import Design, build_design

#: How build.tcl reads each kind of source.
READ = {".v": "read_verilog", ".mem": "read_mem"}

needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")

SMALL = {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1}, "sparsity": {"banks": 2}}


def small_design(**hardware) -> Design:
    cfg = parse_config({**SMALL, "hardware": hardware})
    return build_design(cfg)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One design with a board (differential clock) and one without, written out."""
    out = {}
    for label, hardware in (("plain", {"top": "lstm_small", "part": "xc7a35tcpg236-1", "clock_mhz": 125}),
                            ("board", {"part": "xc7k325tffg900-2", "board": "kc705"})):
        files = design_files(small_design(**hardware))
        d = tmp_path_factory.mktemp(label) / "gen"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
        out[label] = (d, files, json.loads(files[next(n for n in files if n.endswith(".json"))]))
    return out


def stub_meta(cfg) -> dict:
    """The metadata vivado_files reads, for a config alone."""
    widths = tdata_widths(cfg)
    return {"config": cfg.to_dict(), "macs": 1, "cycles_per_timestep": 1, "generator": "lstm-hw test",
            "sources": ["lstm_top.v"], "input": {"tdata_width": widths[0]}, "output": {"tdata_width": widths[1]}}


# -- file set and metadata -------------------------------------------------------

def test_files_and_metadata_lists(generated):
    d, files, meta = generated["plain"]
    sources = meta["sources"]
    # One file per module: the top, then each submodule named after its path; then the
    # weight ROMs' contents, one file per MAC chain position.
    assert sources[0] == "lstm_small.v" and {"lstm_small__layer0.v", "lstm_small__layer0__mvm.v"} <= set(sources)
    data = [s for s in sources if s.endswith(".mem")]
    assert data and data == [f"lstm_small__layer0__mvm__rom_p{j}.mem" for j in range(len(data))]
    assert all(re.fullmatch(r"lstm_small(__\w+)?\.v", s) for s in sources[:-len(data)]), sources
    assert list(files) == [*sources, "lstm_small.json", "lstm_small.xdc", "build.tcl", "package_ip.tcl"]
    assert (meta["constraints"], meta["scripts"]) == (["lstm_small.xdc"], ["build.tcl", "package_ip.tcl"])
    d, files, meta = generated["board"]
    assert meta["constraints"] == ["lstm_top.xdc", "lstm_top_board.xdc"]
    assert list(files) == [*meta["sources"], "lstm_top.json", "lstm_top.xdc", "lstm_top_board.xdc",
                           "build.tcl", "package_ip.tcl"]
    assert meta["config"]["hardware"]["board"] == "kc705"


def test_output_is_byte_identical_across_runs(generated):
    _, files, _ = generated["board"]
    again = design_files(small_design(part="xc7k325tffg900-2", board="kc705"))
    assert again == files


@pytest.mark.parametrize("mhz, period", [(200, "5.000"), (125, "8.000"), (300, "3.333"), (333, "3.003"),
                                         (1, "1000.000"), (166.6667, "6.000"), (800, "1.250")])
def test_ooc_xdc_period(mhz, period):
    cfg = parse_config({"hardware": {"clock_mhz": mhz}})
    xdc = vivado_files(cfg, stub_meta(cfg))["lstm_top.xdc"]
    assert f"{1000 / mhz:.3f}" == period
    assert f"\ncreate_clock -period {period} -name aclk [get_ports aclk]\n" in xdc
    assert xdc.count("create_clock") == 1 and "PACKAGE_PIN" not in xdc


def test_no_board_no_board_xdc():
    cfg = parse_config({})
    assert output_names(cfg)[0] == ["lstm_top.xdc"]
    cfg = parse_config({"hardware": {"board": "pynq-z2"}})
    assert output_names(cfg)[0] == ["lstm_top.xdc", "lstm_top_board.xdc"]


@pytest.mark.parametrize("name", boards())
def test_board_xdc(name):
    b = boards()[name]
    cfg = parse_config({"hardware": {"part": b.part, "board": name}})
    xdc = vivado_files(cfg, stub_meta(cfg))["lstm_top_board.xdc"]
    for pin in (*b.clock, b.reset):
        assert f"set_property -dict {{PACKAGE_PIN {pin.pin} IOSTANDARD {pin.iostandard}}} [get_ports {pin.port}]" in xdc
    assert f"create_clock -period {1000 / b.clock_mhz:.3f} -name board_clk [get_ports {b.clock[0].port}]" in xdc
    assert "s_axis" in xdc and "get_ports s_axis" not in xdc and "get_ports m_axis" not in xdc
    assert xdc.count("PACKAGE_PIN") == len(b.clock) + 1


# -- build.tcl under tclsh -----------------------------------------------------------

#: The Vivado steps of build.tcl, in order, and the timing gate's query.
STEPS = ("synth_design", "opt_design", "place_design", "route_design", "write_checkpoint", "report_utilization",
         "report_timing_summary", "get_timing_paths", "write_bitstream")


@needs_tclsh
@pytest.mark.parametrize("label", ["plain", "board"])
def test_build_tcl_out_of_context(generated, label, tmp_path):
    d, files, meta = generated[label]
    run = run_tcl(d / "build.tcl", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    part, top = meta["part"], meta["top"]
    reads = [c for c in run.calls if c[0].startswith("read_")]
    assert [(c[0], Path(c[-1])) for c in reads] == (
        [(READ[Path(s).suffix], d / s) for s in meta["sources"]] + [("read_xdc", d / meta["constraints"][0])])
    synth = run.first("synth_design")
    assert (option(synth, "-part"), option(synth, "-top"), option(synth, "-mode")) == (part, top, "out_of_context")
    assert [c for c in run.commands() if c in STEPS] == [
        "synth_design", "write_checkpoint", "opt_design", "place_design", "route_design", "write_checkpoint",
        "report_utilization", "report_utilization", "report_timing_summary", "get_timing_paths"]
    out = d / "vivado_out"
    written = {Path(c[-1]) for c in run.calls if c[0] == "write_checkpoint"}
    written |= {Path(option(c, "-file")) for c in run.calls if c[0].startswith("report_")}
    assert written == {out / "post_synth.dcp", out / "post_route.dcp", out / "utilization.rpt",
                       out / "utilization_hier.rpt", out / "timing_summary.rpt"}
    assert out.is_dir()
    assert "build.tcl: timing met: WNS = 0.125 ns" in run.stdout


@needs_tclsh
@pytest.mark.parametrize("label", ["plain", "board"])
def test_build_tcl_bitstream(generated, label, tmp_path):
    d, files, meta = generated[label]
    (tmp_path / "hw").mkdir()
    run = run_tcl(d / "build.tcl", "bitstream", "system_wrapper", "hw/system_wrapper.v", "hw/pins.xdc",
                  "hw/rom.mem", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    board_xdc = [d / c for c in meta["constraints"][1:]]
    reads = [(c[0], Path(c[-1])) for c in run.calls if c[0].startswith("read_")]
    assert reads == ([(READ[Path(s).suffix], d / s) for s in meta["sources"]] + [("read_xdc", x) for x in board_xdc]
                     + [("read_verilog", tmp_path / "hw/system_wrapper.v"), ("read_xdc", tmp_path / "hw/pins.xdc"),
                        ("read_mem", tmp_path / "hw/rom.mem")])
    synth = run.first("synth_design")
    assert (option(synth, "-part"), option(synth, "-top"), "-mode" in synth) == (meta["part"], "system_wrapper", False)
    assert [c for c in run.commands() if c in STEPS][-3:] == [
        "report_timing_summary", "get_timing_paths", "write_bitstream"]
    assert run.commands()[-1] == "write_bitstream"
    assert Path(run.calls[-1][-1]) == d / "vivado_out" / "system_wrapper.bit"


@needs_tclsh
@pytest.mark.parametrize("args", [(), ("bitstream", "system_wrapper", "hw/system_wrapper.v")])
@pytest.mark.parametrize("wns", ["-0.042", "-3.5"])
def test_build_tcl_timing_gate_fails_on_negative_slack(generated, args, wns, tmp_path):
    d, _, _ = generated["plain"]
    run = run_tcl(d / "build.tcl", *args, cwd=tmp_path, env={"STUB_WNS": wns})
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"build.tcl: timing not met: WNS = {wns} ns (see {d / 'vivado_out' / 'timing_summary.rpt'})")
    assert "write_bitstream" not in run.commands()
    gate = run.first("get_timing_paths")     # the worst setup path
    assert (option(gate, "-delay_type"), option(gate, "-max_paths"), option(gate, "-nworst")) == ("max", "1", "1")
    assert run.commands().index("report_timing_summary") < run.commands().index("get_timing_paths")
    assert run.calls[-1] == ["get_property", "SLACK", "path:worst"]


@needs_tclsh
@pytest.mark.parametrize("wns", ["0", "0.001"])
def test_build_tcl_timing_gate_passes_zero_and_positive_slack(generated, wns, tmp_path):
    d, _, _ = generated["plain"]
    run = run_tcl(d / "build.tcl", "bitstream", "system_wrapper", "hw/system_wrapper.v", cwd=tmp_path,
                  env={"STUB_WNS": wns})
    assert run.returncode == 0, run.stderr
    assert run.commands()[-1] == "write_bitstream" and f"timing met: WNS = {wns} ns" in run.stdout


@needs_tclsh
def test_build_tcl_timing_gate_without_timed_paths(generated, tmp_path):
    d, _, _ = generated["plain"]
    run = run_tcl(d / "build.tcl", cwd=tmp_path, env={"STUB_WNS": ""})
    assert run.returncode == 1 and "build.tcl: no timed path in the routed design" in run.stderr


@needs_tclsh
@pytest.mark.parametrize("args", [("bitstream",), ("bitsream", "top"), ("ooc",)])
def test_build_tcl_bad_arguments(generated, args, tmp_path):
    d, _, _ = generated["plain"]
    run = run_tcl(d / "build.tcl", *args, cwd=tmp_path)
    assert run.returncode == 1 and "usage: -tclargs bitstream WRAPPER" in run.stderr
    assert "synth_design" not in run.commands()


@needs_tclsh
def test_build_tcl_refuses_unknown_file_type(generated, tmp_path):
    d, _, _ = generated["plain"]
    run = run_tcl(d / "build.tcl", "bitstream", "top", "notes.txt", cwd=tmp_path)
    assert run.returncode == 1 and "cannot read" in run.stderr and "notes.txt" in run.stderr


# -- package_ip.tcl under tclsh ------------------------------------------------------

@needs_tclsh
def test_package_ip(generated, tmp_path):
    d, files, meta = generated["board"]
    proc = run_tcl(d / "package_ip.tcl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = proc.calls
    create = next(c for c in calls if c[0] == "create_project")
    assert option(create, "-part") == meta["part"]
    assert [Path(c[-1]) for c in calls if c[0] == "add_files"] == [d / s for s in meta["sources"]]
    assert ["set_property", "top", meta["top"], "sources_1"] in calls
    package = next(c for c in calls if c[0] == "ipx::package_project")
    assert Path(option(package, "-root_dir")) == d / "vivado_out" / "ip" and "-import_files" in package
    assert ["ipx::associate_bus_interfaces", "-busif", "s_axis", "-clock", "aclk", "core0"] in calls
    assert ["ipx::associate_bus_interfaces", "-busif", "m_axis", "-clock", "aclk", "core0"] in calls
    assert ["ipx::associate_bus_interfaces", "-clock", "aclk", "-reset", "aresetn", "core0"] in calls
    assert "ipx::infer_bus_interfaces" not in proc.commands()     # package_project found them
    assert proc.commands()[-2:] == ["ipx::save_core", "close_project"]


@needs_tclsh
def test_package_ip_associates_the_weight_port(tmp_path):
    d = tmp_path / "gen"
    d.mkdir()
    for name, data in design_files(small_design(weights="ram")).items():
        (d / name).write_bytes(data)
    proc = run_tcl(d / "package_ip.tcl", cwd=tmp_path)
    assert proc.returncode == 1 and "no AXI4-Stream interface s_axis_weights" in proc.stderr
    proc = run_tcl(d / "package_ip.tcl", cwd=tmp_path, env={"STUB_BUSIFS": "s_axis m_axis s_axis_weights"})
    assert proc.returncode == 0, proc.stderr
    for busif in ("s_axis", "m_axis", "s_axis_weights"):
        assert ["ipx::associate_bus_interfaces", "-busif", busif, "-clock", "aclk", "core0"] in proc.calls


@needs_tclsh
def test_package_ip_without_stream_ports_fails(generated, tmp_path):
    d, _, _ = generated["plain"]
    proc = run_tcl(d / "package_ip.tcl", cwd=tmp_path, env={"STUB_NO_BUSIF": "1"})
    assert proc.returncode == 1 and "no AXI4-Stream interface s_axis" in proc.stderr
    assert "ipx::infer_bus_interfaces" in proc.commands() and "ipx::save_core" not in proc.commands()


@needs_tclsh
@pytest.mark.parametrize("name", ["build.tcl", "package_ip.tcl"])
def test_scripts_are_complete_tcl(generated, name, tmp_path):
    d, _, _ = generated["board"]
    check = tmp_path / "check.tcl"
    check.write_text("set f [open [lindex $argv 0]]; set t [read $f]; close $f\n"
                     "puts [info complete $t]\n")
    proc = subprocess.run([TCLSH, str(check), str(d / name)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "1", proc.stderr
