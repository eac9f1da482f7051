"""Xilinx 7-series parts: device resources, part-name parsing, known boards, and what a Zynq system allows.

``parse_part("xc7z020clg400-1")`` gives a :class:`Part` (device, package,
speed grade) whose ``device`` holds the resource counts that utilization is
measured against. Anything that is not a supported 7-series device is a
:class:`~lstm_hw.errors.ConfigError` on ``hardware.part``.

A Zynq board's :class:`Ps7` says how ``system.tcl`` builds on it: the board
parts to look for and the IO PLL its fabric clock divides
(:func:`fabric_clock`); :data:`DMA_STREAM_WIDTHS` and :data:`DMA_LENGTH_BITS`
are what its AXI DMA takes.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import ConfigError

__all__ = ["Device", "Part", "Board", "Ps7", "FabricClock", "DEVICES", "parse_part", "boards", "board",
           "fabric_clock", "FCLK_DIVISOR_MAX", "FCLK_TOLERANCE", "DMA_STREAM_WIDTHS", "DMA_LENGTH_BITS"]


@dataclass(frozen=True)
class Device:
    """One 7-series die: the programmable-logic resources of every package and speed grade of it."""

    name: str             # "xc7z020"
    family: str           # "Artix-7", "Kintex-7", "Virtex-7", "Zynq-7000", "Spartan-7"
    luts: int             # 6-input LUTs (4 per slice)
    ffs: int              # CLB flip-flops (8 per slice)
    dsps: int             # DSP48E1 slices
    bram36: int           # RAMB36E1 blocks, each usable as two RAMB18E1
    speed_grades: tuple[str, ...]  # as written after the dash in Vivado part names; "L" = low power

    @property
    def ramb18(self) -> int:
        return 2 * self.bram36

    @property
    def bram_kbit(self) -> int:
        return 36 * self.bram36


def _device(name, family, slices, dsps, bram36, grades):
    return Device(name, family, 4 * slices, 8 * slices, dsps, bram36, tuple(grades.split()))


# Figures from the product tables of Xilinx DS180, "7 Series FPGAs Data Sheet:
# Overview" (v2.6.1, 2020: Tables 2-5, CLB slices, DSP slices, Block RAM 36 Kb),
# and DS190, "Zynq-7000 SoC Data Sheet: Overview" (v1.11.1, 2018: Table 1,
# programmable logic). A slice holds four 6-input LUTs and eight flip-flops;
# DS190 quotes LUTs and flip-flops directly, and they agree with that.
# Speed grades merge the commercial, extended and industrial columns of the
# same tables; -1L / -2L are the low-voltage grades.
_ARTIX = "-1 -2 -3 -1L -2L"
_KINTEX = "-1 -2 -3 -2L"
_VIRTEX = "-1 -2 -3 -2L"
DEVICES: dict[str, Device] = {d.name: d for d in (
    #        device      family        slices  DSP48E1  BRAM36  speed grades
    _device("xc7s50",   "Spartan-7",    8_150,    120,     75, "-1 -2 -1L"),
    _device("xc7a35t",  "Artix-7",      5_200,     90,     50, _ARTIX),
    _device("xc7a50t",  "Artix-7",      8_150,    120,     75, _ARTIX),
    _device("xc7a75t",  "Artix-7",     11_800,    180,    105, _ARTIX),
    _device("xc7a100t", "Artix-7",     15_850,    240,    135, _ARTIX),
    _device("xc7a200t", "Artix-7",     33_650,    740,    365, _ARTIX),
    _device("xc7z010",  "Zynq-7000",    4_400,     80,     60, "-1 -2 -3 -1L"),
    _device("xc7z015",  "Zynq-7000",   11_550,    160,     95, "-1 -2 -1L"),
    _device("xc7z020",  "Zynq-7000",   13_300,    220,    140, "-1 -2 -3 -1L"),
    _device("xc7z030",  "Zynq-7000",   19_650,    400,    265, "-1 -2 -3 -2L"),
    _device("xc7z035",  "Zynq-7000",   42_975,    900,    500, "-1 -2 -3 -2L"),
    _device("xc7z045",  "Zynq-7000",   54_650,    900,    545, "-1 -2 -3 -2L"),
    _device("xc7z100",  "Zynq-7000",   69_350,  2_020,    755, "-1 -2 -2L"),
    _device("xc7k70t",  "Kintex-7",    10_250,    240,    135, _KINTEX),
    _device("xc7k160t", "Kintex-7",    25_350,    600,    325, _KINTEX),
    _device("xc7k325t", "Kintex-7",    50_950,    840,    445, _KINTEX),
    _device("xc7k355t", "Kintex-7",    55_650,  1_440,    715, _KINTEX),
    _device("xc7k410t", "Kintex-7",    63_550,  1_540,    795, _KINTEX),
    _device("xc7k420t", "Kintex-7",    65_150,  1_680,    835, _KINTEX),
    _device("xc7k480t", "Kintex-7",    74_650,  1_920,    955, _KINTEX),
    _device("xc7vx485t", "Virtex-7",   75_900,  2_800,  1_030, _VIRTEX),
    _device("xc7vx690t", "Virtex-7",  108_300,  3_600,  1_470, _VIRTEX),
)}


@dataclass(frozen=True)
class Part:
    """A parsed part name: ``xc7a35t`` + ``i`` + ``csg324`` + ``-1L``."""

    device: Device
    temperature: str      # "", "i" or "l": the optional letter between device and package
    package: str          # "clg400"
    speed_grade: str      # "-1", "-2L", ...

    @property
    def name(self) -> str:
        """The name as Vivado lists it: lower case but for the speed grade's ``L``."""
        return f"{self.device.name}{self.temperature}{self.package}{self.speed_grade}"


