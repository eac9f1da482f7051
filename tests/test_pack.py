"""Weight images: ``lstm-hw pack`` and ``Accelerator.pack_weights`` against what ``generate`` puts in the memories,
the header against the metadata, and the refusals. That the hardware loads them: tests/sim/test_weights.py."""

import json
import warnings

import numpy as np
import pytest

import lstm_hw
from helpers import SMALL_TOML, assert_one_line_error, invoke, write
from lstm_hw.config.schema import parse_config, read_toml
from lstm_hw.generators.image import DIGEST_WORDS, HEADER_WORDS, MAGIC, WORD_BITS, read_image_header
from lstm_hw.model.design import build_design
from lstm_hw.model.sums import need_sum_bits
from lstm_hw.model.weights import random_weights

# A bias narrower than the product format: its start values' codes sit above constant low bits.
CONFIG = {"model": {"input_size": 8, "hidden_size": 8, "num_layers": 2, "output_size": 2},
          "quant": {"bias": {"bits": 12, "frac": 8}},
          "sparsity": {"banks": 8, "density": 0.5}, "hardware": {"weights": "ram", "rows": 8, "mac_chain": 1}}


def weights(seed: int, scale: float = 1.0) -> dict:
    return {k: scale * v for k, v in random_weights(parse_config({**CONFIG, "model": {**CONFIG["model"],
                                                                                   "seed": seed}})).items()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Model B's design generated, and model A's and B's images packed, by the command line."""
    out = tmp_path_factory.mktemp("pack")
    cfg = write(out / "ram.toml", _toml(CONFIG))
    for name, seed in (("a", 3), ("b", 4)):
        np.savez(out / f"{name}.npz", **weights(seed))
    result = invoke("generate", cfg, "-w", out / "b.npz", "-o", out / "rtl")
    assert result.exit_code == 0, result.output
    images = {}
    for name in ("a", "b"):
        result = invoke("pack", cfg, "-w", out / f"{name}.npz", "-o", out / f"{name}.bin", "--json")
        assert result.exit_code == 0, result.output
        images[name] = ((out / f"{name}.bin").read_bytes(), json.loads(result.stdout))
    meta = json.loads((out / "rtl" / "lstm_top.json").read_text())
    return out, meta, images


def _toml(config: dict) -> str:
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _value(value) -> str:
    """A TOML value: a dict as an inline table."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def words(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4")


def entries(image: np.ndarray, meta: dict) -> dict:
    """The image's contents cut by the metadata's memory list: {path: [[field values] per entry]}."""
    out, at = {}, HEADER_WORDS
    for mem in meta["weights"]["image"]["memories"]:
        rows = []
        for _ in range(mem["depth"]):
            row = []
            for bits in mem["fields"]:
                n = -(-bits // WORD_BITS)
                value = int.from_bytes(image[at:at + n].astype("<u4").tobytes(), "little")
                assert value >> bits == 0, "padding bits above a field are zero"
                row.append(value)
                at += n
            rows.append(row)
        out[mem["path"]] = rows
    assert at == len(image) == meta["weights"]["image"]["words"]
    return out


def test_the_header_is_the_metadata_s(generated):
    _, meta, images = generated
    image = meta["weights"]["image"]
    assert meta["weights"]["memory"] == "ram" and meta["weights"]["port"] == "s_axis_weights"
    for data, info in images.values():
        w = words(data)
        assert int(w[0]) == MAGIC == image["magic"]
        assert [int(x) for x in w[1:1 + DIGEST_WORDS]] == image["digest"]
        assert int(w[1 + DIGEST_WORDS]) == len(w) == image["words"] == info["words"]
        assert info["bytes"] == len(data) and info["load_cycles"] == meta["weights"]["load_cycles"]
        assert info["digest"] == "".join(f"{x:08x}" for x in image["digest"])
        assert read_image_header(data) == (tuple(image["digest"]), len(w))


def test_the_image_holds_what_generate_puts_in_the_memories(generated):
    """Model B's image, cut by the metadata's memory list, holds every weight memory column's ``.mem`` words
    (what the generated design starts with), in order."""
    out, meta, images = generated
    contents = entries(words(images["b"][0]), meta)
    top = meta["top"]
    for mem in meta["weights"]["image"]["memories"]:
        stage, name = mem["path"].split(".")
        if name == "bias":
            continue
        for n in range(len(mem["fields"])):
            text = (out / "rtl" / f"{top}__{stage}__mvm__{name}_c{n}.mem").read_text().split()
            assert [int(line, 16) for line in text] == [row[n] for row in contents[mem["path"]]], mem["path"]
    assert any(len(m["fields"]) > 1 for m in meta["weights"]["image"]["memories"]
               if not m["path"].endswith("bias")), "the config should give a memory of several columns"


def test_the_biases_are_the_accumulators_start_values(generated):
    """A bias field is the code b + (rounding offset >> bias_shift), in two's complement of the field's width,
    hardware row p * rows + lane in entry p, field lane: with the offset's low bits wired below it, the start
    value (b << bias_shift) + offset."""
    _, meta, images = generated
    contents = entries(words(images["b"][0]), meta)
    acc = lstm_hw.convert(weights(4), parse_config(CONFIG), warn=False)
    q = acc.config.quant
    assert q.bias_shift > 0
    offset = 1 << (q.product.frac - q.preact.frac - 1)            # half_up rounding to the pre-activation
    for path, plan in [(f"layer{n}.bias", layer) for n, layer in enumerate(acc.design.layers)] + \
            [("head.bias", acc.design.head)]:
        fields = next(m["fields"] for m in meta["weights"]["image"]["memories"] if m["path"] == path)
        bits = fields[0]
        assert bits == q.bias_format.bits + (offset >> q.bias_shift > 0), path
        got = np.array([[v - (1 << bits) if v >> (bits - 1) else v for v in row] for row in contents[path]])
        src = plan.hw_rows()
        want = np.where(src < 0, 0, np.asarray(plan.b)[np.maximum(src, 0)])
        assert (got.reshape(-1) - want == offset >> q.bias_shift).all(), path


def test_models_differ_only_past_the_header(generated):
    _, _, images = generated
    a, b = words(images["a"][0]), words(images["b"][0])
    assert len(a) == len(b)
    assert (a[:HEADER_WORDS] == b[:HEADER_WORDS]).all()
    assert (a[HEADER_WORDS:] != b[HEADER_WORDS:]).any()


def test_pack_weights_is_pack(generated):
    out, _, images = generated
    acc = lstm_hw.convert(None, parse_config(CONFIG))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert acc.pack_weights(weights(3)) == images["a"][0]
        assert acc.pack_weights(out / "b.npz") == images["b"][0]
    # without weights: its own, which generate put in the memories
    own = lstm_hw.convert(weights(4), parse_config(CONFIG), warn=False)
    assert own.pack_weights() == images["b"][0]


def test_pack_weights_warns_and_strict_refuses():
    config = parse_config({**CONFIG, "sparsity": {"banks": 2, "density": 0.5}})    # (8 banks keep all 8 columns)
    acc = lstm_hw.convert(None, config)
    rng = np.random.default_rng(5)
    dense = {k: rng.uniform(-0.5, 0.5, v.shape) for k, v in weights(5).items()}
    with pytest.warns(lstm_hw.WeightsPrunedWarning):
        acc.pack_weights(dense)
    with pytest.raises(lstm_hw.ConfigError, match="strict"):
        acc.pack_weights(dense, strict=True)


def test_the_digest_names_the_structure_not_the_weights_or_the_part():
    same = [{**CONFIG, "hardware": {**CONFIG["hardware"], "top": "other", "part": "xc7z020clg484-1",
                                    "clock_mhz": 100}},
            {**CONFIG, "model": {**CONFIG["model"], "seed": 9}},
            {**CONFIG, "hardware": {**CONFIG["hardware"], "sum_bits": 0}}]
    other = [{**CONFIG, "hardware": {**CONFIG["hardware"], "sum_bits": 40}},{**CONFIG, "sparsity": {**CONFIG["sparsity"], "density": 0.25}},
             {**CONFIG, "quant": {"weight": {"bits": 8, "frac": 5}}},
             {**CONFIG, "activation": {"segments": 16}},
             {**CONFIG, "hardware": {**CONFIG["hardware"], "mac_chain": 2}}]

    def digest(config):
        return read_image_header(lstm_hw.convert(None, parse_config(config)).pack_weights())[0]

    base = digest(CONFIG)
    assert all(digest(c) == base for c in same)
    assert all(digest(c) != base for c in other)


def test_pack_refusals(tmp_path):
    rom = write(tmp_path / "rom.toml", SMALL_TOML)
    assert_one_line_error(invoke("pack", rom, "-o", tmp_path / "x.bin"), "hardware.weights", '"rom"')
    ram = write(tmp_path / "ram.toml", _toml(CONFIG))
    bigger = {**CONFIG, "model": {**CONFIG["model"], "hidden_size": 12}}
    np.savez(tmp_path / "h12.npz", **random_weights(parse_config(bigger)))
    assert_one_line_error(invoke("pack", ram, "-w", tmp_path / "h12.npz", "-o", tmp_path / "x.bin"), "h12.npz")
    unstructured = write(tmp_path / "u.toml", _toml({**CONFIG, "sparsity": {"pattern": "unstructured"}}))
    assert_one_line_error(invoke("pack", unstructured, "-o", tmp_path / "x.bin"), "hardware.weights",
                          "bank_balanced")
    assert_one_line_error(invoke("pack", ram, "-w", tmp_path / "missing.npz", "-o", tmp_path / "x.bin"),
                          "missing.npz")
    # hardware.sum_bits: the bits the seeded weights' sums need take them; weights four times as large need more.
    design = build_design(parse_config(CONFIG))
    need = max(need_sum_bits(p, design.unit_quant(p)) for p in (*design.layers, design.head))
    narrow = {**CONFIG, "hardware": {**CONFIG["hardware"], "sum_bits": need}}
    assert invoke("pack", write(tmp_path / "n.toml", _toml(narrow)), "-o", tmp_path / "n.bin").exit_code == 0
    np.savez(tmp_path / "x4.npz", **{k: 4 * v for k, v in random_weights(parse_config(CONFIG)).items()})
    assert_one_line_error(invoke("pack", tmp_path / "n.toml", "-w", tmp_path / "x4.npz", "-o", tmp_path / "x.bin"),
                          "hardware.sum_bits", f"is {need}", "x4.npz")
    short = write(tmp_path / "short.toml", _toml({**narrow, "hardware": {**narrow["hardware"], "sum_bits": need - 1}}))
    assert_one_line_error(invoke("pack", short, "-o", tmp_path / "x.bin"), "hardware.sum_bits", "seeded weights")
    assert not (tmp_path / "x.bin").exists()
    assert read_toml(ram)["hardware"]["weights"] == "ram"
