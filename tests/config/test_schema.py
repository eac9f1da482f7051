"""Config: defaults, the documented TOML, and one clear error per bad key."""

import dataclasses
import tomllib

import pytest

from lstm_hw.config.schema import (
    DEFAULT_TOML,
    ActivationConfig,
    Config,
    HardwareConfig,
    ModelConfig,
    QuantConfig,
    SparsityConfig,
    h_group,
    h_write_group,
    io_lanes_fit,
    load_config,
    parse_config,
)
from lstm_hw.errors import ConfigError, LstmHwError
from lstm_hw.numerics.fixed import Fixed

EXAMPLE_TOML = """\
[model]
input_size = 5
hidden_size = 12
num_layers = 2
return_sequences = true
[quant]
weight = { bits = 8, frac = 6 }
activation = { bits = 16, frac = 12 }
[sparsity]
banks = 4
density = 0.5
[activation]
method = "pwl"
segments = 32
[hardware]
top = "lstm_top"
part = "xc7z020clg400-1"
clock_mhz = 200
"""


def test_default_config_is_the_empty_config():
    assert Config() == parse_config({})
    assert load_config(None) == Config()


def test_default_toml_parses_to_the_defaults():
    assert parse_config(tomllib.loads(DEFAULT_TOML)) == Config()


def test_a_config_s_mapping_parses_back():
    """config_mapping of a Config (what convert and compress take) is the TOML's shape: it parses to the same
    resolved config (the optional formats stated)."""
    from lstm_hw.config.schema import config_mapping
    config = parse_config({"quant": {"weight": {"bits": 6, "frac": 4}, "bias": {"bits": 20, "frac": 14}},
                           "model": {"output_size": 3}, "hardware": {"weights": "ram"}})
    for c in (config, Config()):
        assert parse_config(config_mapping(c)).to_dict() == c.to_dict()


def test_default_toml_documents_every_key():
    data = tomllib.loads(DEFAULT_TOML)
    assert set(data) == {f.name for f in dataclasses.fields(Config)}
    for section in dataclasses.fields(Config):
        documented = set(data[section.name])
        if section.name == "quant":
            documented |= {"bias", "output"}   # commented out: their defaults depend on the other formats
        assert documented == {f.name for f in dataclasses.fields(getattr(Config(), section.name))}


def test_default_toml_states_the_bias_default_truthfully():
    uncommented = DEFAULT_TOML.replace("# bias = ", "bias = ")
    assert uncommented != DEFAULT_TOML
    explicit = parse_config(tomllib.loads(uncommented))
    assert explicit.quant.bias is not None
    assert explicit.quant.bias_format == Config().quant.bias_format
    assert explicit.to_dict() == Config().to_dict()


def test_default_toml_states_the_output_default_truthfully():
    uncommented = DEFAULT_TOML.replace("# output = ", "output = ")
    assert uncommented != DEFAULT_TOML
    explicit = parse_config(tomllib.loads(uncommented))
    assert explicit.quant.output is not None
    assert explicit.quant.output_format == Config().quant.output_format == Config().quant.activation
    assert explicit.to_dict() == Config().to_dict()


def test_head_keys_and_defaults():
    c = Config()
    assert (c.model.output_size, c.sparsity.head_density, c.quant.output) == (0, 1.0, None)
    c = parse_config({"model": {"output_size": 3}, "sparsity": {"head_density": 0.25},
                      "quant": {"output": {"bits": 12, "frac": 7}}})
    assert (c.model.output_size, c.sparsity.head_density) == (3, 0.25)
    assert c.quant.output_format == Fixed(12, 7)
    assert c.to_dict()["quant"]["output"] == {"bits": 12, "frac": 7, "signed": True}
    assert Config().to_dict()["quant"]["output"] == Config().to_dict()["quant"]["activation"]


def test_default_toml_file_round_trip(tmp_path):
    path = tmp_path / "lstm.toml"
    path.write_text(DEFAULT_TOML, encoding="utf-8")
    assert load_config(path) == Config()
    assert load_config(str(path)) == Config()


