"""7-series part data, part-name parsing and the board table."""

import re

import pytest

from lstm_hw.config.parts import (
    DEVICES,
    DMA_LENGTH_BITS,
    DMA_STREAM_WIDTHS,
    FCLK_DIVISOR_MAX,
    FCLK_TOLERANCE,
    FabricClock,
    board,
    boards,
    fabric_clock,
    parse_part,
)
from lstm_hw.config.schema import DEFAULT_TOML, parse_config
from lstm_hw.errors import ConfigError

REQUIRED = ("xc7a35t xc7a100t xc7a200t xc7z010 xc7z020 xc7z030 xc7z045 xc7z100 "
            "xc7k70t xc7k160t xc7k325t xc7k410t xc7vx485t xc7vx690t").split()
FAMILY_PREFIX = {"Artix-7": "xc7a", "Kintex-7": "xc7k", "Virtex-7": "xc7v", "Zynq-7000": "xc7z", "Spartan-7": "xc7s"}


def test_required_devices_are_supported():
    assert set(REQUIRED) <= set(DEVICES)


@pytest.mark.parametrize("name", DEVICES)
def test_device_counts_are_consistent(name):
    d = DEVICES[name]
    assert d.name == name and name.startswith(FAMILY_PREFIX[d.family])
    assert min(d.luts, d.ffs, d.dsps, d.bram36) > 0
    assert d.ffs == 2 * d.luts            # a slice: four LUTs and eight flip-flops
    assert d.ramb18 == 2 * d.bram36
    assert d.bram_kbit == 36 * d.bram36
    assert d.speed_grades and d.speed_grades[0] == "-1"
    assert all(re.fullmatch(r"-[1-3]L?", g) for g in d.speed_grades)


@pytest.mark.parametrize("name, luts, ffs, dsps, bram36", [
    # DS180 / DS190 product tables
    ("xc7z020", 53_200, 106_400, 220, 140),
    ("xc7k325t", 203_800, 407_600, 840, 445),
    ("xc7a35t", 20_800, 41_600, 90, 50),
    ("xc7z010", 17_600, 35_200, 80, 60),
    ("xc7z045", 218_600, 437_200, 900, 545),
    ("xc7a100t", 63_400, 126_800, 240, 135),
    ("xc7vx485t", 303_600, 607_200, 2_800, 1_030),
])
def test_known_figures(name, luts, ffs, dsps, bram36):
    d = DEVICES[name]
    assert (d.luts, d.ffs, d.dsps, d.bram36) == (luts, ffs, dsps, bram36)


@pytest.mark.parametrize("text, device, temp, package, speed, canonical", [
    ("xc7z020clg400-1", "xc7z020", "", "clg400", "-1", "xc7z020clg400-1"),
    ("XC7Z020CLG484-2", "xc7z020", "", "clg484", "-2", "xc7z020clg484-2"),
    ("xc7a35ticsg324-1L", "xc7a35t", "i", "csg324", "-1L", "xc7a35ticsg324-1L"),
    ("xc7a35ticsg324-1l", "xc7a35t", "i", "csg324", "-1L", "xc7a35ticsg324-1L"),
    ("xc7a35tcpg236-3", "xc7a35t", "", "cpg236", "-3", "xc7a35tcpg236-3"),
    ("xc7k325tffg900-2", "xc7k325t", "", "ffg900", "-2", "xc7k325tffg900-2"),
    ("xc7k325tffg900-2L", "xc7k325t", "", "ffg900", "-2L", "xc7k325tffg900-2L"),
    ("xc7k480tiffg1156-2L", "xc7k480t", "i", "ffg1156", "-2L", "xc7k480tiffg1156-2L"),
    ("xc7a100tlcsg324-2L", "xc7a100t", "l", "csg324", "-2L", "xc7a100tlcsg324-2L"),
    ("xc7z100ffg900-2", "xc7z100", "", "ffg900", "-2", "xc7z100ffg900-2"),
    ("xc7vx690tffg1761-3", "xc7vx690t", "", "ffg1761", "-3", "xc7vx690tffg1761-3"),
    ("xc7a200tsbg484-1", "xc7a200t", "", "sbg484", "-1", "xc7a200tsbg484-1"),
])
def test_parse_valid_part(text, device, temp, package, speed, canonical):
    p = parse_part(text)
    assert (p.device.name, p.temperature, p.package, p.speed_grade, p.name) == (device, temp, package, speed, canonical)
    assert p.device is DEVICES[device]
    assert parse_config({"hardware": {"part": text}}).hardware.part == text


