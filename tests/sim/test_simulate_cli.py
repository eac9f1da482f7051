"""lstm-hw simulate from the command line: no idle and no backpressure, its -o output, and given weights."""

import re
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import bbs_weights
from lstm_hw.cli import main
from lstm_hw.config.schema import parse_config

# A head whose output format differs from the activation format: -o must use the output's.
TOML = """\
[model]
input_size = 3
hidden_size = 4
num_layers = 1
output_size = 2
[quant]
output = { bits = 12, frac = 7 }
[sparsity]
banks = 2
"""


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_simulate_without_idle_matches_golden_output(sim, tmp_path, monkeypatch):
    from lstm_hw import progress
    monkeypatch.chdir(tmp_path)  # every path relative to where the user stands
    monkeypatch.setattr(progress, "CLI_DELAY", 0.0)  # every stage line, however quick
    (tmp_path / "c.toml").write_text(TOML)
    # The user's own weights, already sparse in another pattern: the lines say what the hardware drops.
    np.savez(tmp_path / "w.npz", **bbs_weights(parse_config(tomllib.loads(TOML))))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-1, 1, (2, 4, 3)))
    result = CliRunner().invoke(main, ["simulate", "c.toml", "-w", "w.npz", "--sim", sim, "-i", "x.npy",
                                       "-o", "y.npy", "--build-dir", "b"])
    assert result.exit_code == 0, result.output + result.stderr
    assert (tmp_path / "b" / sim).is_dir()
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warned and all("non-zeros kept" in line for line in warned), result.stderr
    stages = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    want = ["golden model", "generate RTL", f"build: {sim}", f"run: {sim}", "simulate: 8 timesteps"]
    assert [s for s in stages if s in want] == want, stages
    assert re.fullmatch(r"simulate: 8 of 8 timesteps in \d+\.\d s", stages[-1]), stages
    if sim == "verilator":  # the build's phases, from its log
        assert "build: compile C++ (make)" in stages and "build: link" in stages, stages
    golden = CliRunner().invoke(main, ["golden", "c.toml", "-w", "w.npz", "-i", "x.npy", "-o", "g.npy"])
    assert golden.exit_code == 0, golden.output
    assert [line for line in golden.stderr.splitlines() if line.startswith("warning: ")] == warned
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "g.npy"))
