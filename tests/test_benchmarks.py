"""The benchmark helpers (benchmarks/measure.py, benchmarks/suite.py): what they measure and how they report it."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import measure  # noqa: E402
import suite  # noqa: E402
from lstm_hw.compression.compress import config_toml  # noqa: E402
from lstm_hw.config.schema import parse_config  # noqa: E402
from lstm_hw.generators.weight_loader import LOAD_OVERHEAD_CYCLES  # noqa: E402
from lstm_hw.model.design import build_design  # noqa: E402
from lstm_hw.model.sums import format_sum_bits  # noqa: E402
from lstm_hw.numerics.fixed import Fixed  # noqa: E402


def test_steady_cycles_skip_the_first_interval():
    # 3 beats per step; steps start at 0, 10, 30, 50: the pipeline fills in the first interval
    starts = [0, 10, 30, 50]
    stamps = [s + k for s in starts for k in range(3)]
    assert measure.steady_cycles_per_step(stamps, 3, 4) == 20.0
    assert measure.steady_cycles_per_step(stamps, 3, 2) == 10.0   # two steps: the one interval there is


def test_steady_cycles_refuses_too_few_steps_or_stamps():
    with pytest.raises(ValueError, match="at least 2"):
        measure.steady_cycles_per_step([0, 1, 2], 3, 1)
    with pytest.raises(ValueError, match="stamps"):
        measure.steady_cycles_per_step([0, 1, 2, 10], 3, 3)


def test_results_xml_sums_real_and_simulated_time(tmp_path):
    xml = tmp_path / "results.xml"
    xml.write_text(
        '<testsuites><testsuite name="s">'
        '<testcase name="a" time="1.5"><properties><property name="sim_time_unit" value="us" />'
        '<property name="sim_time_duration" value="2.5" /></properties></testcase>'
        '<testcase name="b" time="0.5"><properties><property name="sim_time_unit" value="ns" />'
        '<property name="sim_time_duration" value="700" /></properties></testcase>'
        "</testsuite></testsuites>")
    assert measure._results_xml(xml) == (2.0, 3200.0)


def test_random_codes_shape_and_range():
    design = build_design(parse_config({}))
    x = measure.random_codes(design, 3, 5)
    fmt = design.config.quant.activation
    assert x.shape == (3, 5, design.config.model.input_size)
    assert x.min() >= fmt.min_int // 2 and x.max() <= fmt.max_int // 2
    assert np.array_equal(x, measure.random_codes(design, 3, 5))   # seeded


def test_generate_timed_runs_the_cli(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(config_toml(parse_config({})))
    got = measure.generate_timed(path, tmp_path / "out")
    assert got["generation_s"] > 0 and got["generation_peak_rss_mib"] > 10
    assert json.loads((tmp_path / "out" / "lstm_top.json").read_text())["macs"] == 32


def test_generate_timed_peak_is_the_childs_own(tmp_path):
    """A large parent does not show in the child's peak (ru_maxrss would carry it over the fork and exec)."""
    path = tmp_path / "c.toml"
    path.write_text(config_toml(parse_config({})))
    ballast = np.ones((128, 1024, 1024))    # 1 GiB resident in this process
    got = measure.generate_timed(path, tmp_path / "out")
    assert ballast.sum() > 0 and 10 < got["generation_peak_rss_mib"] < 512


def test_generate_timed_reports_the_cli_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[sparsity]\ndensity = 1.5\n")
    with pytest.raises(RuntimeError, match="sparsity.density"):
        measure.generate_timed(path, tmp_path / "out")


def test_golden_speed_on_one_core_restores_affinity():
    before = os.sched_getaffinity(0)
    got = measure.golden_speed(build_design(parse_config({})), batch=4, steps=3, min_seconds=0.0)
    assert os.sched_getaffinity(0) == before
    assert got["golden_runs"] >= 2 and got["golden_timesteps_per_s"] > 0
    assert got["golden_timesteps_per_s"] == pytest.approx(got["golden_sequences_per_s"] * 3, rel=0.01)