@pytest.mark.parametrize("text, needle", [
    ("xcku060-ffva1156-2-e", "supported devices: xc7"),   # UltraScale
    ("xc6slx9-2tqg144", "supported devices: xc7"),        # Spartan-6
    ("xc6slx9", "supported devices: xc7"),
    ("xc7z999clg400-1", "supported devices: xc7"),        # no such 7-series device
    ("", "supported devices"),
    ("xc7z020clg400", "speed grade"),                     # incomplete
    ("xc7z020-clg400-1", "speed grade"),
    ("xc7z020clg400-1 ", "speed grade"),
    ("xc7z020clg400-1-e", "speed grade"),
    ("xc7z020clg400-4", "speed grade"),
    ("xc7z100ffg900-3", "speed grade -3 does not exist for xc7z100"),
    ("xc7k325tffg900-1L", "speed grade -1L does not exist for xc7k325t"),
])
def test_parse_invalid_part_is_one_line_error(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_part(text)
    message = str(info.value)
    assert message.startswith("hardware.part: ") and info.value.path == "hardware.part"
    assert "\n" not in message and needle in message, message
    with pytest.raises(ConfigError, match=r"^hardware\.part: "):
        parse_config({"hardware": {"part": text}})


def test_unsupported_part_error_names_every_device():
    with pytest.raises(ConfigError) as info:
        parse_part("xcku060-ffva1156-2-e")
    assert all(name in str(info.value) for name in DEVICES)


# -- boards --------------------------------------------------------------------

@pytest.mark.parametrize("name", boards())
def test_board_data(name):
    b = boards()[name]
    part = parse_part(b.part)
    assert part.name == b.part            # written as Vivado lists it
    assert b.clock_mhz > 0 and len(b.clock) in (1, 2)
    assert [p.port for p in b.clock] == (["aclk"] if len(b.clock) == 1 else ["aclk_p", "aclk_n"])
    assert b.reset.port == ("aresetn" if b.reset_active_low else "areset")
    for pin in (*b.clock, b.reset):
        assert re.fullmatch(r"[A-Z]{1,2}[0-9]{1,2}", pin.pin), pin
        assert re.fullmatch(r"LVCMOS(33|25|18|15)|LVDS(_25)?", pin.iostandard), pin
    assert board(name, b.part) == b
    assert parse_config({"hardware": {"part": b.part, "board": name}}).hardware.board == name
    assert name in DEFAULT_TOML           # `lstm-hw config` lists it


def test_known_boards():
    assert {"pynq-z2", "zedboard", "arty-a7-35", "arty-a7-100", "kc705"} <= set(boards())
    assert boards()["pynq-z2"].part == "xc7z020clg400-1"
    assert boards()["arty-a7-35"].part == "xc7a35ticsg324-1L"
    assert boards()["kc705"].part == "xc7k325tffg900-2"


def test_board_accepts_other_speed_grades_of_its_part():
    assert board("pynq-z2", "xc7z020clg400-2").name == "pynq-z2"
    assert board("arty-a7-35", "xc7a35tcsg324-1").name == "arty-a7-35"


@pytest.mark.parametrize("board_name, part, needle", [
    ("pynq-z2", "xc7a35ticsg324-1L", "pynq-z2 carries xc7z020clg400"),
    ("zedboard", "xc7z020clg400-1", "zedboard carries xc7z020clg484"),   # same device, other package
    ("kc705", "xc7z020clg400-1", "set part = 'xc7k325tffg900-2'"),
    ("zcu102", "xc7z020clg400-1", "unknown board 'zcu102' (known: pynq-z2"),
    ("PYNQ-Z2", "xc7z020clg400-1", "unknown board"),
])
def test_board_mismatch_is_one_line_error(board_name, part, needle):
    with pytest.raises(ConfigError) as info:
        parse_config({"hardware": {"part": part, "board": board_name}})
    message = str(info.value)
    assert message.startswith("hardware.board: ") and "\n" not in message and needle in message, message


def test_board_must_be_a_string():
    with pytest.raises(ConfigError, match=r"^hardware\.board: must be a string"):
        parse_config({"hardware": {"board": 1}})


# -- Zynq boards: the processing system ----------------------------------------------------------

def test_zynq_boards_have_a_processing_system():
    for name, b in boards().items():
        assert (b.ps7 is not None) == (b.parsed_part.device.family == "Zynq-7000"), name
    assert boards()["pynq-z2"].ps7.board_parts == ("tul.com.tw:pynq-z2:part0",)
    assert boards()["zedboard"].ps7.board_parts == ("avnet.com:zedboard:part0", "digilentinc.com:zedboard:part0",
                                                    "em.avnet.com:zed:part0")


@pytest.mark.parametrize("name", [n for n, b in boards().items() if b.ps7])
def test_processing_system_data(name):
    ps7 = boards()[name].ps7
    assert ps7.io_pll_mhz == 1000          # the PYNQ-Z2 and ZedBoard presets
    for part in ps7.board_parts:            # vendor:board:component, the file version left to system.tcl
        assert re.fullmatch(r"[a-z0-9.\-]+:[a-z0-9\-]+:part0", part), part


def test_fabric_clock_divisions():
    pynq = boards()["pynq-z2"]
    assert fabric_clock(pynq, 200) == FabricClock(200.0, 5)
    assert fabric_clock(pynq, 142.857) == FabricClock(1000 / 7, 7)
    assert fabric_clock(pynq, 1000 / 3969) == FabricClock(1000 / 3969, 3969)   # 63 x 63, the slowest
    assert fabric_clock(pynq, 1000 / 61 * (1 + 9e-4)).division == 61          # a prime: 61 x 1
    with pytest.raises(ConfigError, match=r"nearest are 14\.7059 MHz \(1000 / 68\) or 15\.1515 MHz \(1000 / 66\)"):
        fabric_clock(pynq, 1000 / 67)        # 67 is a prime above 63: no two dividers make it
    assert FCLK_DIVISOR_MAX == 63 and FCLK_TOLERANCE == 1e-3
    assert DMA_STREAM_WIDTHS == tuple(8 << k for k in range(8)) and DMA_LENGTH_BITS == 26
