"""The command line: files written, one-line errors with exit code 2, determinism.

Generating Verilog takes a few seconds whatever the size (Amaranth's builtin
Yosys), so only a handful of tests render a design; error paths that fail
before rendering are cheap and tested generously. ``simulate`` is covered by
the simulation tests.
"""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tomllib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import SMALL_TOML, assert_one_line_error, invoke, simulator_off_by, write
from lstm_hw.cli import main
from lstm_hw.config.parts import parse_part
from lstm_hw.config.schema import Config, load_config, parse_config
from lstm_hw.model.weights import expected_shapes, random_weights

# Two layers, an activation width that is not a whole number of bytes, a
# different top name, two row lanes and only the last timestep out.
ODD_TOML = """\
[model]
input_size = 3
hidden_size = 4
num_layers = 2
return_sequences = false
seed = 7
[quant]
activation = { bits = 12, frac = 8 }
[sparsity]
banks = 3
density = 0.4
[hardware]
top = "my_lstm"
rows = 2
clock_mhz = 125
"""





def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def file_names(top: str, board: bool = False, submodules: list[str] = (), data: list[str] = ()) -> list[str]:
    names = [f"{top}.{ext}" for ext in ("v", "json", "xdc")] + ["build.tcl", "package_ip.tcl"]
    return sorted(names + [f"{top}__{sub}.v" for sub in submodules] + list(data)
                  + ([f"{top}_board.xdc"] if board else []))


def submodules_of(out: Path, top: str) -> list[str]:
    """The submodule paths (``layer0__mvm``) of the Verilog files the metadata lists after the top."""
    sources = json.loads((out / f"{top}.json").read_text())["sources"]
    assert sources[0] == f"{top}.v"
    return [s.removeprefix(f"{top}__").removesuffix(".v") for s in sources[1:] if s.endswith(".v")]


def data_files_of(out: Path, top: str) -> list[str]:
    """The ROM contents files (``.mem``) the metadata lists, which come after every Verilog file."""
    sources = json.loads((out / f"{top}.json").read_text())["sources"]
    data = [s for s in sources if s.endswith(".mem")]
    assert sources[len(sources) - len(data):] == data
    return data


def expected_k(width: int, density: float) -> int:
    return max(1, math.floor(Fraction(repr(density)) * width + Fraction(1, 2)))


def check_outputs(out: Path, cfg: Config):
    """The three files, and metadata consistent with the config (derived here, not read back)."""
    top, m = cfg.hardware.top, cfg.model
    meta = json.loads((out / f"{top}.json").read_text())
    # One Verilog file per module, the top first; no temporary files left behind.
    submodules, data = submodules_of(out, top), data_files_of(out, top)
    assert sorted(os.listdir(out)) == file_names(top, bool(cfg.hardware.board), submodules, data)
    assert sorted(meta["sources"] + [f"{top}.json"] + meta["constraints"] + meta["scripts"]) == sorted(os.listdir(out))
    assert meta["constraints"][0] == f"{top}.xdc" and meta["scripts"] == ["build.tcl", "package_ip.tcl"]
    bits, frac = cfg.quant.activation.bits, cfg.quant.activation.frac
    tdata = 8 * math.ceil(bits / 8)
    assert meta["top"] == top
    assert meta["sources"][0] == f"{top}.v"
    # Every layer is a submodule, with its MVM and cell lanes, in a file named after its path.
    for layer in range(m.num_layers):
        assert {f"layer{layer}", f"layer{layer}__mvm", f"layer{layer}__cells__cell0"} <= set(submodules)
    for source in meta["sources"][:len(meta["sources"]) - len(data)]:
        assert re.search(rf"^module {source.removesuffix('.v')}\(", (out / source).read_text(), re.MULTILINE)
        assert (out / source).read_text().count("\nmodule ") == 1, source
    # Each layer's weight ROMs (one per MAC chain position) are modules of their own loading .mem files.
    for layer in range(m.num_layers):
        mvm = f"{top}__layer{layer}__mvm"
        roms = [d for d in data if d.startswith(f"{mvm}__rom_p")]
        assert roms and all(f'$readmemh("{d}", ' in (out / d.replace(".mem", ".v")).read_text() for d in roms)
    for port, elements in (("input", m.input_size), ("output", m.hidden_size)):
        assert meta[port]["bits"] == bits
        assert meta[port]["frac"] == frac
        assert meta[port]["tdata_width"] == tdata
        assert meta[port]["elements_per_timestep"] == elements
    assert meta["output"]["return_sequences"] == m.return_sequences
    assert meta["macs"] == cfg.sparsity.banks * cfg.hardware.rows * m.num_layers
    floor_cycles = 0
    for layer in range(m.num_layers):
        columns = (m.input_size if layer == 0 else m.hidden_size) + m.hidden_size
        k = expected_k(math.ceil(columns / cfg.sparsity.banks), cfg.sparsity.density)
        passes = math.ceil(4 * m.hidden_size / cfg.hardware.rows)
        # a layer can neither take its vector faster than one element a beat nor issue weights faster
        floor_cycles = max(floor_cycles, columns, passes * k)
    assert isinstance(meta["cycles_per_timestep"], int) and meta["cycles_per_timestep"] >= floor_cycles
    assert isinstance(meta["latency_cycles"], int) and meta["latency_cycles"] >= m.num_layers
    assert (meta["part"], meta["clock_mhz"]) == (cfg.hardware.part, cfg.hardware.clock_mhz)

    verilog = (out / f"{top}.v").read_text()
    assert re.search(rf"^module {top}\(", verilog, re.MULTILINE)
    for port in ("s_axis_tdata", "m_axis_tdata"):
        assert re.search(rf"^\s*(input|output) \[{tdata - 1}:0\] {port};", verilog, re.MULTILINE), port
    for port in ("aclk", "aresetn", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
                 "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"):
        assert re.search(rf"^\s*(input|output) {port};", verilog, re.MULTILINE), port

    xdc = (out / f"{top}.xdc").read_text()
    assert f"create_clock -period {1000 / cfg.hardware.clock_mhz:.3f} -name aclk [get_ports aclk]" in xdc
    build = (out / "build.tcl").read_text()
    assert f"\nset part {parse_part(cfg.hardware.part).name}\n" in build
    assert f"\nset top {top}\n" in build
    # every source is read, and nothing else of the design
    assert re.findall(r"^read_\w+ \[file join \$script_dir (\S+)\]$", build, re.MULTILINE) == meta["sources"]
    return meta


