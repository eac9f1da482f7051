"""The PYNQ driver's file: what it may import, its packing against the stream contract, its errors (no RTL)."""

import ast
import importlib.util
import sys
import types

import numpy as np
import pytest

import lstm_hw
from configs import E2E_CONFIGS
from lstm_hw.emit import pynq_driver
from lstm_hw.emit.driver import driver_design, driver_text
from lstm_hw.sim.beats import input_beats, output_elements


@pytest.fixture(scope="module")
def design():
    config = E2E_CONFIGS["lanes4_parallel_head"]
    return lstm_hw.convert(None, {**config, "hardware": {**config["hardware"], "board": "pynq-z2"}})


def load(path, name="driver_under_test"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_file_runs_on_pynq_python_with_numpy_and_pynq_only(design, tmp_path):
    written = design.write(tmp_path / "out")
    text = (tmp_path / "out" / design.metadata["system"]["driver"]).read_text()
    assert text == driver_text(design.metadata) and any(p.name.endswith("_driver.py") for p in written)
    tree = ast.parse(text, feature_version=(3, 10))   # PYNQ images ship Python 3.10
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"numpy", "pynq", "time"}
    (tmp_path / "d.py").write_text(text)
    assert load(tmp_path / "d.py").DESIGN == driver_design(design.metadata)
    # The metadata's own figures, not the defaults: four lanes, a 12-bit output in 16-bit fields.
    d = driver_design(design.metadata)
    assert (d["lanes"], d["output"]["bits"], d["output"]["width"]) == (4, 12, 16)
    assert d["dma"] == design.metadata["system"]["dma"]


def test_no_driver_without_a_zynq_board():
    for hardware in ({}, {"board": "kc705", "part": "xc7k325tffg900-2"}):
        acc = lstm_hw.convert(None, {"hardware": hardware})
        assert "system" not in acc.metadata
        assert not [f for f in acc.files if f.endswith("_driver.py")]
        with pytest.raises(ValueError, match="no Zynq system"):
            driver_text(acc.metadata)


def test_the_template_itself_refuses_to_run():
    with pytest.raises(RuntimeError, match="template"):
        pynq_driver.LstmAccelerator("x.bit")


@pytest.mark.parametrize("lanes,bits", [(1, 16), (4, 12), (3, 8), (2, 24), (5, 1)])
def test_pack_gives_the_beats_of_the_stream_contract(lanes, bits):
    rng = np.random.default_rng(lanes * 100 + bits)
    width = 8 * -(-bits // 8)
    elements = 7
    codes = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (3, elements))
    raw = pynq_driver.pack(codes, lanes, width)
    words = [int.from_bytes(row.tobytes(), "little") for row in raw]
    want = [word for word, _ in input_beats([codes], lanes, width)]
    assert words == want
    # unpack reads them back, as the output side of the contract defines it
    elems = output_elements([(w, False) for w in words], lanes, width, bits, elements)
    assert [v for v, _, _ in elems] == codes.ravel().tolist()
    np.testing.assert_array_equal(pynq_driver.unpack(raw, lanes, width, elements), codes)


def test_quantize_is_the_golden_models(design):
    from lstm_hw.numerics.fixed import Fixed, quantize_real
    fmt = Fixed(bits=10, frac=6)
    x = np.concatenate([np.random.default_rng(1).uniform(-20, 20, 500), (np.arange(-600, 600) + 0.5) / 64])
    np.testing.assert_array_equal(pynq_driver.quantize(x, 10, 6), quantize_real(x, fmt))
    with pytest.raises(ValueError, match="NaN"):
        pynq_driver.quantize([0.0, np.nan], 10, 6)


class _StuckChannel:
    """A DMA channel that never finishes: no clock, no reset, or a core that never answers."""

    idle = False

    def transfer(self, array):
        pass

    def wait(self):
        raise AssertionError("wait() before idle")


def _driver_on(tmp_path, design, monkeypatch, dma):
    (tmp_path / "d.py").write_text(driver_text(design.metadata))
    pynq = types.ModuleType("pynq")
    pynq.allocate = lambda shape, dtype: np.zeros(shape, dtype)

    class Overlay:
        def __init__(self, bitfile):
            setattr(self, driver_design(design.metadata)["dma"], dma)

    pynq.Overlay = Overlay
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    return load(tmp_path / "d.py")


def test_a_transfer_that_never_ends_raises_a_timeout(design, tmp_path, monkeypatch):
    dma = types.SimpleNamespace(sendchannel=_StuckChannel(), recvchannel=_StuckChannel())
    driver = _driver_on(tmp_path, design, monkeypatch, dma)
    acc = driver.LstmAccelerator("system.bit", timeout=0.05)
    with pytest.raises(TimeoutError, match=r"MM2S \(input\) channel did not finish within 0.05 s"):
        acc.predict(np.zeros((2, 6)))


@pytest.mark.parametrize("shape", [(6,), (2, 5), (1, 0, 6), (2, 2, 2, 6)])
def test_predict_refuses_an_input_of_the_wrong_shape(design, tmp_path, monkeypatch, shape):
    dma = types.SimpleNamespace(sendchannel=_StuckChannel(), recvchannel=_StuckChannel())
    acc = _driver_on(tmp_path, design, monkeypatch, dma).LstmAccelerator("system.bit")
    with pytest.raises(ValueError, match=r"x must be \(T, 6\) or \(N, T, 6\)"):
        acc.predict(np.zeros(shape))
