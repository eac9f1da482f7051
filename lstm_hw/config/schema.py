"""The generator's configuration: frozen dataclasses, validated once at the edge.

``load_config(path)`` and ``parse_config(mapping)`` turn TOML into a
:class:`Config`, or raise :class:`~lstm_hw.errors.ConfigError` naming the key
path (``quant.weight.bits``) and the reason. Below the CLI nothing reads raw
dicts. ``Config()`` is the embedded default design.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..errors import ConfigError, UsageError
from ..numerics.fixed import ROUNDING_MODES, Fixed
from .parts import DMA_STREAM_WIDTHS, board, fabric_clock, parse_part

__all__ = [
    "ModelConfig", "QuantConfig", "SparsityConfig", "ActivationConfig",
    "HardwareConfig", "Config", "load_config", "parse_config", "read_toml", "fit_config", "config_mapping",
    "toml_mapping",
    "DEFAULT_TOML", "tdata_widths",
]

SPARSITY_PATTERNS = ("bank_balanced", "unstructured")
WEIGHT_MEMORIES = ("rom", "ram")
ACTIVATION_METHODS = ("lut", "pwl", "quadratic", "taylor", "auto")
# Widest format accepted. Products then stay within a DSP48E1 cascade pair and
# every exact sum stays well inside the golden model's int64.
MAX_FORMAT_BITS = 24
#: The longest hardware.mac_chain: a DSP48E1 column holds far more, but every link is a cycle of latency.
MAX_MAC_CHAIN = 16
#: The most sequences ``hardware.interleave`` lets share the pipeline.
MAX_INTERLEAVE = 16
#: The largest ``hardware.macs`` budget.
MAX_MACS = 1 << 20
#: The widest ``hardware.sum_bits``.
MAX_SUM_BITS = 64


@dataclass(frozen=True)
class ModelConfig:
    input_size: int = 5
    hidden_size: int = 12
    num_layers: int = 2
    return_sequences: bool = True
    seed: int = 0  # seed of the default random weights when no weight file is given
    output_size: int = 0  # > 0: a head Linear(hidden_size, output_size) on every emitted h_t
    sequence_length: int = 0  # > 0: every that many steps start a new sequence; 0: s_axis_tlast ends one
    stateful: bool = False  # h and c carry across tlast; only reset and the state_rst port clear them


@dataclass(frozen=True)
class QuantConfig:
    """Every fixed-point format of the datapath; see README "Number formats"."""

    weight: Fixed = Fixed(8, 6)
    activation: Fixed = Fixed(16, 12)   # x_t, h_t and the stream ports
    preact: Fixed = Fixed(16, 11)       # gate pre-activations, input of sigmoid/tanh
    nonlin: Fixed = Fixed(16, 14)       # sigmoid/tanh outputs
    cell: Fixed = Fixed(18, 12)         # cell state c_t
    bias: Fixed | None = None           # None: aligned with the weight x activation product
    rounding: str = "half_up"
    output: Fixed | None = None         # the head's outputs; None: the activation format

    @property
    def product(self) -> Fixed:
        """Exact format of one weight x activation product."""
        return Fixed(self.weight.bits + self.activation.bits, self.weight.frac + self.activation.frac)

    @property
    def bias_format(self) -> Fixed:
        return self.bias if self.bias is not None else self.product

    @property
    def bias_shift(self) -> int:
        """Left shift that aligns a bias code with the product format (the config keeps it >= 0)."""
        return self.product.frac - self.bias_format.frac

    @property
    def output_format(self) -> Fixed:
        """Format of the head's outputs (used only when ``model.output_size > 0``)."""
        return self.output if self.output is not None else self.activation


@dataclass(frozen=True)
class SparsityConfig:
    banks: int = 4
    density: float = 0.5
    head_density: float = 1.0    # kept fraction of every bank of the head's fc.weight
    pattern: str = "bank_balanced"  # or "unstructured": magnitude pruning, banks padded to the fullest


@dataclass(frozen=True)
class ActivationConfig:
    method: str = "pwl"          # lut | pwl | quadratic | taylor | auto
    segments: int = 32           # table entries per function (auto: chosen)
    sigmoid_range: float = 8.0   # table covers |x| < range; beyond it the output saturates
    tanh_range: float = 4.0
    coef_bits: int = 18          # width of the per-segment coefficients above the constant term
    fold: bool = True            # tables over |x| only, by symmetry
    taylor_order: int = 2        # taylor: expansion order, 1 to 3
    max_error: float = 1e-3      # auto: bound on the max abs error of every table, over every code