# -- generate -----------------------------------------------------------------------

def test_generate_default_design(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("generate")
    assert result.exit_code == 0, result.output
    assert all(line.startswith("[") for line in result.stderr.splitlines()), result.stderr  # progress only
    quiet = invoke("generate", "--quiet", "--force")
    assert quiet.exit_code == 0 and quiet.stderr == ""

    def timeless(text):
        return re.sub(r"generated in [0-9.]+ s", "", text)
    assert timeless(quiet.stdout) == timeless(result.stdout)
    meta = check_outputs(tmp_path / "out", Config())
    # Each layer's step, split into weight-issuing cycles and overhead, with the reason.
    lines = [line for line in result.output.splitlines() if line.startswith("layer ")]
    assert len(lines) == len(meta["layers"])
    for n, (line, layer) in enumerate(zip(lines, meta["layers"])):
        m = re.match(r"layer (\d+): (\d+) cycles/timestep = (\d+) issuing weights \+ (\d+) overhead "
                     r"\(([\d.]+)%\): (.+)$", line)
        assert m, line
        step, issue, over = (int(g) for g in m.group(2, 3, 4))
        assert int(m.group(1)) == n and step == layer["cycles_per_timestep"] == meta["cycles_per_timestep"] == issue + over
        assert issue == layer["issue_cycles_per_timestep"] and float(m.group(5)) == round(100 * over / step, 1)
        # The default's input phases (12 and 24 cycles) are shorter than its tail: the overhead is
        # the hand-over (2) and the rest of the tail.
        assert layer["input_phase_cycles"] + 2 < layer["tail_cycles"]
        assert over == 2 + layer["tail_wait_cycles"] and layer["phase_gap_cycles"] == 0
        assert m.group(6).startswith(f"its {layer['input_phase_cycles']}-cycle input phase does not cover")
    assert sorted(os.listdir(tmp_path)) == ["out"]


BOARD_TOML = SMALL_TOML + '''[hardware]
part = "xc7a35ticsg324-1L"
board = "arty-a7-35"
clock_mhz = 150
'''


def test_generate_with_board(tmp_path):
    cfg_path = write(tmp_path / "arty.toml", BOARD_TOML)
    result = invoke("generate", cfg_path, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    cfg = load_config(cfg_path)
    meta = check_outputs(tmp_path / "out", cfg)
    assert meta["constraints"] == ["lstm_top.xdc", "lstm_top_board.xdc"]
    board_xdc = (tmp_path / "out" / "lstm_top_board.xdc").read_text()
    assert "set_property -dict {PACKAGE_PIN E3 IOSTANDARD LVCMOS33} [get_ports aclk]" in board_xdc
    assert "set_property -dict {PACKAGE_PIN C2 IOSTANDARD LVCMOS33} [get_ports aresetn]" in board_xdc
    assert "read_xdc [file join $script_dir lstm_top_board.xdc]" in (tmp_path / "out" / "build.tcl").read_text()
    assert f"wrote {tmp_path / 'out' / 'lstm_top_board.xdc'}" in result.output


def test_generate_says_what_a_mac_budget_chose(tmp_path):
    """The summary's mapping line names the chosen rows, banks and MACs, as the written config states them."""
    cfg = write(tmp_path / "budget.toml", SMALL_TOML + "[hardware]\nmacs = 20\n")
    result = invoke("generate", cfg, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "lstm_top.json").read_text())
    rows, mapping = meta["config"]["hardware"]["rows"], meta["mapping"]
    assert (mapping["rows"], mapping["banks"], meta["macs"]) == (rows, 2, 2 * rows) and 2 * rows <= 20
    line = next(line for line in result.output.splitlines() if line.startswith("hardware.macs = 20 chose"))
    assert f"{rows} rows x 2 banks, {2 * rows} MACs, {meta['cycles_per_timestep']} cycles per timestep" in line


@pytest.mark.parametrize("hardware, needle", [
    ('part = "xc7z020clg400-1"\nboard = "arty-a7-35"\n', "hardware.board: arty-a7-35 carries xc7a35tcsg324"),
    ('board = "zcu104"\n', "hardware.board: unknown board 'zcu104'"),
    ('part = "xcku060-ffva1156-2-e"\n', "hardware.part: 'xcku060-ffva1156-2-e' is not a supported"),
])
def test_generate_board_or_part_mismatch(tmp_path, hardware, needle):
    cfg_path = write(tmp_path / "bad.toml", SMALL_TOML + "[hardware]\n" + hardware)
    result = invoke("generate", cfg_path, "-o", tmp_path / "out")
    assert_one_line_error(result, needle)
    assert not (tmp_path / "out").exists()


def test_generate_refuses_non_empty_dir_then_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "small.toml", SMALL_TOML)
    assert invoke("generate", "small.toml").exit_code == 0
    before = snapshot(tmp_path / "out")
    assert sorted(before) == file_names("lstm_top", submodules=submodules_of(tmp_path / "out", "lstm_top"),
                                      data=data_files_of(tmp_path / "out", "lstm_top"))

    assert_one_line_error(invoke("generate", "small.toml"), "out", "--force")
    assert snapshot(tmp_path / "out") == before                   # contents and mtimes

    forced = invoke("generate", "small.toml", "--force")
    assert forced.exit_code == 0, forced.output
    after = snapshot(tmp_path / "out")
    assert {name: data for name, (data, _) in after.items()} == {name: data for name, (data, _) in before.items()}
    check_outputs(tmp_path / "out", load_config(tmp_path / "small.toml"))


