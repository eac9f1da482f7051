"""The PYNQ driver's file: what it may import, its packing against the stream contract, its checks of weight
images, its errors (no RTL)."""

import ast
import importlib.util
import sys
import types

import numpy as np
import pytest

import lstm_hw
from configs import E2E_CONFIGS
from lstm_hw.emit import pynq_driver
from lstm_hw.config.schema import parse_config
from lstm_hw.config.schema import toml_mapping
from lstm_hw.emit.driver import driver_design, driver_text
from lstm_hw.model.pruning import WeightsPrunedWarning
from lstm_hw.model.weights import random_weights
from lstm_hw.sim.beats import input_beats, output_elements


@pytest.fixture(scope="module")
def design():
    config = E2E_CONFIGS["lanes4_parallel_head"]
    return lstm_hw.convert(None, {**config, "hardware": {**config["hardware"], "board": "pynq-z2"}})


RAM = {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2}, "sparsity": {"banks": 2},
       "hardware": {"board": "pynq-z2", "weights": "ram"}}


@pytest.fixture(scope="module")
def ram():
    """A design with run-time weights (model A, seeded) and model B's weights, pruned to the same config."""
    weights_b = random_weights(parse_config({**RAM, "model": {**RAM["model"], "seed": 5}}))
    return lstm_hw.convert(None, RAM), weights_b, lstm_hw.convert(weights_b, RAM, warn=False).pack_weights()


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
    assert imported == {"numpy", "pynq", "time", "lstm_hw"}
    # lstm_hw only where weights are packed, which images (bytes, .bin) never need
    packers = [f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               and any(isinstance(n, ast.Import) and n.names[0].name == "lstm_hw" for n in ast.walk(f))]
    assert packers == ["pack_weights"]
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


def _driver_on(tmp_path, design, monkeypatch, dma, **ips):
    """The driver of ``design`` on a stand-in ``pynq`` whose overlay holds ``dma`` and ``ips`` by name."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.py").write_text(driver_text(design.metadata))
    pynq = types.ModuleType("pynq")
    pynq.allocate = lambda shape, dtype: np.zeros(shape, dtype)

    class Overlay:
        def __init__(self, bitfile):
            setattr(self, driver_design(design.metadata)["dma"], dma)
            for name, ip in ips.items():
                setattr(self, name, ip)

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


# -- run-time weights: load_weights ------------------------------------------------------------


class _DoneChannel:
    """A DMA channel whose transfers finish at once; it keeps a copy of each buffer it was given."""

    idle = True

    def __init__(self):
        self.sent = []

    def transfer(self, array):
        self.sent.append(np.array(array))

    def wait(self):
        pass


class _InputGpio:
    """An AXI GPIO with one input bit (weights_ok), read at GPIO_DATA."""

    def __init__(self, value=1):
        self.value = value
        self.reads = 0

    def read(self, offset=0):
        assert offset == 0x0
        self.reads += 1
        return self.value


def _ram_driver(tmp_path, design, monkeypatch, weights_ok=1, weights_channel=None):
    """The driver of ``design`` on a stand-in overlay: ``(acc, the weights DMA's channel, the GPIO)``."""
    d = driver_design(design.metadata)
    channel, gpio = weights_channel or _DoneChannel(), _InputGpio(weights_ok)
    dma = types.SimpleNamespace(sendchannel=_StuckChannel(), recvchannel=_StuckChannel())
    weights_dma = types.SimpleNamespace(sendchannel=channel, recvchannel=None)
    driver = _driver_on(tmp_path, design, monkeypatch, dma,
                        **{d["weights"]["dma"]: weights_dma, d["weights"]["gpio"]: gpio})
    return driver.LstmAccelerator("system.bit", timeout=0.05), channel, gpio


def _words(image: bytes) -> list[int]:
    return np.frombuffer(image, dtype="<u4").tolist()


def test_the_driver_knows_the_image_the_design_takes(ram, design):
    acc = ram[0]
    meta = acc.metadata
    d = driver_design(meta)["weights"]
    image = meta["weights"]["image"]
    assert (d["dma"], d["gpio"]) == (meta["system"]["weights_dma"], meta["system"]["weights_gpio"]) == \
        ("weights_dma", "weights_gpio")
    assert (d["magic"], d["digest"], d["header_words"], d["words"], d["word_bits"]) == \
        (image["magic"], image["digest"], image["header_words"], image["words"], 32)
    # the config, as the TOML states it, is the design's own
    assert parse_config(d["config"]) == parse_config(toml_mapping(meta["config"]))
    assert parse_config(d["config"]).to_dict() == acc.config.to_dict()
    # a ROM design has no weight port
    assert driver_design(design.metadata)["weights"] is None


@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "bin str", "bin Path"])
def test_load_weights_sends_an_image_as_one_transfer(ram, form, tmp_path, monkeypatch):
    acc_a, _, image_b = ram
    acc, channel, gpio = _ram_driver(tmp_path, acc_a, monkeypatch)
    (tmp_path / "b.bin").write_bytes(image_b)
    arg = {"bytes": image_b, "bytearray": bytearray(image_b), "memoryview": memoryview(image_b),
           "bin str": str(tmp_path / "b.bin"), "bin Path": tmp_path / "b.bin"}[form]
    acc.load_weights(arg)
    assert len(channel.sent) == 1 and channel.sent[0].dtype == np.uint32
    assert channel.sent[0].tolist() == _words(image_b)
    assert gpio.reads == 1