def test_example_toml():
    c = parse_config(tomllib.loads(EXAMPLE_TOML))
    assert c.model == ModelConfig(input_size=5, hidden_size=12, num_layers=2, return_sequences=True)
    assert c.quant.weight == Fixed(8, 6)
    assert c.quant.activation == Fixed(16, 12)
    assert c.sparsity == SparsityConfig(banks=4, density=0.5)
    assert (c.activation.method, c.activation.segments) == ("pwl", 32)
    assert (c.hardware.top, c.hardware.part) == ("lstm_top", "xc7z020clg400-1")
    assert c.hardware.clock_mhz == 200.0 and isinstance(c.hardware.clock_mhz, float)


def test_partial_config_keeps_other_defaults():
    c = parse_config({"model": {"hidden_size": 7}, "quant": {"rounding": "truncate"}})
    d = Config()
    assert c.model == dataclasses.replace(d.model, hidden_size=7)
    assert c.quant == dataclasses.replace(d.quant, rounding="truncate")
    assert (c.sparsity, c.activation, c.hardware) == (d.sparsity, d.activation, d.hardware)


def test_product_and_bias_formats():
    q = parse_config({"quant": {"weight": {"bits": 6, "frac": 4}, "activation": {"bits": 12, "frac": 9}}}).quant
    assert q.product == Fixed(18, 13)
    assert q.bias_format == Fixed(18, 13)
    q = parse_config({"quant": {"bias": {"bits": 20, "frac": 10}}}).quant
    assert q.bias_format == Fixed(20, 10)


def test_config_is_frozen():
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.model.hidden_size = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.model = ModelConfig()


def test_macs_and_layer_inputs():
    c = parse_config({"model": {"input_size": 3, "hidden_size": 9, "num_layers": 3},
                      "sparsity": {"banks": 3}, "hardware": {"rows": 8}})
    assert c.macs == 24
    assert [c.layer_input_size(k) for k in range(3)] == [3, 9, 9]


# -- valid edge cases -------------------------------------------------------------

VALID = {
    "banks_equal_columns": {"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1},
                            "sparsity": {"banks": 7}},
    "banks_fit_every_layer": {"model": {"input_size": 20, "hidden_size": 12, "num_layers": 1},
                              "sparsity": {"banks": 25}},
    "density_one": {"sparsity": {"density": 1}},
    "density_tiny": {"sparsity": {"density": 0.001}},
    "one_bank": {"sparsity": {"banks": 1}},
    "segments_one": {"activation": {"segments": 1}},
    "segments_max": {"activation": {"segments": 4096, "sigmoid_range": 8.0, "tanh_range": 4.0}},
    "rows_1": {"hardware": {"rows": 1}},
    "rows_2": {"hardware": {"rows": 2}},
    "rows_12": {"hardware": {"rows": 12}},
    "rows_256": {"hardware": {"rows": 256}},
    "io_lanes_banks": {"hardware": {"io_lanes": 4}},
    "io_lanes_multiple_of_group": {"hardware": {"rows": 8, "io_lanes": 4}},   # 2 h per cycle, 2 groups a beat
    "io_lanes_divides_group": {"hardware": {"rows": 16, "io_lanes": 2}},      # 4 h per cycle, 2 beats
    "io_lanes_serial_h": {"hardware": {"rows": 12, "io_lanes": 2}, "sparsity": {"banks": 2}},  # 3 lanes > 2 banks
    "mac_chain_tree": {"hardware": {"mac_chain": 1}},
    "mac_chain_longest": {"hardware": {"mac_chain": 16}},       # longer than the 4 banks: one chain
    "top_underscore": {"hardware": {"top": "_lstm2"}},
    "top_keyword_case": {"hardware": {"top": "Module"}},
    "part_artix": {"hardware": {"part": "xc7a35tcpg236-1"}},
    "part_kintex_low_power": {"hardware": {"part": "xc7k325tffg900-2L"}},
    "part_upper_case": {"hardware": {"part": "XC7Z010CLG400-1"}},
    "clock_edges": {"hardware": {"clock_mhz": 1}},
    "clock_max": {"hardware": {"clock_mhz": 800.0}},
    "bias_frac_equal_product": {"quant": {"bias": {"bits": 24, "frac": 18}}},
    "tanh_range_fills_preact": {"activation": {"tanh_range": 16.0}},
    "sigmoid_range_fills_preact": {"activation": {"sigmoid_range": 16.0}},
    "truncate": {"quant": {"rounding": "truncate"}},
    "return_sequences_false": {"model": {"return_sequences": False}},
    "sixteen_layers": {"model": {"num_layers": 16}},
    "seed_max": {"model": {"seed": 2 ** 32 - 1}},
    "head": {"model": {"output_size": 10}},
    "head_max": {"model": {"output_size": 4096}},
    "head_sparse": {"model": {"output_size": 3}, "sparsity": {"head_density": 0.01}},
    "head_output_format": {"model": {"output_size": 3}, "quant": {"output": {"bits": 24, "frac": 18}}},
    "head_output_frac_lowest": {"model": {"output_size": 3}, "quant": {"output": {"bits": 24, "frac": -22}}},
    "head_banks_equal_hidden": {"model": {"output_size": 3, "hidden_size": 4}, "sparsity": {"banks": 4}},
    "sequence_length": {"model": {"sequence_length": 1}},
    "sequence_length_max": {"model": {"sequence_length": 2 ** 24}},
    "stateful": {"model": {"stateful": True, "sequence_length": 0}},
    "output_format_without_head": {"quant": {"output": {"bits": 24, "frac": 48}}},   # unused: not checked
    "narrow_formats": {"quant": {"weight": {"bits": 2, "frac": 1}, "activation": {"bits": 4, "frac": 2},
                                 "preact": {"bits": 8, "frac": 3}, "cell": {"bits": 8, "frac": 2},
                                 "nonlin": {"bits": 4, "frac": 2}},
                       "activation": {"segments": 4, "sigmoid_range": 8.0, "tanh_range": 4.0}},
}