# After the device name: an optional temperature/voltage letter, the package
# (two or three letters and the pin count) and the speed grade.
_SUFFIX = re.compile(r"(?P<temp>[il]?)(?P<pkg>[a-z]{2,3}[0-9]{3,4})(?P<speed>-[1-3]l?)\Z")
# Longest first, so that no device is taken for the start of a longer one.
_BY_LENGTH = sorted(DEVICES, key=len, reverse=True)


def _supported() -> str:
    return ", ".join(DEVICES)


def parse_part(name: str, path: str = "hardware.part") -> Part:
    """Parse a Vivado part name (any case) such as ``xc7z020clg400-1`` or ``xc7a35ticsg324-1L``."""
    if not isinstance(name, str):
        raise ConfigError(path, f"must be a string, got {type(name).__name__}")
    low = name.lower()
    device = next((DEVICES[d] for d in _BY_LENGTH if low.startswith(d)), None)
    if device is None:
        raise ConfigError(path, f"{name!r} is not a supported Xilinx 7-series part; supported devices: "
                                f"{_supported()} (a full name looks like 'xc7z020clg400-1')")
    m = _SUFFIX.match(low, len(device.name))
    if m is None:
        raise ConfigError(path, f"{name!r} is not a full part name: expected {device.name}, a package and a "
                                f"speed grade, such as '{device.name}clg400-1' or '{device.name}ffg900-2'")
    speed = m["speed"].upper()  # "-1L": Vivado writes the L in upper case
    if speed not in device.speed_grades:
        raise ConfigError(path, f"{name!r}: speed grade {speed} does not exist for {device.name} "
                                f"(available: {', '.join(device.speed_grades)})")
    return Part(device, m["temp"], m["pkg"], speed)


# -- boards --------------------------------------------------------------------

@dataclass(frozen=True)
class Pin:
    port: str             # the board-XDC port: aclk, aclk_p / aclk_n, aresetn or areset
    pin: str              # package pin
    iostandard: str


@dataclass(frozen=True)
class Ps7:
    """The processing system of a Zynq board, for ``system.tcl`` (data: the ``[<board>.ps7]`` table)."""

    board_parts: tuple[str, ...]  # vendor:board:component, any file version, in order of preference
    io_pll_mhz: float             # the IO PLL of the board preset, which FCLK_CLK0 divides


@dataclass(frozen=True)
class Board:
    """Clock and reset pins of a development board, for the board XDC (data: ``constraints/boards.toml``), and
    its processing system if it is a Zynq board."""

    name: str
    title: str
    part: str             # the part fitted on the board, as Vivado names it
    clock_mhz: float      # the board oscillator
    clock: tuple[Pin, ...]  # one pin, or P and N of a differential clock
    clock_source: str     # what the board's documentation calls the clock
    reset: Pin
    reset_source: str     # the button's name on the board
    reset_active_low: bool
    reference: str        # where the pins come from
    ps7: Ps7 | None = None  # a Zynq board's processing system

    @property
    def parsed_part(self) -> Part:
        return parse_part(self.part, f"board {self.name}")