def test_generate_force_removes_verilog_the_new_design_no_longer_has(tmp_path, monkeypatch):
    """Two layers, then one: --force removes layer 1's files (listed by the old metadata), nothing else."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "two.toml", SMALL_TOML.replace("num_layers = 1", "num_layers = 2"))
    write(tmp_path / "one.toml", SMALL_TOML)
    assert invoke("generate", "two.toml").exit_code == 0
    out = tmp_path / "out"
    old = set(submodules_of(out, "lstm_top"))
    old_data = set(data_files_of(out, "lstm_top"))
    assert {"layer1", "layer1__mvm"} <= old and any(d.startswith("lstm_top__layer1__") for d in old_data)
    write(out / "notes.txt", "mine")
    write(out / "lstm_top__mine.v", "// mine, not in the metadata")
    result = invoke("generate", "one.toml", "--force")
    assert result.exit_code == 0, result.output
    new, new_data = set(submodules_of(out, "lstm_top")), set(data_files_of(out, "lstm_top"))
    assert not any(s.startswith("layer1") for s in new)
    for gone in [f"lstm_top__{s}.v" for s in old - new] + sorted(old_data - new_data):
        assert not (out / gone).exists()
        assert f"removed {Path('out') / gone} (a source of the previous generation)" in result.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "lstm_top__mine.v").exists()
    assert sorted(os.listdir(out)) == sorted(file_names("lstm_top", submodules=sorted(new), data=sorted(new_data))
                                             + ["notes.txt", "lstm_top__mine.v"])


def test_generate_force_ignores_unsound_old_metadata(tmp_path, monkeypatch):
    """A <top>.json that is not ours (or is broken) makes --force remove nothing."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "small.toml", SMALL_TOML)
    out = tmp_path / "out"
    for text in ("{not json", '{"sources": "lstm_top__x.v"}', '{"sources": ["../escape.v", "lstm_top__x.v"]}', "[]"):
        out.mkdir(exist_ok=True)
        write(out / "lstm_top.json", text)
        write(out / "lstm_top__x.v", "// kept unless the old metadata lists it")
        write(tmp_path / "escape.v", "// outside")
        result = invoke("generate", "small.toml", "--force")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "escape.v").exists()
        assert (out / "lstm_top__x.v").exists() == ("lstm_top__x.v\"]" not in text), text