@pytest.mark.parametrize("form", ["dict", "npz str", "npz Path"])
def test_load_weights_packs_arrays_with_lstm_hw(ram, form, tmp_path, monkeypatch):
    acc_a, weights_b, image_b = ram
    acc, channel, _ = _ram_driver(tmp_path, acc_a, monkeypatch)
    np.savez(tmp_path / "b.npz", **weights_b)
    arg = {"dict": weights_b, "npz str": str(tmp_path / "b.npz"), "npz Path": tmp_path / "b.npz"}[form]
    with pytest.warns(WeightsPrunedWarning):    # dense weights: lstm_hw says what the pruning dropped
        acc.load_weights(arg)
    assert [sent.tolist() for sent in channel.sent] == [_words(image_b)]


def test_without_lstm_hw_images_load_and_arrays_are_refused(ram, tmp_path, monkeypatch):
    acc_a, weights_b, image_b = ram
    acc, channel, _ = _ram_driver(tmp_path, acc_a, monkeypatch)
    monkeypatch.setitem(sys.modules, "lstm_hw", None)    # import lstm_hw fails, as on a board without it
    acc.load_weights(image_b)
    with pytest.raises(ImportError) as e:
        acc.load_weights(weights_b)
    message = str(e.value)
    assert "\n" not in message and "lstm_hw, which is not installed here" in message
    assert "`lstm-hw pack CONFIG -w WEIGHTS -o image.bin`" in message
    assert len(channel.sent) == 1


def _bad_images(acc_a, image_b):
    """Images this design must refuse, each with the start of its one-line message."""
    words = np.frombuffer(image_b, dtype="<u4").copy()
    magic = words.copy()
    magic[0] ^= 1
    header_length = words.copy()
    header_length[5] += 1
    other = lstm_hw.convert(None, {**RAM, "quant": {"activation": {"bits": 16, "frac": 11}}}).pack_weights()
    bigger = lstm_hw.convert(None, {**RAM, "model": {**RAM["model"], "hidden_size": 6}}).pack_weights()
    n = len(words)
    return {
        "partial word": (image_b[:-1], f"the weight image is {4 * n - 1} bytes, not a whole number of 32-bit words"),
        "empty": (b"", "the weight image is 0 words, shorter than its 6-word header"),
        "header cut": (image_b[:20], "the weight image is 5 words, shorter than its 6-word header"),
        "magic": (magic.tobytes(), f"not a weight image: its first word is 0x{int(magic[0]):08x}, not the magic "
                                   f"word 0x{int(words[0]):08x}"),
        "other structure": (other, "the weight image is for another structure: digest "),
        "other size": (bigger, "the weight image is for another structure: digest "),
        "header length": (header_length.tobytes(), f"the weight image's header says {n + 1} words, this design "
                                                   f"takes {n}"),
        "cut short": (image_b[:-4], f"the weight image is {n - 1} words, its header says {n}"),
        "too long": (image_b + image_b[-4:], f"the weight image is {n + 1} words, its header says {n}"),
    }