@pytest.mark.parametrize("data", VALID.values(), ids=VALID.keys())
def test_valid_edge_configs(data):
    c = parse_config(data)
    for section, values in data.items():
        for key, value in values.items():
            got = getattr(getattr(c, section), key)
            if isinstance(value, dict):
                assert got == Fixed(value["bits"], value["frac"])
            else:
                assert got == value


# -- invalid configs: each names its key path -------------------------------------

def fmt(bits, frac):
    return {"bits": bits, "frac": frac}


INVALID = [
    # structure
    ({"modle": {}}, "modle"),
    ({"model": {}, "extra": 1}, "extra"),
    ({"model": 3}, "model"),
    ({"hardware": "lstm_top"}, "hardware"),
    ({"activation": []}, "activation"),
    ({"model": {"hiden_size": 4}}, "model.hiden_size"),
    ({"sparsity": {"bank": 4}}, "sparsity.bank"),
    ({"quant": {"weights": fmt(8, 6)}}, "quant.weights"),
    ({"quant": {"weight": {"bits": 8, "frac": 6, "signed": True}}}, "quant.weight.signed"),
    ({"hardware": {"clock": 100}}, "hardware.clock"),
    # types
    ({"model": {"input_size": True}}, "model.input_size"),
    ({"model": {"input_size": 5.0}}, "model.input_size"),
    ({"model": {"hidden_size": "12"}}, "model.hidden_size"),
    ({"model": {"num_layers": [2]}}, "model.num_layers"),
    ({"model": {"return_sequences": 1}}, "model.return_sequences"),
    ({"model": {"return_sequences": "true"}}, "model.return_sequences"),
    ({"model": {"seed": 1.5}}, "model.seed"),
    ({"sparsity": {"density": "0.5"}}, "sparsity.density"),
    ({"sparsity": {"density": True}}, "sparsity.density"),
    ({"sparsity": {"density": float("nan")}}, "sparsity.density"),
    ({"sparsity": {"banks": 4.0}}, "sparsity.banks"),
    ({"quant": {"weight": {"bits": 8.0, "frac": 6}}}, "quant.weight.bits"),
    ({"quant": {"weight": {"bits": 8, "frac": 6.0}}}, "quant.weight.frac"),
    ({"quant": {"activation": {"bits": True, "frac": 12}}}, "quant.activation.bits"),
    ({"quant": {"weight": 8}}, "quant.weight"),
    ({"quant": {"weight": "s8.6"}}, "quant.weight"),
    ({"quant": {"bias": 24}}, "quant.bias"),
    ({"quant": {"rounding": 1}}, "quant.rounding"),
    ({"activation": {"segments": 32.0}}, "activation.segments"),
    ({"activation": {"sigmoid_range": "8"}}, "activation.sigmoid_range"),
    ({"activation": {"tanh_range": float("inf")}}, "activation.tanh_range"),
    ({"hardware": {"top": 5}}, "hardware.top"),
    ({"hardware": {"clock_mhz": "200"}}, "hardware.clock_mhz"),
    ({"hardware": {"rows": 4.0}}, "hardware.rows"),
    # formats
    ({"quant": {"weight": {"bits": 8}}}, "quant.weight.frac"),
    ({"quant": {"weight": {"frac": 6}}}, "quant.weight.bits"),
    ({"quant": {"weight": {}}}, "quant.weight.bits"),
    ({"quant": {"activation": fmt(1, 0)}}, "quant.activation.bits"),
    ({"quant": {"weight": fmt(25, 6)}}, "quant.weight.bits"),
    ({"quant": {"weight": fmt(8, 17)}}, "quant.weight.frac"),
    ({"quant": {"weight": fmt(8, -9)}}, "quant.weight.frac"),
    ({"quant": {"rounding": "nearest"}}, "quant.rounding"),
    ({"quant": {"bias": fmt(24, 19)}}, "quant.bias.frac"),
    ({"quant": {"weight": fmt(8, 4), "bias": fmt(24, 17)}}, "quant.bias.frac"),   # product frac is 16
    ({"quant": {"nonlin": fmt(16, 16)}}, "quant.nonlin"),
    ({"quant": {"nonlin": fmt(8, 0)}}, "quant.nonlin"),
    ({"model": {"output_size": 2.0}}, "model.output_size"),
    ({"sparsity": {"head_density": "1"}}, "sparsity.head_density"),
    ({"quant": {"output": 16}}, "quant.output"),
    ({"quant": {"output": {"bits": 16}}}, "quant.output.frac"),
    ({"quant": {"output": fmt(25, 12)}}, "quant.output.bits"),
    ({"quant": {"output": {"bits": 16, "frac": 12, "signed": False}}}, "quant.output.signed"),
    # framing
    ({"model": {"sequence_length": -1}}, "model.sequence_length"),
    ({"model": {"sequence_length": 2 ** 24 + 1}}, "model.sequence_length"),
    ({"model": {"sequence_length": 4.0}}, "model.sequence_length"),
    ({"model": {"stateful": 1}}, "model.stateful"),
    ({"model": {"stateful": True, "sequence_length": 8}}, "model.stateful"),
    # head
    ({"model": {"output_size": -1}}, "model.output_size"),
    ({"model": {"output_size": 4097}}, "model.output_size"),
    ({"sparsity": {"head_density": 0}}, "sparsity.head_density"),
    ({"sparsity": {"head_density": 1.01}}, "sparsity.head_density"),
    ({"model": {"output_size": 2, "hidden_size": 3}, "sparsity": {"banks": 4}}, "sparsity.banks"),  # fc has 3 columns
    ({"model": {"output_size": 2}, "quant": {"output": fmt(24, 19)}}, "quant.output.frac"),    # product frac is 18
    ({"model": {"output_size": 2}, "quant": {"output": fmt(24, -23)}}, "quant.output.frac"),
    ({"model": {"output_size": 2}, "quant": {"weight": fmt(8, -6)}}, "quant.output.frac"),      # default s16.12, product 6
    # model
    ({"model": {"input_size": 0}}, "model.input_size"),
    ({"model": {"hidden_size": 0}}, "model.hidden_size"),
    ({"model": {"hidden_size": 4097}}, "model.hidden_size"),
    ({"model": {"num_layers": 0}}, "model.num_layers"),
    ({"model": {"num_layers": 17}}, "model.num_layers"),
    ({"model": {"seed": -1}}, "model.seed"),
    ({"model": {"seed": 2 ** 32}}, "model.seed"),
    # sparsity
    ({"sparsity": {"density": 0}}, "sparsity.density"),
    ({"sparsity": {"density": 0.0}}, "sparsity.density"),
    ({"sparsity": {"density": 1.5}}, "sparsity.density"),
    ({"sparsity": {"density": -0.5}}, "sparsity.density"),
    ({"sparsity": {"banks": 0}}, "sparsity.banks"),
    ({"sparsity": {"banks": -4}}, "sparsity.banks"),
    ({"sparsity": {"banks": 18}}, "sparsity.banks"),           # layer 0 has 5 + 12 = 17 columns
    ({"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1}, "sparsity": {"banks": 8}}, "sparsity.banks"),
    ({"model": {"input_size": 20, "hidden_size": 12, "num_layers": 2}, "sparsity": {"banks": 25}},
     "sparsity.banks"),                                       # layer 1 has only 12 + 12 columns
    # activation
    ({"activation": {"method": "spline"}}, "activation.method"),
    ({"activation": {"method": "PWL"}}, "activation.method"),
    ({"activation": {"segments": 0}}, "activation.segments"),
    ({"activation": {"segments": 3}}, "activation.segments"),
    ({"activation": {"segments": 24}}, "activation.segments"),
    ({"activation": {"segments": -32}}, "activation.segments"),
    ({"activation": {"segments": 8192}}, "activation.segments"),
    ({"activation": {"coef_bits": 3}}, "activation.coef_bits"),
    ({"activation": {"coef_bits": 26}}, "activation.coef_bits"),
    ({"activation": {"sigmoid_range": 6.0}}, "activation.sigmoid_range"),
    ({"activation": {"sigmoid_range": 0}}, "activation.sigmoid_range"),
    ({"activation": {"sigmoid_range": -8.0}}, "activation.sigmoid_range"),
    ({"activation": {"sigmoid_range": 32.0}}, "activation.sigmoid_range"),   # s16.11 reaches only 16
    ({"activation": {"tanh_range": 3.0}}, "activation.tanh_range"),
    ({"activation": {"tanh_range": 32.0}}, "activation.tanh_range"),
    ({"quant": {"preact": fmt(12, 10)}}, "activation.sigmoid_range"),        # s12.10 reaches only 2
    ({"quant": {"preact": fmt(16, 14)}, "activation": {"sigmoid_range": 2.0}}, "activation.tanh_range"),
    ({"activation": {"tanh_range": 2.0 ** -8}}, "activation.tanh_range"),    # 8 codes, fewer than 32 segments
    # hardware
    ({"hardware": {"rows": 0}}, "hardware.rows"),
    ({"hardware": {"rows": 3}}, "hardware.rows"),
    ({"hardware": {"rows": 6}}, "hardware.rows"),
    ({"hardware": {"rows": 260}}, "hardware.rows"),
    ({"hardware": {"io_lanes": 0}}, "hardware.io_lanes"),
    ({"hardware": {"io_lanes": 5}}, "hardware.io_lanes"),                  # more than the 4 banks
    ({"hardware": {"rows": 12, "io_lanes": 2}}, "hardware.io_lanes"),      # 3 h per cycle: neither divides
    ({"hardware": {"io_lanes": 2.0}}, "hardware.io_lanes"),
    ({"hardware": {"mac_chain": 0}}, "hardware.mac_chain"),
    ({"hardware": {"mac_chain": 17}}, "hardware.mac_chain"),
    ({"hardware": {"mac_chain": "4"}}, "hardware.mac_chain"),
    ({"hardware": {"sum_bits": 1}}, "hardware.sum_bits"),
    ({"hardware": {"sum_bits": 65}}, "hardware.sum_bits"),
    ({"hardware": {"sum_bits": -1}}, "hardware.sum_bits"),
    ({"hardware": {"sum_bits": 24.0}}, "hardware.sum_bits"),
    ({"hardware": {"top": ""}}, "hardware.top"),
    ({"hardware": {"top": "1lstm"}}, "hardware.top"),
    ({"hardware": {"top": "lstm-top"}}, "hardware.top"),
    ({"hardware": {"top": "lstm top"}}, "hardware.top"),
    ({"hardware": {"top": "module"}}, "hardware.top"),
    ({"hardware": {"top": "wire"}}, "hardware.top"),
    ({"hardware": {"top": "endmodule"}}, "hardware.top"),
    ({"hardware": {"top": "$top"}}, "hardware.top"),
    ({"hardware": {"top": "lstm\ntop"}}, "hardware.top"),
    ({"hardware": {"part": "xc6slx9-2"}}, "hardware.part"),
    ({"hardware": {"part": "xcku040-ffva1156-2-e"}}, "hardware.part"),
    ({"hardware": {"part": "xc7z020clg400"}}, "hardware.part"),
    ({"hardware": {"part": ""}}, "hardware.part"),
    ({"hardware": {"part": "xc7z020clg400-1 "}}, "hardware.part"),
    ({"hardware": {"clock_mhz": 0}}, "hardware.clock_mhz"),
    ({"hardware": {"clock_mhz": 0.5}}, "hardware.clock_mhz"),
    ({"hardware": {"clock_mhz": 1000}}, "hardware.clock_mhz"),
]


@pytest.mark.parametrize("data, path", INVALID, ids=[f"{i}-{p}" for i, (_, p) in enumerate(INVALID)])
def test_invalid_config_names_key_path(data, path):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert message.startswith(path + ": "), message
    assert info.value.path == path
    assert info.value.reason
    assert "\n" not in message
    assert isinstance(info.value, LstmHwError)


@pytest.mark.parametrize("data", [[], "model", None, 3])
def test_non_table_config(data):
    with pytest.raises(ConfigError, match=r"^config: "):
        parse_config(data)


def test_sections_validate_when_built_directly():
    with pytest.raises(ConfigError, match=r"^model\.hidden_size: "):
        Config(model=ModelConfig(hidden_size=0))
    with pytest.raises(ConfigError, match=r"^hardware\.rows: "):
        Config(hardware=HardwareConfig(rows=5))
    with pytest.raises(ConfigError, match=r"^quant\.rounding: "):
        Config(quant=QuantConfig(rounding="nearest"))
    with pytest.raises(ConfigError, match=r"^activation\.segments: "):
        Config(activation=ActivationConfig(segments=6))


def test_invalid_toml_text_names_key_path():
    text = EXAMPLE_TOML.replace("hidden_size = 12", "hiden_size = 12")
    with pytest.raises(ConfigError, match=r"^model\.hiden_size: "):
        parse_config(tomllib.loads(text))


# -- files ----------------------------------------------------------------------

def test_load_config_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", [
    "[model\ninput_size = 5\n",
    "[model]\ninput_size = \n",
    "[model]\ninput_size = 5\ninput_size = 6\n",
    "model.input_size = 5 5\n",
])
def test_load_config_invalid_toml(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert "TOML" in str(info.value)
    assert "\n" not in str(info.value)


def test_load_config_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[hardware]\ntop = "l\xe9stm"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path) + ": ")


