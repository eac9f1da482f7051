"""lstm-hw simulate from the command line: no idle and no backpressure, and its -o output."""

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_hw.cli import main

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
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-1, 1, (2, 4, 3)))
    result = CliRunner().invoke(main, ["simulate", str(cfg), "--sim", sim, "-i", str(tmp_path / "x.npy"),
                                       "-o", str(tmp_path / "y.npy"), "--build-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output + result.stderr
    golden = CliRunner().invoke(main, ["golden", str(cfg), "-i", str(tmp_path / "x.npy"),
                                       "-o", str(tmp_path / "g.npy")])
    assert golden.exit_code == 0, golden.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "g.npy"))