@dataclass(frozen=True)
class HardwareConfig:
    top: str = "lstm_top"
    part: str = "xc7z020clg400-1"
    clock_mhz: float = 200.0
    rows: int = 4                # weight rows computed at once; MACs = banks x rows
    board: str = ""              # a known board carrying the part: a board XDC, and system.tcl on a Zynq board
    io_lanes: int = 1            # vector elements per stream beat (s_axis, m_axis and between layers)
    mac_chain: int = 4           # DSP48E1s per adder chain in a MAC array (1 = a plain adder tree)
    weights: str = "rom"         # or "ram": the weight memories loadable at run time (s_axis_weights)
    sum_bits: int = 0            # the widest a gate sum may be; 0: as wide as the weights (rom) or formats (ram) need
    interleave: int = 1          # independent sequences sharing the pipeline, their timesteps taking turns
    macs: int = 0                # > 0: a budget of multipliers; rows (and, dense, banks) chosen within it


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)

    def __post_init__(self):
        _check_config(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """A config from a mapping shaped like the TOML file (``{"model": {"hidden_size": 32}, ...}``)."""
        return parse_config(data)

    @property
    def macs(self) -> int:
        return self.sparsity.banks * self.hardware.rows

    def layer_input_size(self, layer: int) -> int:
        return self.model.input_size if layer == 0 else self.model.hidden_size

    def to_dict(self) -> dict:
        """Plain data, for metadata: every resolved value, defaults included."""
        out = {}
        for sect in fields(self):
            obj = getattr(self, sect.name)
            d = {}
            for f in fields(obj):
                v = getattr(obj, f.name)
                if f.name in _OPTIONAL_FORMATS and v is None:
                    v = getattr(obj, _OPTIONAL_FORMATS[f.name])
                d[f.name] = v.to_dict() if isinstance(v, Fixed) else v
            out[sect.name] = d
        return out


# Formats whose default follows from the others: field -> the QuantConfig property that resolves it.
_OPTIONAL_FORMATS = {"bias": "bias_format", "output": "output_format"}


DEFAULT_TOML = """\
# lstm-hw configuration; every key is optional, these are the defaults.
[model]
input_size = 5
hidden_size = 12
num_layers = 2
return_sequences = true
seed = 0                                 # seed of random weights when none are given
output_size = 0                          # > 0: a dense head Linear(hidden_size, output_size) on each
                                         # emitted h_t (every t, or h_T only); 0: no head, h_t is the output
sequence_length = 0                      # > 0: every T steps start a new sequence (h = c = 0), so a
                                         # transfer (tlast) holds a batch; 0: tlast ends each sequence
stateful = false                         # true: h and c carry across tlast (a stream sent in chunks);
                                         # only reset and the state_rst port clear them

[quant]
weight = { bits = 8, frac = 6 }
activation = { bits = 16, frac = 12 }    # x_t, h_t and the stream ports
preact = { bits = 16, frac = 11 }        # gate pre-activations
nonlin = { bits = 16, frac = 14 }        # sigmoid / tanh outputs
cell = { bits = 18, frac = 12 }          # cell state
# bias = { bits = 24, frac = 18 }        # default: the weight x activation product format
rounding = "half_up"                     # or "truncate"
# output = { bits = 16, frac = 12 }      # the head's outputs; default: the activation format

[sparsity]
banks = 4
density = 0.5
head_density = 1.0                       # the head's fc.weight: kept fraction of every bank
pattern = "bank_balanced"                # or "unstructured" (ESE-style; banks padded to the fullest)

[activation]
method = "pwl"                           # lut | pwl | quadratic | taylor | auto
segments = 32                            # table entries, a power of two (auto: chosen)
sigmoid_range = 8.0                      # table covers |x| < range; beyond it: saturation
tanh_range = 4.0
coef_bits = 18                           # coefficients other than the constant term
fold = true                              # halve the tables by symmetry
taylor_order = 2                         # taylor: 1 to 3
max_error = 0.001                        # auto: bound on every table's max abs error

[hardware]
top = "lstm_top"
part = "xc7z020clg400-1"
clock_mhz = 200
rows = 4
board = ""                               # "" or a board carrying the part: pynq-z2, zedboard,
                                         # arty-a7-35, arty-a7-100, kc705; adds <top>_board.xdc
                                         # (Zynq boards also system.tcl: clock_mhz must be a clock
                                         # the PS makes, and tdata 8, 16, 32, ... 1024 bits wide)
io_lanes = 1                             # elements per stream beat, 1 to banks
mac_chain = 4                            # DSP48E1s summing through their post-adders, 1 to 16
weights = "rom"                          # or "ram": weights, indices and biases loadable at run time
                                         # through the s_axis_weights port (an image from lstm-hw pack)
sum_bits = 0                             # 0 or 2 to 64: the widest a gate sum may be; "ram" sums are this
                                         # wide (0: wide enough for any weights of the formats), and
                                         # weights whose sums could need more are refused
interleave = 1                           # 1 to 16 independent sequences sharing the pipeline: the
                                         # stream carries step t of each in turn, then step t + 1
macs = 0                                 # > 0: a budget of multipliers; rows (and, when every matrix
                                         # is dense, sparsity.banks) are chosen for the fewest cycles
"""


# -- parsing -------------------------------------------------------------------

def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML file; ``None`` gives the embedded default."""
    return parse_config(read_toml(path))


def config_mapping(config) -> dict:
    """A config given as a :class:`Config`, a dict shaped like the TOML, a TOML path or ``None``, as a fresh
    dict shaped like the TOML (a Config states every key; the caller's dict is left alone)."""
    if isinstance(config, Config):
        return toml_mapping(config.to_dict())
    if isinstance(config, dict):
        return copy.deepcopy(config)
    if config is None or isinstance(config, (str, Path)):
        return read_toml(config)
    raise UsageError(f"config: a Config, a dict or a TOML path, not a {type(config).__name__}")


def toml_mapping(data: dict) -> dict:
    """:meth:`Config.to_dict`'s plain data (the metadata's ``config``) shaped like the TOML, which
    :func:`parse_config` takes: a format as its ``bits`` and ``frac`` (every config format is signed)."""
    def value(v):
        if isinstance(v, dict) and set(v) == {"bits", "frac", "signed"} and v["signed"]:
            return {"bits": v["bits"], "frac": v["frac"]}
        return v
    return {section: {key: value(v) for key, v in values.items()} for section, values in data.items()}


def read_toml(path) -> dict:
    """The TOML file at ``path`` as a dict (``{}`` for ``None``), or a one-line :class:`ConfigError`."""
    if path is None:
        return {}
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot read: {e.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), f"invalid TOML: {e}") from None


def fit_config(data: dict, sizes: dict, model_path: str = "the model") -> Config:
    """``data`` (parsed TOML) with the model's sizes filled in; a size it states must match."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    model = data.setdefault("model", {})
    if not isinstance(model, dict):
        return parse_config(data)  # reports "model: must be a table"
    for key in ("input_size", "hidden_size", "num_layers", "output_size"):
        if key in model and model[key] != sizes[key]:
            raise ConfigError(f"model.{key}", f"is {model[key]!r}, but {model_path} has {sizes[key]}")
        model[key] = sizes[key]
    return parse_config(data)


_SECTIONS = {
    "model": ModelConfig, "quant": QuantConfig, "sparsity": SparsityConfig,
    "activation": ActivationConfig, "hardware": HardwareConfig,
}


def parse_config(data: dict) -> Config:
    """Validate a mapping (as parsed from TOML) into a :class:`Config`."""
    if not isinstance(data, dict):
        raise ConfigError("config", "must be a table")
    _no_unknown(data, _SECTIONS, "")
    sections = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(name, f"must be a table, got {_tname(raw)}")
        defaults = cls()
        _no_unknown(raw, {f.name for f in fields(cls)}, name + ".")
        values = {}
        for f in fields(cls):
            if f.name in raw:
                values[f.name] = _convert(raw[f.name], getattr(defaults, f.name), f"{name}.{f.name}",
                                          f.name)
        sections[name] = replace(defaults, **values)
    if 0 < sections["hardware"].macs <= MAX_MACS:   # (others are refused by the checks)
        sections = _fit_budget(sections, data)
    return Config(**sections)


def _fit_budget(sections: dict, data: dict) -> dict:
    """``sections`` with the rows (and banks) ``hardware.macs`` chooses (:mod:`.budget`); values the mapping
    states for them must be the chosen ones (so a resolved config reads back as itself)."""
    from .budget import banks_chosen, choose_mapping
    h, s, m = sections["hardware"], sections["sparsity"], sections["model"]
    if s.pattern != "bank_balanced":   # the checks refuse it, before a search that could not run
        Config(**sections)
    chosen = choose_mapping(m, sections["quant"], s, sections["activation"], h)
    keys = [("hardware", "rows", chosen.rows)] + ([("sparsity", "banks", chosen.banks)]
                                                   if banks_chosen(m, s) else [])
    for section, key, value in keys:
        given = data.get(section, {}).get(key)
        if given is not None and given != value:
            raise ConfigError(f"{section}.{key}", f"is chosen by hardware.macs = {h.macs} ({value} here), but the "
                                                  f"config sets {given}: leave it out, or set macs = 0")
    return {**sections, "hardware": replace(h, rows=chosen.rows), "sparsity": replace(s, banks=chosen.banks)}


def _no_unknown(raw: dict, known, prefix: str):
    for key in raw:
        if key not in known:
            shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)  # TOML's quoted-key form
            raise ConfigError(prefix + shown, f"unknown key (expected one of: {', '.join(sorted(known))})")


def _tname(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            dict: "a table", list: "an array"}.get(type(v), type(v).__name__)


def _convert(value, default, path: str, name: str):
    if name in _OPTIONAL_FORMATS or isinstance(default, Fixed):
        return _fixed(value, path)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(path, f"must be true or false, got {_tname(value)}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"must be an integer, got {_tname(value)}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"must be a number, got {_tname(value)}")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond float64
            raise ConfigError(path, "is far too large") from None
        if not math.isfinite(value):
            raise ConfigError(path, "must be finite")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(path, f"must be a string, got {_tname(value)}")
        return value
    raise AssertionError(path)  # pragma: no cover - every field has one of the types above


def _fixed(value, path: str) -> Fixed:
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a table like {{ bits = 16, frac = 12 }}, got {_tname(value)}")
    _no_unknown(value, {"bits", "frac"}, path + ".")
    for key in ("bits", "frac"):
        if key not in value:
            raise ConfigError(f"{path}.{key}", "missing")
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{path}.{key}", f"must be an integer, got {_tname(v)}")
    bits, frac = value["bits"], value["frac"]
    if not 2 <= bits <= MAX_FORMAT_BITS:
        raise ConfigError(f"{path}.bits", f"must be between 2 and {MAX_FORMAT_BITS}, got {bits}")
    if not -bits <= frac <= 2 * bits:
        raise ConfigError(f"{path}.frac", f"must be between {-bits} and {2 * bits} for {bits} bits, got {frac}")
    return Fixed(bits, frac)


# -- cross-field checks --------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VERILOG_KEYWORDS = frozenset(
    "always and assign begin buf case casex casez cmos deassign default defparam disable edge else "
    "end endcase endfunction endmodule endprimitive endspecify endtable endtask event for force "
    "forever fork function generate genvar highz0 highz1 if ifnone initial inout input integer join "
    "large localparam macromodule medium module nand negedge nmos nor not notif0 notif1 or output "
    "parameter pmos posedge primitive pull0 pull1 pulldown pullup rcmos real realtime reg release "
    "repeat rnmos rpmos rtran rtranif0 rtranif1 scalared signed small specify specparam strong0 "
    "strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg "
    "unsigned vectored wait wand weak0 weak1 while wire wor xnor xor".split())


def _is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _check_config(c: Config):
    m, q, s, a, h = c.model, c.quant, c.sparsity, c.activation, c.hardware
    for key in ("input_size", "hidden_size"):
        v = getattr(m, key)
        if not 1 <= v <= 4096:
            raise ConfigError(f"model.{key}", f"must be between 1 and 4096, got {v}")
    if not 1 <= m.num_layers <= 16:
        raise ConfigError("model.num_layers", f"must be between 1 and 16, got {m.num_layers}")
    if not 0 <= m.seed < 2 ** 32:
        raise ConfigError("model.seed", f"must be between 0 and 2**32-1, got {m.seed}")
    if not 0 <= m.output_size <= 4096:
        raise ConfigError("model.output_size", f"must be between 0 (no head) and 4096, got {m.output_size}")
    if not 0 <= m.sequence_length <= 1 << 24:
        raise ConfigError("model.sequence_length", f"must be between 0 (tlast ends a sequence) and 2**24, "
                                                   f"got {m.sequence_length}")
    if m.stateful and m.sequence_length:
        raise ConfigError("model.stateful", f"carries the state across sequences, so it takes no sequence_length "
                                            f"(got {m.sequence_length}): set one of them")

    if q.rounding not in ROUNDING_MODES:
        raise ConfigError("quant.rounding", f"must be one of {', '.join(map(repr, ROUNDING_MODES))}, "
                                            f"got {q.rounding!r}")
    if q.bias_format.frac > q.product.frac:
        raise ConfigError("quant.bias.frac", f"must not exceed the product's {q.product.frac} fraction bits "
                                             f"(weight.frac + activation.frac), got {q.bias_format.frac}")
    cell_sum_frac = max(q.nonlin.frac + q.cell.frac, 2 * q.nonlin.frac)
    if cell_sum_frac - min(q.nonlin.frac + q.cell.frac, 2 * q.nonlin.frac) > 24:
        raise ConfigError("quant.cell.frac", f"must be within 24 bits of quant.nonlin.frac "
                                             f"({q.nonlin.frac}), got {q.cell.frac}")
    if q.bias_format.frac < q.product.frac - 24:
        raise ConfigError("quant.bias.frac", f"must be within 24 bits of the product's {q.product.frac} "
                                             f"fraction bits, got {q.bias_format.frac}")
    if q.nonlin.max_int < (1 << q.nonlin.frac) - 1 or q.nonlin.frac < 1:
        raise ConfigError("quant.nonlin", f"must represent values up to 1.0 (needs bits >= frac + 1), "
                                          f"got {{ bits = {q.nonlin.bits}, frac = {q.nonlin.frac} }}")

    if not 1 <= s.banks <= 256:
        raise ConfigError("sparsity.banks", f"must be between 1 and 256, got {s.banks}")
    if not 0.0 < s.density <= 1.0:
        raise ConfigError("sparsity.density", f"must be in (0, 1], got {s.density}")
    if not 0.0 < s.head_density <= 1.0:
        raise ConfigError("sparsity.head_density", f"must be in (0, 1], got {s.head_density}")
    if s.pattern not in SPARSITY_PATTERNS:
        raise ConfigError("sparsity.pattern", f"must be one of {', '.join(map(repr, SPARSITY_PATTERNS))}, "
                                              f"got {s.pattern!r}")
    for layer in range(m.num_layers):
        width = c.layer_input_size(layer) + m.hidden_size
        if s.banks > width:
            raise ConfigError("sparsity.banks", f"must not exceed the {width} columns of layer {layer}'s "
                                                f"[W_ih | W_hh], got {s.banks}")
    if m.output_size > 0:
        if s.banks > m.hidden_size:
            raise ConfigError("sparsity.banks", f"must not exceed the {m.hidden_size} columns of the head's "
                                                f"fc.weight, got {s.banks}")
        # The head's exact sum has product.frac fraction bits; it narrows once into the output format.
        out_frac = q.output_format.frac
        if not q.product.frac - 40 <= out_frac <= q.product.frac:
            raise ConfigError("quant.output.frac", f"must be between {q.product.frac - 40} and the product's "
                                                   f"{q.product.frac} fraction bits (weight.frac + "
                                                   f"activation.frac), got {out_frac}")

    if a.method not in ACTIVATION_METHODS:
        raise ConfigError("activation.method", f"must be one of {', '.join(map(repr, ACTIVATION_METHODS))}, "
                                               f"got {a.method!r}")
    if not _is_pow2(a.segments) or a.segments > 4096:
        raise ConfigError("activation.segments", f"must be a power of two up to 4096, got {a.segments}")
    if not 4 <= a.coef_bits <= 25:
        raise ConfigError("activation.coef_bits", f"must be between 4 and 25, got {a.coef_bits}")
    if a.taylor_order not in (1, 2, 3):
        raise ConfigError("activation.taylor_order", f"must be 1, 2 or 3, got {a.taylor_order}")
    if not 0.0 < a.max_error < 1.0:
        raise ConfigError("activation.max_error", f"must be in (0, 1), got {a.max_error:g}")
    span = 1 if a.fold else 2
    for key, fmt in (("sigmoid_range", q.preact), ("tanh_range", q.preact), ("tanh_range", q.cell)):
        _check_range(getattr(a, key), f"activation.{key}", fmt, 1 if a.method == "auto" else a.segments, span)

    if not _IDENT.match(h.top) or h.top in _VERILOG_KEYWORDS or h.top.startswith("$"):
        raise ConfigError("hardware.top", f"must be a Verilog identifier, got {h.top!r}")
    parse_part(h.part, "hardware.part")
    on = board(h.board, h.part, "hardware.board") if h.board else None
    if not 1.0 <= h.clock_mhz <= 800.0:
        raise ConfigError("hardware.clock_mhz", f"must be between 1 and 800, got {h.clock_mhz:g}")
    if on is not None and on.ps7 is not None:
        fabric_clock(on, h.clock_mhz)
    if not (h.rows in (1, 2) or (h.rows >= 4 and h.rows % 4 == 0)) or h.rows > 256:
        raise ConfigError("hardware.rows", f"must be 1, 2 or a multiple of 4 up to 256, got {h.rows}")
    if not 1 <= h.io_lanes <= s.banks:
        raise ConfigError("hardware.io_lanes", f"must be from 1 to sparsity.banks = {s.banks} (a beat's elements "
                                               f"go into different banks in one cycle), got {h.io_lanes}")
    if h.weights not in WEIGHT_MEMORIES:
        raise ConfigError("hardware.weights", f"must be one of {', '.join(map(repr, WEIGHT_MEMORIES))}, "
                                              f"got {h.weights!r}")
    if h.weights == "ram" and s.pattern != "bank_balanced":
        raise ConfigError("hardware.weights", f"\"ram\" needs sparsity.pattern = \"bank_balanced\": with "
                                              f"{s.pattern!r} the stored weights per bank depend on the weights")
    if h.sum_bits != 0 and not 2 <= h.sum_bits <= MAX_SUM_BITS:
        raise ConfigError("hardware.sum_bits", f"must be 0 (no bound) or from 2 to {MAX_SUM_BITS}, got {h.sum_bits}")
    if not 1 <= h.mac_chain <= MAX_MAC_CHAIN:
        raise ConfigError("hardware.mac_chain", f"must be from 1 to {MAX_MAC_CHAIN}, got {h.mac_chain}")
    if not 1 <= h.interleave <= MAX_INTERLEAVE:
        raise ConfigError("hardware.interleave", f"must be from 1 to {MAX_INTERLEAVE}, got {h.interleave}")
    if not 0 <= h.macs <= MAX_MACS:
        raise ConfigError("hardware.macs", f"must be 0 (rows and banks as given) or up to {MAX_MACS}, got {h.macs}")
    if h.macs and s.pattern != "bank_balanced":
        raise ConfigError("hardware.macs", f"needs sparsity.pattern = \"bank_balanced\": with {s.pattern!r} the "
                                           f"stored weights per bank, so the cycles, depend on the weights")
    if h.interleave > 1 and m.stateful:
        raise ConfigError("hardware.interleave", f"{h.interleave} interleaved sequences start together from zero "
                                                 f"state; model.stateful carries one stream's state, so set "
                                                 f"interleave = 1 or stateful = false")
    if h.interleave > 1 and not m.return_sequences and not m.sequence_length:
        raise ConfigError("hardware.interleave", f"with return_sequences = false, {h.interleave} interleaved "
                                                 f"sequences need model.sequence_length: their last timesteps "
                                                 f"must be known before the group's tlast")
    group = h_write_group(c)
    if not io_lanes_fit(h.rows, s.banks, h.io_lanes):
        raise ConfigError("hardware.io_lanes", f"must divide, or be a multiple of, the {group} h values a layer "
                                               f"writes per cycle (rows / 4, when banks >= rows / 4), "
                                               f"got {h.io_lanes}")
    if on is not None and on.ps7 is not None:
        _check_dma_widths(c, on.name)


def _stream_formats(config: Config) -> tuple[Fixed, Fixed]:
    """The formats of the input and the output stream: the output's is the head's when there is one."""
    q = config.quant
    return q.activation, q.output_format if config.model.output_size > 0 else q.activation


def tdata_widths(config: Config, lanes: int | None = None) -> tuple[int, int]:
    """(input, output) AXI4-Stream ``tdata`` widths in bits: ``lanes`` (default ``hardware.io_lanes``)
    elements, each in whole bytes."""
    lanes = config.hardware.io_lanes if lanes is None else lanes
    return tuple(lanes * 8 * -(-fmt.bits // 8) for fmt in _stream_formats(config))


def _check_dma_widths(c: Config, board_name: str):
    """On a Zynq board the streams go through an AXI DMA, which takes only :data:`DMA_STREAM_WIDTHS`: refuse
    other widths, naming the ``io_lanes`` values that would fit (or the format, when none would)."""
    allowed = DMA_STREAM_WIDTHS
    widths = tdata_widths(c)
    if all(w in allowed for w in widths):
        return
    dma = (f"board = \"{board_name}\" streams through an AXI DMA, whose streams are "
           f"{', '.join(map(str, allowed[:3]))}, ... {allowed[-1]} bits wide (PG021)")
    for side, key, fmt, width in zip(("input", "output"), ("activation", "output"), _stream_formats(c),
                                     tdata_widths(c, lanes=1)):
        if width not in allowed:
            raise ConfigError(f"quant.{key}.bits", f"{dma}, but {fmt.bits}-bit {side} values travel as {width} "
                                                   f"bits, which no io_lanes makes fit; use bits <= 16")
    lanes = [n for n in range(1, c.sparsity.banks + 1)
             if io_lanes_fit(c.hardware.rows, c.sparsity.banks, n)
             and all(w in allowed for w in tdata_widths(c, lanes=n))]
    side, width = next((s, w) for s, w in zip(("input", "output"), widths) if w not in allowed)
    choices = ", ".join(map(str, lanes[:-1])) + (" or " if len(lanes) > 1 else "") + str(lanes[-1])
    raise ConfigError("hardware.io_lanes", f"{dma}, but io_lanes = {c.hardware.io_lanes} makes {width}-bit "
                                           f"{side} tdata; io_lanes = {choices} would work")


def cell_lanes(rows: int) -> int:
    """A layer's cell-update lanes, the hidden units a pass of ``rows`` row lanes completes: ``rows / 4``, at
    least 1."""
    return max(1, rows // 4)


def h_group(rows: int, banks: int, io_lanes: int) -> int:
    """The ``h`` values a layer writes per cycle: its cell lanes' when there are at least as many banks
    (they are consecutive columns, so in different banks); else the largest divisor of the cell lanes that
    is at most ``banks`` and divides, or is a multiple of, ``io_lanes`` (a pass's ``h`` go that many a cycle)."""
    lanes = cell_lanes(rows)
    if lanes <= banks:
        return lanes
    return max(d for d in range(1, banks + 1) if lanes % d == 0 and (d % io_lanes == 0 or io_lanes % d == 0))


def io_lanes_fit(rows: int, banks: int, io_lanes: int) -> bool:
    """``io_lanes`` divides, or is a multiple of, the :func:`h_group` it makes (always so when the cell
    lanes outnumber the banks: the group is chosen to fit)."""
    group = h_group(rows, banks, io_lanes)
    return group % io_lanes == 0 or io_lanes % group == 0


def h_write_group(config: Config) -> int:
    """:func:`h_group` of a config's ``hardware.rows``, ``sparsity.banks`` and ``hardware.io_lanes``."""
    return h_group(config.hardware.rows, config.sparsity.banks, config.hardware.io_lanes)


def _check_range(value: float, path: str, fmt: Fixed, segments: int, span: int = 1):
    """A table range must be a power of two, and split into whole, power-of-two input-code segments.

    ``span`` is 1 for a folded table (``|x| < range``) and 2 for an unfolded one.
    """
    if value <= 0 or not math.log2(value).is_integer():
        raise ConfigError(path, f"must be a positive power of two, got {value:g}")
    try:
        codes = math.ldexp(value, fmt.frac)
    except OverflowError:
        codes = math.inf
    if codes > 1 << (fmt.bits - 1):
        raise ConfigError(path, f"{value:g} does not fit the input format {fmt} (max {fmt.max_real:g})")
    if span * codes < segments:
        raise ConfigError(path, f"{value:g} spans only {span * codes:g} input codes of {fmt}, fewer than "
                                f"{segments} segments")