def test_generate_refuses_dir_holding_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write(out / "notes.txt", "mine")
    assert_one_line_error(invoke("generate", "-o", out), str(out))
    assert os.listdir(out) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


BAD_CONFIGS = {
    "unknown_key": ("[model]\nhiden_size = 4\n", "model.hiden_size"),
    "unknown_section": ("[modle]\nhidden_size = 4\n", "modle"),
    "bool_for_int": ("[model]\ninput_size = true\n", "model.input_size"),
    "string_density": ('[sparsity]\ndensity = "0.5"\n', "sparsity.density"),
    "float_bits": ("[quant]\nweight = { bits = 8.0, frac = 6 }\n", "quant.weight.bits"),
    "keyword_top": ('[hardware]\ntop = "module"\n', "hardware.top"),
    "spartan6": ('[hardware]\npart = "xc6slx9-2"\n', "hardware.part"),
    "not_toml": ("[model\ninput_size = 3\n", "cfg.toml"),
}


@pytest.mark.parametrize("text, needle", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_generate_bad_config(tmp_path, text, needle):
    cfg = write(tmp_path / "cfg.toml", text)
    out = tmp_path / "out"
    result = invoke("generate", cfg, "-o", out)
    assert_one_line_error(result, needle)
    if needle != "cfg.toml":
        assert result.stderr.startswith(f"error: {needle}: ")
    assert not out.exists()


def test_generate_missing_config(tmp_path):
    result = invoke("generate", tmp_path / "nope.toml", "-o", tmp_path / "out")
    assert_one_line_error(result, "nope.toml")
    assert not (tmp_path / "out").exists()


def weights_with(tmp_path: Path, cfg: Config, **changes) -> Path:
    w = random_weights(cfg)
    w.update(changes)
    path = tmp_path / "w.npz"
    np.savez(path, **w)
    return path


def test_generate_bad_weights_shape(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    cfg = load_config(cfg_path)
    weights = weights_with(tmp_path, cfg, weight_ih_l0=np.zeros((16, 5)))
    result = invoke("generate", cfg_path, "-w", weights, "-o", tmp_path / "out")
    assert_one_line_error(result, "weight_ih_l0", "(16, 5)")
    assert not (tmp_path / "out").exists()


def test_generate_bad_weights_nan(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    cfg = load_config(cfg_path)
    hh = random_weights(cfg)["weight_hh_l0"]
    hh[3, 2] = np.nan
    result = invoke("generate", cfg_path, "-w", weights_with(tmp_path, cfg, weight_hh_l0=hh),
                    "-o", tmp_path / "out")
    assert_one_line_error(result, "weight_hh_l0")
    assert not (tmp_path / "out").exists()


def test_generate_bad_weights_missing_array(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    w = random_weights(load_config(cfg_path))
    del w["bias_hh_l0"]
    np.savez(tmp_path / "w.npz", **w)
    result = invoke("generate", cfg_path, "-w", tmp_path / "w.npz", "-o", tmp_path / "out")
    assert_one_line_error(result, "bias_hh_l0")
    assert not (tmp_path / "out").exists()


def test_generate_missing_weights_file(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    result = invoke("generate", cfg_path, "-w", tmp_path / "nope.npz", "-o", tmp_path / "out")
    assert_one_line_error(result, "nope.npz")
    assert not (tmp_path / "out").exists()


def test_generate_npy_weights(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    np.save(tmp_path / "w.npy", np.zeros((16, 3)))
    result = CliRunner().invoke(main, ["generate", str(cfg_path), "-w", str(tmp_path / "w.npy"),
                                       "-o", str(tmp_path / "out")])
    assert_one_line_error(result, "w.npy")


def test_generate_output_under_a_file(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    write(tmp_path / "plain", "not a directory")
    result = invoke("generate", cfg_path, "-o", tmp_path / "plain" / "out")
    assert_one_line_error(result, "plain")
    assert (tmp_path / "plain").read_text() == "not a directory"


def test_generate_output_is_a_file(tmp_path):
    cfg_path = write(tmp_path / "small.toml", SMALL_TOML)
    write(tmp_path / "plain", "not a directory")
    result = invoke("generate", cfg_path, "-o", tmp_path / "plain")
    assert result.exit_code == 2
    assert (tmp_path / "plain").read_text() == "not a directory"
    assert_one_line_error(result, "plain")


def test_generate_is_deterministic_across_processes(tmp_path):
    """Same (config, weights) from different directories and hash seeds: byte-identical files."""
    cfg = parse_config(tomllib.loads(ODD_TOML))
    runs = [tmp_path / "a", tmp_path / "b" / "deeper" / "still"]
    rng = np.random.default_rng(3)
    weights = {name: rng.uniform(-0.6, 0.6, shape) for name, shape in expected_shapes(cfg).items()}
    procs = []
    for seed, cwd in zip(("1", "4242"), runs):
        cwd.mkdir(parents=True)
        write(cwd / "lstm.toml", ODD_TOML)
        np.savez(cwd / "weights.npz", **weights)
        env = {**os.environ, "PYTHONHASHSEED": seed}
        procs.append(subprocess.Popen([sys.executable, "-m", "lstm_hw", "generate", "lstm.toml", "-w", "weights.npz"],
                                      cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()
    a, b = (snapshot(cwd / "out") for cwd in runs)
    assert sorted(a) == file_names("my_lstm", submodules=submodules_of(runs[0] / "out", "my_lstm"),
                                   data=data_files_of(runs[0] / "out", "my_lstm"))
    assert {n: d for n, (d, _) in a.items()} == {n: d for n, (d, _) in b.items()}
    meta = check_outputs(runs[0] / "out", cfg)
    assert meta["input"]["tdata_width"] == 16 and meta["input"]["bits"] == 12
    for text in (d.decode() for d, _ in a.values()):
        assert str(tmp_path) not in text


# -- golden -------------------------------------------------------------------------

@pytest.fixture
def small_config(tmp_path):
    return write(tmp_path / "small.toml", SMALL_TOML)


def golden(cfg_path: Path, x: np.ndarray, tmp_path: Path, name: str = "y.npy", *extra) -> np.ndarray:
    x_path = tmp_path / f"x_{name}"
    np.save(x_path, x)
    out = tmp_path / name
    result = invoke("golden", cfg_path, "-i", x_path, "-o", out, *extra)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return np.load(out)


def check_output_codes(y: np.ndarray, cfg: Config):
    fmt = cfg.quant.activation
    codes = y * 2.0 ** fmt.frac
    assert np.array_equal(codes, np.round(codes))              # real values of output words
    assert codes.min() >= fmt.min_int and codes.max() <= fmt.max_int


def test_golden_shapes(tmp_path, small_config):
    cfg = load_config(small_config)
    x = np.random.default_rng(1).normal(0, 1, (3, 6, 3))
    seq = golden(small_config, x[0], tmp_path, "single.npy")
    batch = golden(small_config, x, tmp_path, "batch.npy")
    assert seq.shape == (6, 4)
    assert batch.shape == (3, 6, 4)
    assert np.array_equal(batch[0], seq)                       # sequences are independent
    check_output_codes(batch, cfg)
    assert np.abs(batch).max() > 0


def test_golden_last_step_only(tmp_path, small_config):
    x = np.random.default_rng(2).normal(0, 1, (2, 5, 3))
    full = golden(small_config, x, tmp_path, "full.npy")
    last_cfg = write(tmp_path / "last.toml", SMALL_TOML.replace("num_layers = 1", "num_layers = 1\n"
                                                                "return_sequences = false"))
    last = golden(last_cfg, x, tmp_path, "last.npy")
    single = golden(last_cfg, x[1], tmp_path, "last_single.npy")
    assert last.shape == (2, 1, 4)
    assert single.shape == (1, 4)
    assert np.array_equal(last, full[:, -1:])
    assert np.array_equal(single, full[1, -1:])


def test_golden_integer_input_and_weights(tmp_path, small_config):
    cfg = load_config(small_config)
    weights = tmp_path / "w.npz"
    np.savez(weights, **{name: np.zeros(shape) for name, shape in expected_shapes(cfg).items()})
    y = golden(small_config, np.ones((4, 3), dtype=np.int32), tmp_path, "y.npy", "-w", weights)
    # zero weights and biases: every unit sees zero pre-activations, so all units agree and
    # h_t = sigmoid(0) * tanh(c_t) stays near tanh(0) = 0
    assert y.shape == (4, 4)
    assert np.all(y == y[:, :1])
    assert np.abs(y).max() <= 2.0 ** -6


BAD_INPUTS = {
    "wrong_width": np.zeros((5, 4)),
    "one_dim": np.zeros(3),
    "four_dim": np.zeros((1, 2, 5, 3)),
    "no_steps": np.zeros((0, 3)),
    "no_sequences": np.zeros((0, 5, 3)),
    "nan": np.where(np.eye(5, 3) > 0, np.nan, 0.0),
    "inf": np.full((2, 3), np.inf),
    "strings": np.full((5, 3), "1.0"),
}


@pytest.mark.parametrize("x", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_golden_bad_input(tmp_path, small_config, x):
    np.save(tmp_path / "x.npy", x)
    result = invoke("golden", small_config, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(result, "x.npy")
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("content", [None, b"not an array\n", b""], ids=["missing", "text", "empty"])
def test_golden_unreadable_input(tmp_path, small_config, content):
    x_path = tmp_path / "x.npy"
    if content is not None:
        x_path.write_bytes(content)
    result = invoke("golden", small_config, "-i", x_path, "-o", tmp_path / "y.npy")
    assert_one_line_error(result, "x.npy")
    assert not (tmp_path / "y.npy").exists()


def test_golden_bad_config(tmp_path):
    cfg = write(tmp_path / "bad.toml", "[model]\nhidden_size = 0\n")
    np.save(tmp_path / "x.npy", np.zeros((2, 5)))
    result = invoke("golden", cfg, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_one_line_error(result, "model.hidden_size")
    assert not (tmp_path / "y.npy").exists()


def test_golden_output_under_a_file(tmp_path, small_config):
    write(tmp_path / "plain", "x")
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    result = invoke("golden", small_config, "-i", tmp_path / "x.npy", "-o", tmp_path / "plain" / "y.npy")
    assert_one_line_error(result, "plain")


# -- config ---------------------------------------------------------------------------

def test_config_prints_the_defaults():
    result = invoke("config")
    assert result.exit_code == 0
    assert parse_config(tomllib.loads(result.stdout)) == Config()


def test_config_output_is_a_usable_file(tmp_path):
    path = write(tmp_path / "lstm.toml", invoke("config").stdout)
    assert load_config(path) == Config()


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert "0.1.0" in result.stdout


def test_generated_files_get_the_usual_permissions(tmp_path):
    """Files are staged with mkstemp (mode 0600) but must end up as open() would create them."""
    umask = os.umask(0o022)
    try:
        result = invoke("generate", "-o", tmp_path / "out")
    finally:
        os.umask(umask)
    assert result.exit_code == 0, result.output
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_generate_auto_writes_the_choice(tmp_path):
    cfg_path = write(tmp_path / "auto.toml", '[activation]\nmethod = "auto"\nmax_error = 0.002\n')
    result = invoke("generate", cfg_path, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    act = json.loads((tmp_path / "out" / "lstm_top.json").read_text())["activation"]
    assert act["chosen_by"] == "auto" and act["method"] in ("lut", "pwl", "quadratic", "taylor")
    assert all(act[key]["max_abs_error"] <= 0.002 for key in ("sigmoid", "tanh_gate", "tanh_cell"))
    assert f"{act['segments']} entries (chosen by auto)" in result.output


def test_generate_unmeetable_bound(tmp_path):
    cfg_path = write(tmp_path / "auto.toml", '[activation]\nmethod = "auto"\nmax_error = 1e-5\n')
    result = CliRunner().invoke(main, ["generate", str(cfg_path), "-o", str(tmp_path / "out")])
    assert_one_line_error(result, "activation.max_error", "no method meets")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, needle", [
    ("[sparsity]\ndensity = 1" + "0" * 400 + "\n", "sparsity.density: is far too large"),
    ("[hardware]\nclock_mhz = 1" + "0" * 400 + "\n", "hardware.clock_mhz: is far too large"),
    ("[activation]\ntanh_range = 8.98846567431158e307\n", "activation.tanh_range"),
    ("[activation]\nsigmoid_range = 1.797e308\n", "activation.sigmoid_range"),
], ids=["huge-int-density", "huge-int-clock", "huge-range", "max-float-range"])
def test_generate_overflowing_numbers(tmp_path, text, needle):
    cfg_path = write(tmp_path / "big.toml", text)
    result = CliRunner().invoke(main, ["generate", str(cfg_path), "-o", str(tmp_path / "out")])
    assert_one_line_error(result, needle)
    assert not (tmp_path / "out").exists()


def test_paths_with_newlines_stay_one_line(tmp_path):
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "no\nsuch.toml"), "-o", str(tmp_path / "out")])
    assert_one_line_error(result, "no\\nsuch.toml")


# -- the user's weights: what the hardware's pruning drops is told, and --strict refuses it ------------------

def given_weight_lines(tmp_path):
    """A SMALL_TOML config, its seeded weights pruned to contiguous banks as ``bbs.npz``, and what must be told."""
    from helpers import bbs_weights
    from lstm_hw.model.design import build_design
    from lstm_hw.model.pruning import pruning_lines
    config = parse_config(tomllib.loads(SMALL_TOML))
    weights = bbs_weights(config)
    np.savez(tmp_path / "bbs.npz", **weights)
    lines = pruning_lines(build_design(config, weights).pruning, str(tmp_path / "bbs.npz"))
    assert lines and all(line.startswith("warning: ") for line in lines)
    return write(tmp_path / "c.toml", SMALL_TOML), tmp_path / "bbs.npz", lines


def command_args(command, tmp_path):
    """Arguments for ``command`` on small inputs; simulate and report stop past the design (bad x, no yosys)."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (2, 3, 3)))
    np.save(tmp_path / "x_bad.npy", rng.uniform(-1, 1, (2, 3, 5)))
    np.savez(tmp_path / "data.npz", x=rng.uniform(-1, 1, (4, 3, 3)), y=rng.uniform(-1, 1, (4, 4)))
    return {"generate": ["-o", tmp_path / "out"],
            "golden": ["-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"],
            "simulate": ["--sim", "icarus", "-i", tmp_path / "x_bad.npy", "-o", tmp_path / "y.npy",
                         "--build-dir", tmp_path / "b"],
            "evaluate": ["--data", tmp_path / "data.npz", "--plots", tmp_path / "pics"],
            "report": ["--yosys", tmp_path / "no-yosys"]}[command]


@pytest.mark.parametrize("command", ["generate", "golden", "simulate", "evaluate", "report"])
def test_given_weights_that_lose_non_zeros_are_told(tmp_path, command):
    cfg, weights, lines = given_weight_lines(tmp_path)
    result = invoke(command, cfg, "-w", weights, *command_args(command, tmp_path))
    told = [line for line in result.stderr.splitlines() if line.startswith(("warning: ", "note: "))]
    assert told == lines, result.stderr
    assert "warning" not in result.stdout
    if command in ("generate", "golden", "evaluate"):
        assert result.exit_code == 0, result.output
    else:  # stopped on purpose past the design, by the bad x or the missing yosys
        assert result.exit_code == 2 and result.stderr.splitlines()[-1].startswith("error: ")
    if command == "generate":
        meta = json.loads((tmp_path / "out" / "lstm_top.json").read_text())
        assert meta["pruning"]["weights"] == "given"
        assert sum(m["status"] == "nonconforming" for m in meta["pruning"]["matrices"]) == len(lines)


@pytest.mark.parametrize("command", ["generate", "golden", "simulate", "evaluate", "report"])
def test_strict_refuses_weights_the_hardware_changes(tmp_path, command):
    cfg, weights, lines = given_weight_lines(tmp_path)
    result = invoke(command, cfg, "-w", weights, "--strict", *command_args(command, tmp_path))
    assert_one_line_error(result, f"{weights}:weight_", "strict refuses weights the hardware would change",
                          "lstm_hw.prune")
    assert result.stdout == ""
    for name in ("out", "y.npy", "b", "pics"):
        assert not (tmp_path / name).exists(), name


def test_strict_takes_weights_pruned_to_the_pattern_and_stays_quiet(tmp_path):
    from lstm_hw.model.pruning import prune_weights
    config = parse_config(tomllib.loads(SMALL_TOML))
    np.savez(tmp_path / "w.npz", **prune_weights(random_weights(config), config))
    cfg = write(tmp_path / "c.toml", SMALL_TOML)
    result = invoke("golden", cfg, "-w", tmp_path / "w.npz", "--strict", *command_args("golden", tmp_path))
    assert result.exit_code == 0 and result.stderr == "", result.output
    dense = invoke("golden", cfg, "-w", write_npz(tmp_path / "dense.npz", random_weights(config)),
                   *command_args("golden", tmp_path))
    assert dense.exit_code == 0 and dense.stderr.splitlines()[0].startswith(f"note: {tmp_path / 'dense.npz'}:")
    seeded = invoke("golden", cfg, "--strict", *command_args("golden", tmp_path))
    assert seeded.exit_code == 0 and seeded.stderr == ""  # the seeded defaults are told in the metadata only


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


# -- model files run no code unless trusted ------------------------------------------------------------

def model_commands(tmp_path, model):
    np.savez(tmp_path / "data.npz", x=np.zeros((2, 3, 3)), y=np.zeros((2, 4)))
    cfg = write(tmp_path / "c.toml", "[model]\ninput_size = 3\nhidden_size = 4\nnum_layers = 1\n")
    return {"compress": ["compress", model, "-o", tmp_path / "out"],
            "evaluate": ["evaluate", cfg, "--data", tmp_path / "data.npz", "--model", model]}


@pytest.mark.parametrize("command", ["compress", "evaluate"])
def test_a_model_file_runs_no_code_unless_trusted(tmp_path, command):
    pytest.importorskip("torch")
    from helpers import trapped_model
    marker = tmp_path / "marker"
    args = model_commands(tmp_path, trapped_model(tmp_path / "m.pt", marker))[command]
    result = invoke(*args)
    assert_one_line_error(result, "m.pt: holds more than tensors", "state_dict", "--trust-model")
    assert not marker.exists() and not (tmp_path / "out").exists()
    # The file is live: trusted, it is unpickled in full and its code runs (then the payload is refused).
    trusted = invoke(*args, "--trust-model")
    assert marker.exists()
    assert_one_line_error(trusted, "payload: is a TextIOWrapper, not a tensor")


def test_npz_and_npy_inputs_never_unpickle(tmp_path):
    """Weights, x, data and an .npz model holding a pickled object: refused in one line, and no code runs."""
    from helpers import RunsCode
    marker = tmp_path / "marker"
    trap = np.empty(1, dtype=object)
    trap[0] = RunsCode(marker)
    config = parse_config(tomllib.loads(SMALL_TOML))
    cfg = write(tmp_path / "c.toml", SMALL_TOML)
    np.savez(tmp_path / "w.npz", **{**random_weights(config), "weight_ih_l0": trap})
    np.save(tmp_path / "x.npy", trap, allow_pickle=True)
    np.savez(tmp_path / "d.npz", x=trap, y=np.zeros(1))
    np.save(tmp_path / "good_x.npy", np.zeros((2, 3, 3)))
    runs = [("generate", cfg, "-w", tmp_path / "w.npz", "-o", tmp_path / "out"),
            ("golden", cfg, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"),
            ("evaluate", cfg, "--data", tmp_path / "d.npz"),
            ("evaluate", cfg, "--data", tmp_path / "d.npz", "--model", tmp_path / "w.npz")]
    if importlib.util.find_spec("torch") is not None:
        runs.append(("compress", tmp_path / "w.npz", "-o", tmp_path / "out"))
    for args in runs:
        result = invoke(*args)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), (args, result.output)
        assert len(result.stderr.splitlines()) == 1 and not marker.exists(), args
    np.load(tmp_path / "x.npy", allow_pickle=True)
    assert marker.exists()  # the object was live: unpickled, its code runs


# -- exit codes, one class each: 0 success, 1 a check failed, 2 bad input, 3 a tool failed or is missing ------

def test_exit_codes_per_class(tmp_path, monkeypatch):
    from lstm_hw.sim import tools
    from lstm_hw.sim import top
    cfg = write(tmp_path / "c.toml", SMALL_TOML)
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 3)))
    simulate = ("simulate", cfg, "--sim", "icarus", "-i", tmp_path / "x.npy")
    assert invoke("golden", cfg, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy").exit_code == 0
    assert_one_line_error(invoke("golden", write(tmp_path / "bad.toml", "[model]\nhidden_size = 0\n"),
                                 "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"), "model.hidden_size")

    monkeypatch.setattr(tools, "_which", lambda program: None)  # as if Icarus were not installed
    missing = invoke(*simulate)
    assert missing.exit_code == 3, missing.output
    assert missing.stderr.splitlines() == [f"error: iverilog not found: {tools._ICARUS_HINT}"]
    monkeypatch.undo()

    monkeypatch.setattr(top, "simulate_top", simulator_off_by(1))   # the last word
    mismatch = invoke(*simulate)
    assert mismatch.exit_code == 1, mismatch.output
    assert mismatch.stderr.splitlines()[-1] == "error: 1 outputs differ from the golden model"


def test_every_command_takes_paths_relative_to_where_the_user_stands(tmp_path, monkeypatch):
    """compress, generate, golden, evaluate and approx in a folder of their own, with relative paths only.

    (simulate's, build folder included, are in tests/sim/test_simulate_cli.py.)"""
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    (tmp_path / "in").mkdir()
    torch.save(lstm.state_dict(), "in/model.pt")
    rng = np.random.default_rng(0)
    np.savez("in/data.npz", x=rng.uniform(-1, 1, (4, 3, 3)), y=rng.uniform(-1, 1, (4, 4)))
    np.save("in/x.npy", rng.uniform(-1, 1, (3, 3)))
    steps = [("compress", "in/model.pt", "-o", "c"),
             ("generate", "c/config.toml", "-w", "c/weights.npz", "-o", "rtl", "--quiet"),
             ("golden", "c/config.toml", "-w", "c/weights.npz", "-i", "in/x.npy", "-o", "out/y.npy"),
             ("evaluate", "c/config.toml", "-w", "c/weights.npz", "--data", "in/data.npz", "--model", "in/model.pt",
              "--plots", "pics", "--quiet"),
             ("approx", "--fn", "tanh", "--method", "pwl", "--segments", "8", "--plot", "out/tanh.png")]
    for args in steps:
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
    for path in ("c/weights.npz", "rtl/lstm_top.json", "out/y.npy", "pics/sparsity_l0_hh.png", "out/tanh.png"):
        assert (tmp_path / path).is_file(), path