@cache
def boards() -> dict[str, Board]:
    """Every known board, by name, in the order of the data file."""
    raw = tomllib.loads(resources.files("lstm_hw.constraints").joinpath("boards.toml").read_text("utf-8"))
    out = {}
    for name, b in raw.items():
        clock, reset = b["clock"], b["reset"]
        if "pin_n" in clock:
            pins = (Pin("aclk_p", clock["pin"], clock["iostandard"]), Pin("aclk_n", clock["pin_n"], clock["iostandard"]))
        else:
            pins = (Pin("aclk", clock["pin"], clock["iostandard"]),)
        port = "aresetn" if reset["active_low"] else "areset"
        ps7 = b.get("ps7")
        out[name] = Board(name=name, title=b["title"], part=b["part"], clock_mhz=float(clock["mhz"]), clock=pins,
                          clock_source=clock["source"], reset=Pin(port, reset["pin"], reset["iostandard"]),
                          reset_source=reset["source"], reset_active_low=reset["active_low"],
                          reference=b["reference"],
                          ps7=Ps7(tuple(ps7["board_parts"]), float(ps7["io_pll_mhz"])) if ps7 else None)
    return out


def board(name: str, part: str, path: str = "hardware.board") -> Board:
    """The board ``name``, checked to carry the device and package of ``part``."""
    known = boards()
    if name not in known:
        raise ConfigError(path, f"unknown board {name!r} (known: {', '.join(known)})")
    b = known[name]
    want, have = b.parsed_part, parse_part(part)
    if (want.device, want.package) != (have.device, have.package):
        raise ConfigError(path, f"{name} carries {want.device.name}{want.package}, not the "
                                f"{have.device.name}{have.package} of hardware.part {part!r} "
                                f"(set part = {b.part!r})")
    return b


# -- a Zynq system -------------------------------------------------------------

# UG585 (Zynq-7000 SoC Technical Reference Manual), chapter 25 "Clocks", section
# "PL Clocks", and register FPGA0_CLK_CTRL (appendix B, slcr): a fabric clock
# FCLK_CLKn is its source PLL (the IO PLL here) divided by two cascaded 6-bit
# dividers, DIVISOR0 (bits 13:8) and DIVISOR1 (bits 25:20), 1 to 63 each.
FCLK_DIVISOR_MAX = 63
#: How far ``hardware.clock_mhz`` may lie from a frequency the PS makes, relative: room for writing
#: 1000/7 MHz as 142.857 (4 significant digits are always close enough), far below a divider step.
FCLK_TOLERANCE = 1e-3

# PG021 (AXI DMA v7.1), "Features": AXI4-Stream data widths of 8 to 1024 bits.
DMA_STREAM_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
# PG021, MM2S_LENGTH and S2MM_LENGTH registers: the length field is c_sg_length_width bits, 8 to 26.
DMA_LENGTH_BITS = 26


@dataclass(frozen=True)
class FabricClock:
    """A clock the PS makes: ``io_pll_mhz / division``, with ``division`` = DIVISOR0 x DIVISOR1."""

    mhz: float
    division: int


@cache
def _divisions() -> tuple[int, ...]:
    """Every product of the two FCLK dividers, ascending."""
    steps = range(1, FCLK_DIVISOR_MAX + 1)
    return tuple(sorted({d0 * d1 for d0 in steps for d1 in steps}))


def fabric_clock(b: Board, clock_mhz: float, path: str = "hardware.clock_mhz") -> FabricClock:
    """The FCLK_CLK0 of board ``b`` within :data:`FCLK_TOLERANCE` of ``clock_mhz``, or a ConfigError naming
    the nearest ones the PS makes."""
    pll, divisions = b.ps7.io_pll_mhz, _divisions()
    at = bisect.bisect_left(divisions, pll / clock_mhz)
    near = divisions[max(at - 1, 0):at + 1]
    best = min(near, key=lambda n: abs(pll / n - clock_mhz))
    if abs(pll / best - clock_mhz) <= FCLK_TOLERANCE * pll / best:
        return FabricClock(pll / best, best)
    shown = " or ".join(f"{pll / n:.6g} MHz ({pll:g} / {n})" for n in sorted(near, reverse=True))
    raise ConfigError(path, f"{clock_mhz:g} MHz is no clock the PS of {b.name} makes: FCLK_CLK0 is its "
                            f"{pll:g} MHz IO PLL divided by two dividers of 1 to {FCLK_DIVISOR_MAX} (UG585), "
                            f"so the nearest are {shown}; clock_mhz may be off by {FCLK_TOLERANCE:.1%}")