def test_load_config_directory(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(str(tmp_path) + ": ")


def test_load_config_semantic_error_names_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\ninput_size = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^model\.input_size: "):
        load_config(path)


@pytest.mark.parametrize("text", ['[model]\n"hidden\\nsize" = 4\n', '"x\\ny" = 1\n'], ids=["key", "section"])
def test_unknown_key_with_newline_stays_one_line(text):
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(text))
    assert "\n" not in str(info.value)


# -- a Zynq board: the PS makes the clock, the AXI DMA takes the streams ----------------------------

ZYNQ = {"pynq-z2": "xc7z020clg400-1", "zedboard": "xc7z020clg484-1"}


def on_board(name: str, hardware=None, **sections) -> dict:
    return {**sections, "hardware": {"board": name, "part": ZYNQ[name], **(hardware or {})}}


def one_line_error(data, path: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert info.value.path == path and message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("name", ZYNQ)
@pytest.mark.parametrize("mhz", [200, 125, 100, 50, 1000 / 7, 142.857, 142.86, 142.9, 166.667, 111.111, 250, 10, 1,
                                 100.05, 99.95, 100.09, 99.91])
def test_clock_the_ps_makes(name, mhz):
    assert parse_config(on_board(name, {"clock_mhz": mhz})).hardware.clock_mhz == mhz


@pytest.mark.parametrize("name", ZYNQ)
@pytest.mark.parametrize("mhz, nearest", [
    (150, "142.857 MHz (1000 / 7) or 166.667 MHz (1000 / 6)"),
    (120, "111.111 MHz (1000 / 9) or 125 MHz (1000 / 8)"),
    (100.11, "100 MHz (1000 / 10) or 111.111 MHz (1000 / 9)"),    # 0.11% off: just outside
    (300, "250 MHz (1000 / 4) or 333.333 MHz (1000 / 3)"),
    (800, "500 MHz (1000 / 2) or 1000 MHz (1000 / 1)"),
    (100.2, "100 MHz (1000 / 10) or 111.111 MHz (1000 / 9)"),
])
def test_clock_the_ps_cannot_make_is_one_line_error(name, mhz, nearest):
    message = one_line_error(on_board(name, {"clock_mhz": mhz}), "hardware.clock_mhz")
    assert f"{mhz:g} MHz is no clock the PS of {name} makes" in message
    assert f"nearest are {nearest}" in message and "1 to 63 (UG585)" in message and "0.1%" in message


def test_clock_rule_only_on_zynq_boards():
    for hardware in ({}, {"part": "xc7z020clg400-1"}, {"board": "kc705", "part": "xc7k325tffg900-2"},
                     {"board": "arty-a7-35", "part": "xc7a35ticsg324-1L"}):
        assert parse_config({"hardware": {**hardware, "clock_mhz": 150}}).hardware.clock_mhz == 150


@pytest.mark.parametrize("name", ZYNQ)
@pytest.mark.parametrize("bits, lanes", [(16, 1), (16, 2), (16, 4), (8, 1), (8, 4), (12, 2), (5, 8)])
def test_stream_widths_the_dma_takes(name, bits, lanes):
    data = on_board(name, {"io_lanes": lanes}, quant={"activation": {"bits": bits, "frac": bits // 2}},
                    sparsity={"banks": 8})
    assert parse_config(data).hardware.io_lanes == lanes


@pytest.mark.parametrize("name", ZYNQ)
@pytest.mark.parametrize("bits, lanes, banks, width, choices", [
    (16, 3, 4, 48, "1, 2 or 4"),
    (16, 3, 3, 48, "1 or 2"),
    (16, 5, 8, 80, "1, 2, 4 or 8"),
    (8, 6, 8, 48, "1, 2, 4 or 8"),
    (16, 7, 7, 112, "1, 2 or 4"),
    (8, 3, 3, 24, "1 or 2"),
])
def test_stream_width_the_dma_refuses_names_io_lanes(name, bits, lanes, banks, width, choices):
    data = on_board(name, {"io_lanes": lanes}, quant={"activation": {"bits": bits, "frac": 4}},
                    sparsity={"banks": banks})
    message = one_line_error(data, "hardware.io_lanes")
    assert f'board = "{name}" streams through an AXI DMA' in message and "8, 16, 32, ... 1024 bits wide" in message
    assert f"io_lanes = {lanes} makes {width}-bit input tdata; io_lanes = {choices} would work" in message
    for good in choices.replace(" or ", ", ").split(", "):
        parse_config(on_board(name, {"io_lanes": int(good)}, quant={"activation": {"bits": bits, "frac": 4}},
                              sparsity={"banks": banks}))


def test_io_lanes_choices_keep_the_h_group_rule():
    # rows = 8: layers write 2 h values a cycle, so io_lanes must divide or be a multiple of 2; 8 lanes x 16 bits
    # and 2 x 16 are fine for the DMA, 6 is not a power of two, 3 breaks both rules
    data = on_board("pynq-z2", {"io_lanes": 6, "rows": 8}, sparsity={"banks": 8})
    assert "io_lanes = 1, 2, 4 or 8 would work" in one_line_error(data, "hardware.io_lanes")


@pytest.mark.parametrize("rows, banks, io_lanes, group", [
    (16, 8, 1, 4),     # 4 cell lanes, enough banks: a pass's h at once
    (16, 2, 1, 2),     # more lanes than banks: the largest divisor of 4 within 2 banks
    (24, 4, 1, 3),
    (24, 4, 4, 2),     # 3 would not fit beats of 4
    (24, 5, 2, 2),
    (20, 4, 1, 1),     # 5 lanes: no divisor but 1 within 4 banks
    (128, 8, 8, 8),
    (128, 8, 3, 1),
])
def test_h_group_is_the_largest_fitting_divisor(rows, banks, io_lanes, group):
    assert h_group(rows, banks, io_lanes) == group
    config = parse_config({"model": {"input_size": 3, "hidden_size": 5}, "sparsity": {"banks": banks},
                           "hardware": {"rows": rows, "io_lanes": io_lanes}})
    assert h_write_group(config) == group


@pytest.mark.parametrize("rows, banks", [(16, 2), (24, 4), (24, 5), (128, 8), (64, 7)])
def test_every_io_lanes_fits_when_cell_lanes_outnumber_banks(rows, banks):
    """The group is chosen to fit the beats, so no io_lanes up to the banks is refused for it."""
    for n in range(1, banks + 1):
        assert io_lanes_fit(rows, banks, n)
        parse_config({"model": {"input_size": 3, "hidden_size": 5}, "sparsity": {"banks": banks},
                      "hardware": {"rows": rows, "io_lanes": n}})


@pytest.mark.parametrize("data, message", [
    ({"hardware": {"interleave": 0}}, "must be from 1 to 16, got 0"),
    ({"hardware": {"interleave": 17}}, "must be from 1 to 16, got 17"),
    ({"hardware": {"interleave": 2}, "model": {"stateful": True}}, "model.stateful carries one stream's state"),
    ({"hardware": {"interleave": 3}, "model": {"return_sequences": False}}, "need model.sequence_length"),
])
def test_interleave_is_checked(data, message):
    assert message in one_line_error(data, "hardware.interleave")


def test_interleave_with_last_outputs_takes_a_sequence_length():
    config = parse_config({"hardware": {"interleave": 3}, "model": {"return_sequences": False, "sequence_length": 4}})
    assert config.hardware.interleave == 3


def test_output_width_is_checked_too():
    data = on_board("pynq-z2", {"io_lanes": 2}, model={"output_size": 3},
                    quant={"activation": {"bits": 8, "frac": 4}, "output": {"bits": 16, "frac": 8}},
                    sparsity={"banks": 4})
    assert parse_config(data)    # 16-bit input, 32-bit output tdata
    data["hardware"]["io_lanes"] = 3
    assert "io_lanes = 3 makes 24-bit input tdata" in one_line_error(data, "hardware.io_lanes")


@pytest.mark.parametrize("key, quant, model", [
    ("activation", {"activation": {"bits": 20, "frac": 12}}, {}),
    ("activation", {"activation": {"bits": 17, "frac": 12}}, {"output_size": 2}),
    ("output", {"output": {"bits": 24, "frac": 12}}, {"output_size": 2}),
])
def test_element_no_io_lanes_can_fit_names_the_format(key, quant, model):
    message = one_line_error(on_board("zedboard", quant=quant, model=model), f"quant.{key}.bits")
    bits = quant[key]["bits"]
    side = "input" if key == "activation" else "output"
    assert f"{bits}-bit {side} values travel as 24 bits, which no io_lanes makes fit; use bits <= 16" in message


def test_stream_width_rule_only_on_zynq_boards():
    wide = {"quant": {"activation": {"bits": 20, "frac": 12}}, "sparsity": {"banks": 4}}
    for hardware in ({"io_lanes": 3}, {"io_lanes": 3, "board": "kc705", "part": "xc7k325tffg900-2"},
                     {"io_lanes": 3, "board": "arty-a7-100", "part": "xc7a100tcsg324-1"}):
        assert parse_config({**wide, "hardware": hardware}).hardware.io_lanes == 3