def test_synth_child_gives_up_after_the_timeout(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(config_toml(parse_config({})))
    got = suite.synth_child(path, timeout=0.2)
    assert got == {"synthesized": False, "reason": "Yosys did not finish within 0.2 s", "seconds": 0.2}


def _report(cycles: int, macs: int, digest: str = "v1") -> dict:
    return {"resources": {"luts": 10, "ffs": 20, "bram36": 1.5}, "dsp": {"total": macs + 8, "mac_arrays": macs},
            "synthesis": {"tool": "Yosys", "verilog_sha256": digest}, "performance": {"cycles_per_timestep": cycles}}


def test_known_synthesis_takes_only_figures_of_this_design(tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "WEIGHTS_RESULTS", ())
    case = suite.Case({}, 1, 2, 1, 1)
    meta = {"cycles_per_timestep": 72, "macs": 32}

    def known(previous, given, synth=False, toml="toml"):
        return suite.known_synthesis("tiny", case, toml, meta, previous, given, synth, verilog_sha256="v1")

    given = tmp_path / "rep.json"
    given.write_text(json.dumps(_report(72, 32)))
    got = known({}, {"tiny": str(given)})
    assert got["synthesized"] and got["lut"] == 10 and got["dsp"] == 40 and "stale" not in got
    given.write_text(json.dumps(_report(75, 32, "v0")))
    assert "stale" in known({}, {"tiny": str(given)})
    # an earlier suite row counts with the same config and Verilog, not with another config
    old = {"tiny": {"config_toml": "toml", "synthesis": {"synthesized": True, **suite.synth_figures(_report(72, 32))}}}
    assert known(old, {})["ff"] == 20
    assert known(old, {}, toml="other toml") is None
    # a synthesis of an older schedule (other cycles per timestep) is marked stale, or redone with synth
    stale = {"tiny": {"config_toml": "toml",
                      "synthesis": {"synthesized": True, **suite.synth_figures(_report(80, 32, "v0"))}}}
    got = known(stale, {})
    assert got["lut"] == 10 and "took 80 cycles per timestep (now 72)" in got["stale"]
    assert known(stale, {}, synth=True) is None
    # the same schedule from other Verilog (the generator changed) is stale too; so is a figure with no digest
    for digest in ("v0", None):
        other_verilog = {"tiny": {"config_toml": "toml",
                                  "synthesis": {"synthesized": True, **suite.synth_figures(_report(72, 32, digest))}}}
        assert known(other_verilog, {})["stale"] == "synthesized from other Verilog (same schedule)"
        assert known(other_verilog, {}, synth=True) is None
    # another MAC array is another design
    other = {"tiny": {"config_toml": "toml",
                      "synthesis": {"synthesized": True, **suite.synth_figures(_report(72, 16))}}}
    assert known(other, {}) is None


def test_known_synthesis_takes_the_weights_benchmarks_rom_design(tmp_path, monkeypatch):
    """benchmarks/weights.py's "rom" synthesis of a suite design counts for it: with the case's own config and
    the same Verilog; with other Verilog it is stale."""
    from lstm_hw.compression.compress import config_toml
    name = "tiny"
    case = suite.CASES[name]
    toml = config_toml(suite.case_config(case))
    monkeypatch.setattr(suite, "REPORT_RESULTS", tmp_path / "none.json")
    synthesis = {"dsps": 48, "dsp_macs": 32, "luts": 3000, "ffs": 4000, "bram36": 8.0, "tool": "Yosys",
                 "verilog_sha256": "v1", "seconds": 40}
    path = tmp_path / "weights_fit.json"
    path.write_text(json.dumps({"results": [{"case": name, "rom": {"cycles_per_timestep": 54,
                                                                   "synthesis": synthesis}}]}))
    monkeypatch.setattr(suite, "WEIGHTS_RESULTS", (path,))
    meta = {"cycles_per_timestep": 54, "macs": 32}

    def known(toml=toml, digest="v1", synth=False):
        return suite.known_synthesis(name, case, toml, meta, {}, {}, synth, verilog_sha256=digest)

    got = known()
    assert (got["lut"], got["ff"], got["dsp"], got["bram36"]) == (3000, 4000, 48, 8.0) and "stale" not in got
    assert got["source"] == "benchmarks/results/weights_fit.json (rom)"
    assert known(toml="other toml") is None
    assert known(digest="v2")["stale"] == "synthesized from other Verilog (same schedule)"
    assert known(digest="v2", synth=True) is None


def test_verilog_digest_sees_names_contents_and_order():
    from lstm_hw.synth.report import verilog_digest
    a = verilog_digest({"a.v": b"x", "b.v": b"y"})
    assert a == verilog_digest({"a.v": b"x", "b.v": b"y"}) and len(a) == 64
    assert len({a, verilog_digest({"a.v": b"x", "b.v": b"z"}), verilog_digest({"b.v": b"y", "a.v": b"x"}),
                verilog_digest({"a.v": b"xb.v", "": b"y"}), verilog_digest({"a.v": b"x"})}) == 5


def test_table_marks_predicted_cycles_and_missing_synthesis():
    row = {"case": "x", "input_size": 3, "hidden_size": 4, "num_layers": 1, "density": 0.5, "weight_bits": 8,
           "macs": 16, "generation_s": 1.0, "generation_peak_rss_mib": 100, "ideal_cycles_per_timestep": 10.0,
           "cycles_per_timestep": 20, "cycles_source": "predicted", "utilisation": 0.5, "real_gops": 1.0,
           "effective_gops": 2.0, "real_gops_per_dsp": None, "real_gops_per_mac": 0.0625,
           "synthesis": {"synthesized": False, "reason": "r"}}
    line = suite.table([row]).splitlines()[2]
    assert "10 / 20 (predicted)" in line and "not synthesized" in line and "0.062 per MAC" in line
    assert line.count("|") == suite.table([row]).splitlines()[0].count("|")


def test_save_merges_with_what_another_run_wrote(tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "RESULTS", tmp_path / "suite.json")
    suite.save({"ese": {"case": "ese", "v": 1}})
    suite.save({"tiny": {"case": "tiny", "v": 2}})
    suite.save({"ese": {"case": "ese", "v": 3}})
    assert [(r["case"], r["v"]) for r in json.loads((tmp_path / "suite.json").read_text())["results"]] == [
        ("tiny", 2), ("ese", 3)]


def _fake_report(design, *, files, progress=None):
    """What build_report gives, without Yosys: resources that depend on the weights mode only."""
    ram = design.config.hardware.weights == "ram"
    meta = json.loads(files[f"{design.config.hardware.top}.json"])
    from lstm_hw.synth.report import verilog_digest
    res = {"luts": 104 if ram else 100, "lut_logic": 90, "lutram_luts": 10, "srl_luts": 0, "ffs": 210 if ram else 200,
           "dsps": 48, "bram36": 8.0, "ramb36": 8, "ramb18": 0, "carry4": 5, "muxf7": 0, "muxf8": 0}
    path = {"from": "a", "to": "b", "levels": 5, "cells": {}}
    return {"synthesis": {"tool": "fake", "verilog_sha256": verilog_digest({s: files[s] for s in meta["sources"]})},
            "resources": res, "cells": {"LUT6": 1}, "dsp": {"mac_arrays": meta["macs"]},
            "timing": {"levels": 5, "estimated_period_ns": 4.0, "estimated_fmax_mhz": 250.0, "period_path": path}}


def test_weights_benchmark_on_tiny(tmp_path, monkeypatch, capsys):
    """benchmarks/weights.py --only tiny: both modes, the load figures, the table; a rerun reuses the syntheses."""
    import weights
    calls = []
    monkeypatch.setattr(weights, "RESULTS", tmp_path / "weights.json")
    monkeypatch.setattr(suite, "REPORT_RESULTS", tmp_path / "none.json")
    monkeypatch.setattr(weights, "build_report", lambda design, **kw: calls.append(1) or _fake_report(design, **kw))
    monkeypatch.setattr(sys, "argv", ["weights.py", "--only", "tiny"])
    weights.main()
    row = json.loads((tmp_path / "weights.json").read_text())["results"][0]
    assert row["case"] == "tiny" and len(calls) == 2
    rom, ram, c = row["rom"], row["ram"], row["compare"]
    assert rom["synthesis"]["verilog_sha256"] != ram["synthesis"]["verilog_sha256"]
    assert c["lut_overhead_percent"] == 4.0 and c["ff_overhead_percent"] == 5.0 and not c["lut_ff_under_limit"]
    assert c["same_dsp"] and c["same_bram"] and c["fmax_not_lower"]
    assert ram["load_cycles"] == ram["image_words"] + LOAD_OVERHEAD_CYCLES and "image_words" not in rom
    assert len(rom["sum_bits"]) == len(ram["sum_bits"]) == 2
    line = capsys.readouterr().out.splitlines()[2]
    assert line.startswith("| tiny | 32 | 100 / 104 | +4.0 % | 200 / 210 | +5.0 % |")
    assert line.count("|") == weights.table([row]).splitlines()[0].count("|")
    weights.main()                       # the same Verilog: nothing synthesized again
    assert len(calls) == 2


def test_weights_benchmark_with_a_bias_format(tmp_path, monkeypatch):
    """--bias BITS,FRAC builds both modes with that quant.bias and keeps them apart, in weights_bias.json."""
    import weights
    seen = []
    monkeypatch.setattr(weights, "RESULTS", tmp_path / "weights.json")
    monkeypatch.setattr(suite, "REPORT_RESULTS", tmp_path / "none.json")
    monkeypatch.setattr(weights, "build_report",
                        lambda design, **kw: seen.append(design.config.quant.bias) or _fake_report(design, **kw))
    monkeypatch.setattr(sys, "argv", ["weights.py", "--only", "tiny", "--bias", "12,8"])
    weights.main()
    assert seen == [Fixed(12, 8)] * 2 and not (tmp_path / "weights.json").exists()
    row = json.loads((tmp_path / "weights_bias.json").read_text())["results"][0]
    assert row["case"] == "tiny" and row["bias"] == str(Fixed(12, 8))
    monkeypatch.setattr(sys, "argv", ["weights.py", "--bias", "12"])
    with pytest.raises(SystemExit):
        weights.main()


def test_weights_benchmark_with_fitted_sums(tmp_path, monkeypatch):
    """--fit-sums bounds the "ram" design's sums by what its weights need, not the "rom" one's; weights_fit.json."""
    import weights
    seen = []
    monkeypatch.setattr(weights, "RESULTS", tmp_path / "weights.json")
    monkeypatch.setattr(suite, "REPORT_RESULTS", tmp_path / "none.json")
    monkeypatch.setattr(weights, "build_report",
                        lambda design, **kw: seen.append(design.config.hardware) or _fake_report(design, **kw))
    monkeypatch.setattr(sys, "argv", ["weights.py", "--only", "tiny", "--fit-sums"])
    weights.main()
    assert [(h.weights, bool(h.sum_bits)) for h in seen] == [("rom", False), ("ram", True)]
    row = json.loads((tmp_path / "weights_fit.json").read_text())["results"][0]
    assert row["ram"]["sum_bits_bound"] == seen[1].sum_bits == max(row["ram"]["sum_bits"])
    unbounded = build_design(weights.mode_config(suite.CASES["tiny"], "ram"))
    assert seen[1].sum_bits < max(format_sum_bits(p, unbounded.unit_quant(p)) for p in unbounded.layers)
    assert not (tmp_path / "weights.json").exists()