def test_a_wrong_image_is_refused_before_the_hardware(ram, tmp_path, monkeypatch):
    acc_a, _, image_b = ram
    acc, channel, gpio = _ram_driver(tmp_path, acc_a, monkeypatch)
    for what, (data, message) in _bad_images(acc_a, image_b).items():
        with pytest.raises(ValueError) as e:
            acc.load_weights(data)
        assert str(e.value).startswith(message) and "\n" not in str(e.value), what
    assert channel.sent == [] and gpio.reads == 0
    # the digest mismatch names both digests, in hex
    digest = "".join(f"{w:08x}" for w in acc_a.metadata["weights"]["image"]["digest"])
    with pytest.raises(ValueError, match=f"this design takes {digest} "):
        acc.load_weights(_bad_images(acc_a, image_b)["other structure"][0])


def test_an_image_longer_than_a_transfer_is_refused(ram, tmp_path, monkeypatch):
    acc_a, _, image_b = ram
    acc, channel, _ = _ram_driver(tmp_path, acc_a, monkeypatch)
    monkeypatch.setitem(acc.load_weights.__globals__["DESIGN"], "max_transfer_bytes", len(image_b) - 1)
    with pytest.raises(ValueError, match=f"the weight image is {len(image_b)} bytes, more than the DMA's longest "
                                         f"transfer of {len(image_b) - 1} bytes"):
        acc.load_weights(image_b)
    assert channel.sent == []


def test_weights_ok_low_after_the_load_raises(ram, tmp_path, monkeypatch):
    acc_a, _, image_b = ram
    acc, channel, gpio = _ram_driver(tmp_path, acc_a, monkeypatch, weights_ok=0)
    assert acc.weights_ok is False
    with pytest.raises(RuntimeError, match=r"the core did not accept the weight image \(weights_ok is low after "
                                           r"the load\): the data stream waits until a good image is loaded"):
        acc.load_weights(image_b)
    assert len(channel.sent) == 1 and gpio.reads == 2
    gpio.value = 1
    assert acc.weights_ok is True


def test_a_load_that_never_ends_raises_a_timeout(ram, tmp_path, monkeypatch):
    acc_a, _, image_b = ram
    acc, _, gpio = _ram_driver(tmp_path, acc_a, monkeypatch, weights_channel=_StuckChannel())
    with pytest.raises(TimeoutError, match=r"MM2S \(weights\) channel did not finish within 0.05 s"):
        acc.load_weights(image_b)
    assert gpio.reads == 0


def test_load_weights_refuses_what_it_cannot_load(ram, design, tmp_path, monkeypatch):
    acc_a, _, image_b = ram
    acc, channel, _ = _ram_driver(tmp_path, acc_a, monkeypatch)
    with pytest.raises(TypeError, match="weights must be an image's bytes, a path to a .bin image or a model "
                                        "file, or a dict of arrays, not int"):
        acc.load_weights(42)
    with pytest.raises(FileNotFoundError):
        acc.load_weights(str(tmp_path / "missing.bin"))
    assert channel.sent == []
    # weights in ROM: nothing to load, and they are always good
    dma = types.SimpleNamespace(sendchannel=_StuckChannel(), recvchannel=_StuckChannel())
    rom = _driver_on(tmp_path / "rom", design, monkeypatch, dma).LstmAccelerator("system.bit")
    assert rom.weights_ok is True
    with pytest.raises(RuntimeError, match=r'lstm_top has its weights in ROM \(hardware.weights = "rom"\): '
                                           r'generate it with "ram" to load weights'):
        rom.load_weights(image_b)
