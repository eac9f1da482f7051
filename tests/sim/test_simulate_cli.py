"""lstm-hw simulate from the command line: no idle and no backpressure, its -o output, and given weights."""

import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import bbs_weights
from lstm_hw.cli import main
from lstm_hw.config import parse_config

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
def test_simulate_without_idle_matches_golden_output(sim, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TOML)
    # The user's own weights, already sparse in another pattern: the lines say what the hardware drops.
    np.savez(tmp_path / "w.npz", **bbs_weights(parse_config(tomllib.loads(TOML))))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-1, 1, (2, 4, 3)))
    result = CliRunner().invoke(main, ["simulate", str(cfg), "-w", str(tmp_path / "w.npz"), "--sim", sim,
                                       "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                                       "--build-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output + result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warned and all("non-zeros kept" in line for line in warned), result.stderr
    golden = CliRunner().invoke(main, ["golden", str(cfg), "-w", str(tmp_path / "w.npz"),
                                       "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "g.npy")])
    assert golden.exit_code == 0, golden.output
    assert [line for line in golden.stderr.splitlines() if line.startswith("warning: ")] == warned
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "g.npy"))
