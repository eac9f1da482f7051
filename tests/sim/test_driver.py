"""The generated PYNQ driver, unmodified, against the RTL through a simulated AXI DMA, under both simulators."""

import numpy as np
import pytest

import lstm_hw
from configs import E2E_CONFIGS
from helpers import SIMULATORS
from lstm_hw.sim.runner import run_cocotb

# The default design; four elements a beat with a head in another format; h_T only, two lanes a beat.
CASES = ["default", "lanes4_parallel_head", "lanes2_unpack_last"]


def on_pynq_z2(case: str) -> dict:
    config = E2E_CONFIGS[case]
    return {**config, "hardware": {**config.get("hardware", {}), "board": "pynq-z2"}}


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("case", CASES)
def test_driver_is_bit_exact_with_predict(case, sim, tmp_path):
    acc = lstm_hw.convert(None, on_pynq_z2(case))
    meta = acc.metadata
    rtl = tmp_path / "rtl"
    acc.write(rtl)
    driver = rtl / meta["system"]["driver"]      # the file generate wrote, as it is
    rng = np.random.default_rng(7)
    n_in = meta["input"]["elements_per_timestep"]
    # Ties between two codes (they round up), and values beyond the format's range (they saturate).
    ties = (rng.integers(-40, 40, (4, n_in)) + 0.5) * 2.0 ** -meta["input"]["frac"]
    inputs = {"one": rng.uniform(-1.5, 1.5, (5, n_in)), "batch": rng.uniform(-9, 9, (3, 4, n_in)),
              "short": rng.uniform(-1, 1, (2, 1, n_in)), "ties": ties}
    np.savez(tmp_path / "x.npz", **inputs)
    run, failed = run_cocotb(sim=sim, sources=[rtl / s for s in meta["sources"]], toplevel=meta["top"],
                             test_module="lstm_hw.sim.tb_driver", build_dir=tmp_path / sim,
                             env={"LSTM_HW_DRIVER": str(driver), "LSTM_HW_X": str(tmp_path / "x.npz"),
                                  "LSTM_HW_RESULT": str(tmp_path / "y.npz"), "LSTM_HW_SEED": "3"})
    assert (run, failed) == (1, 0), (tmp_path / sim / "test.log").read_text()[-3000:]
    got = np.load(tmp_path / "y.npz")
    for name, x in inputs.items():
        want = acc.predict(x)
        assert got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    # One transfer each way per sequence: 1 + 3 + 2 + 1.
    assert got["transfers"].tolist() == [7, 7]
