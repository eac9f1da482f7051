"""Bad input, fuzzed: hundreds of generated cases through the command line.

Every case must end in one ``error: `` line on stderr, exit code 2, no
traceback, and the working directory exactly as it was (no output directory,
no partial or temporary file, and every existing file unchanged in bytes and
mtime). The cases come from seeded generators, so a failure replays by its id.
Nearly all of them fail before any Verilog is rendered.
"""

from __future__ import annotations

import io
import json
import random
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_hw.cli import main
from lstm_hw.config.schema import Config, parse_config
from lstm_hw.model.weights import random_weights

from helpers import SMALL_TOML, assert_one_line_error

DEFAULT = tomllib.loads(CliRunner().invoke(main, ["config"]).output)
SMALL = tomllib.loads(SMALL_TOML)
# Two layers and a head: weight cases then cover layer 1 and fc.*.
HEAD_TOML = SMALL_TOML.replace("num_layers = 1", "num_layers = 2\noutput_size = 2")
FORMATS = ("weight", "activation", "preact", "nonlin", "cell", "bias", "output")  # bias, output: optional


@dataclass
class Case:
    id: str
    args: list[str]                                  # "{d}" stands for the case's directory
    files: dict[str, bytes | None] = field(default_factory=dict)   # None: an (empty) directory
    needles: tuple[str, ...] = ()


CASES: list[Case] = []


def add(id_: str, args, files=None, *needles):
    CASES.append(Case(id_, list(args), dict(files or {}), tuple(needles)))


# -- TOML text helpers ------------------------------------------------------------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or np.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v)                          # a TOML basic string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Raw):
        return v.text
    raise TypeError(v)


class Raw:
    """A TOML literal written as is (dates and times have no Python-side constructor here)."""

    def __init__(self, text):
        self.text = text


def toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def dump(doc: dict) -> str:
    lines = []
    for key, v in doc.items():
        if not isinstance(v, dict):
            lines.append(f"{toml_key(key)} = {toml_value(v)}")
    for key, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()]
    return "\n".join(lines) + "\n"


def small_with(section: str, key: str, value) -> dict:
    doc = json.loads(json.dumps(SMALL))
    doc.setdefault(section, {})[key] = value
    return doc


def generate_config(id_, text: str | bytes, *needles, extra_files=None):
    data = text.encode() if isinstance(text, str) else text
    add(id_, ["generate", "{d}/cfg.toml", "-o", "{d}/out"], {"cfg.toml": data, **(extra_files or {})}, *needles)


rng = random.Random(20240606)

# -- malformed TOML ---------------------------------------------------------------------

def invalid_toml(data: bytes) -> bool:
    try:
        tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    return False


DEFAULT_TEXT = CliRunner().invoke(main, ["config"]).output.encode()
n = 0
while n < 40:                                          # truncated
    cut = rng.randrange(1, len(DEFAULT_TEXT))
    data = DEFAULT_TEXT[:cut]
    if invalid_toml(data):
        generate_config(f"toml-truncated-{cut}", data, "cfg.toml")
        n += 1
n = 0
while n < 40:                                          # syntax characters dropped in or deleted
    data = bytearray(DEFAULT_TEXT)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(data))
        if rng.random() < 0.5:
            data[pos:pos] = rng.choice([b"[", b"]", b"{", b"}", b"=", b'"', b"'", b",", b"\n=", b".", b"[[", b"\\"])
        else:
            del data[pos:pos + rng.randint(1, 4)]
    if invalid_toml(bytes(data)):
        generate_config(f"toml-mangled-{n}", bytes(data), "cfg.toml")
        n += 1
n = 0
while n < 20:                                          # binary garbage
    data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if invalid_toml(data):
        generate_config(f"toml-garbage-{n}", data, "cfg.toml")
        n += 1
SAFE_TEXT = SMALL_TOML + '[hardware]\ntop = "lstm_é"\n'   # an invalid top, so a decoding slip still fails
for enc in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252"):
    generate_config(f"toml-encoding-{enc}", SAFE_TEXT.encode(enc), "cfg.toml")
generate_config("toml-utf8-bom", b"\xef\xbb\xbf" + SMALL_TOML.encode() + b"[model\n", "cfg.toml")
generate_config("toml-nul", SMALL_TOML.encode() + b"\x00", "cfg.toml")
generate_config("toml-duplicate-key", SMALL_TOML + "[model]\ninput_size = 4\n", "cfg.toml")
generate_config("toml-duplicate-table", SMALL_TOML + "[sparsity]\n", "cfg.toml")
generate_config("toml-array-of-tables", "[[model]]\ninput_size = 3\n", "model")

# -- unknown keys at every level ----------------------------------------------------------

def random_key() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz_-0123456789"
    key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
    return rng.choice([key, key, key + " x", key + "\nx", "ü" + key, key + "."])


for level in ["", *DEFAULT, *(f"quant.{f}" for f in FORMATS)]:
    for i in range(4):
        key = random_key()
        doc = json.loads(json.dumps(SMALL))
        if level == "":
            if key in DEFAULT:
                continue
            doc[key] = rng.choice([1, {"a": 1}, "x"])
            needle = ""
        elif level.startswith("quant."):
            fmt = level.split(".")[1]
            if key in ("bits", "frac"):
                continue
            doc.setdefault("quant", {})[fmt] = {"bits": 8, "frac": 4, key: 1}
            needle = level + "."
        else:
            if key in DEFAULT[level] or key in ("bias", "output"):
                continue
            doc.setdefault(level, {})[key] = rng.choice([1, 2.5, "x", True])
            needle = level + "."
        generate_config(f"unknown-{level or 'top'}-{i}", dump(doc), needle)

# -- wrong types for every key ----------------------------------------------------------

WRONG = {
    bool: [1, 0, "true", 1.0, [True], {"a": True}, Raw("1979-05-27")],
    int: [True, 1.5, "4", [4], {"a": 4}, Raw("1979-05-27T07:32:00Z"), Raw("07:32:00"), float("nan")],
    float: [True, "0.5", [0.5], {"x": 0.5}, Raw("1979-05-27"), Raw("07:32:00.5")],
    str: [1, 1.5, True, ["x"], {"x": "y"}, Raw("1979-05-27")],
    dict: [16, "16,12", True, [16, 12], 1.5, Raw("1979-05-27")],
}

def field_type(section: str, key: str) -> type:
    """The Python type a key takes (the TOML text writes ``clock_mhz = 200``, a float field)."""
    value = getattr(getattr(Config(), section), key)
    return dict if key in FORMATS else type(value)


for section, keys in DEFAULT.items():
    for key in [*keys, *(("bias", "output") if section == "quant" else ())]:
        for wrong in WRONG[field_type(section, key)]:
            generate_config(f"type-{section}.{key}-{toml_value(wrong)}", dump(small_with(section, key, wrong)),
                            f"{section}.{key}")
    for wrong in (1, "model", [1], True):
        doc = json.loads(json.dumps(SMALL))
        doc[section] = wrong
        generate_config(f"type-{section}-{toml_value(wrong)}", dump(doc), section)
for fmt in FORMATS:
    for inner in ("bits", "frac"):
        for wrong in WRONG[int]:
            generate_config(f"type-quant.{fmt}.{inner}-{toml_value(wrong)}",
                            dump(small_with("quant", fmt, {"bits": 8, "frac": 4, inner: wrong})),
                            f"quant.{fmt}.{inner}")
        generate_config(f"missing-quant.{fmt}.{inner}",
                        dump(small_with("quant", fmt, {k: v for k, v in {"bits": 8, "frac": 4}.items() if k != inner})),
                        f"quant.{fmt}.{inner}")

# -- out-of-range values ----------------------------------------------------------------

INT64 = 2 ** 63 - 1
NONFINITE = [float("nan"), float("inf"), float("-inf")]


def ints_outside(lo, hi, k=4):
    """Integers below lo or above hi (inclusive bounds), including the neighbours and the int64 ends."""
    below = [lo - 1, -INT64 - 1, *(rng.randint(-10 ** 9, lo - 1) for _ in range(k))]
    above = [hi + 1, INT64, *(rng.randint(hi + 1, hi + 10 ** 9) for _ in range(k))]
    return below + above


def random_word():
    return "".join(rng.choice("abcxyz_019-. ") for _ in range(rng.randint(0, 10)))


RANGES: dict[tuple[str, str], list] = {
    ("model", "input_size"): ints_outside(1, 4096),
    ("model", "hidden_size"): ints_outside(1, 4096),
    ("model", "num_layers"): ints_outside(1, 16),
    ("model", "seed"): ints_outside(0, 2 ** 32 - 1),
    ("model", "output_size"): ints_outside(0, 4096),
    ("quant", "rounding"): ["", "HALF_UP", "half-up", "round", *(random_word() for _ in range(3))],
    ("sparsity", "banks"): ints_outside(1, 7),                # SMALL has 3 + 4 columns
    ("sparsity", "density"): [0, 0.0, -0.5, 1.0000001, 1.5, 2, 1e308, -1e308, *NONFINITE],
    ("sparsity", "head_density"): [0, -1e-9, 1.01, 1e300, *NONFINITE],
    ("sparsity", "pattern"): ["", "bank-balanced", "BANK_BALANCED", *(random_word() for _ in range(3))],
    ("activation", "method"): ["", "PWL", "cordic", *(random_word() for _ in range(3))],
    ("activation", "segments"): [0, -32, 3, 6, 33, 100, 8192, INT64, -INT64 - 1],
    ("activation", "sigmoid_range"): [0, -8, -8.0, 3.0, 6, 0.3, 32, 64.0, 2.0 ** 40, 2.0 ** -40, *NONFINITE],
    ("activation", "tanh_range"): [0, -4.0, 5, 2.5, 32, 2.0 ** 60, 2.0 ** -30, *NONFINITE],
    ("activation", "coef_bits"): ints_outside(4, 25),
    ("activation", "taylor_order"): ints_outside(1, 3),
    ("activation", "max_error"): [0, 0.0, -1e-3, 1, 1.0, 5.5, 1e308, *NONFINITE],
    ("hardware", "top"): ["", "1abc", "a b", "a-b", "$top", "module", "wire", "lstm\ntop", "tôp",
                          *(random_word() + "-" for _ in range(3))],
    ("hardware", "part"): ["", "xc7z020", "xc7z020clg400", "xc7z020clg400-9", "XC7Z020CLG400-1 ", "xcvu9p-flga2104-2",
                           *(random_word() for _ in range(3))],
    ("hardware", "clock_mhz"): [0, 0.999, -200, 800.001, 1e6, 1e308, *NONFINITE],
    ("hardware", "rows"): [0, -4, 3, 5, 6, 7, 10, 260, 512, INT64],
    ("hardware", "board"): ["pynq", "PYNQ-Z2", " ", *(random_word() + "?" for _ in range(3))],
}
for (section, key), values in RANGES.items():
    for value in values:
        generate_config(f"range-{section}.{key}-{toml_value(value)}", dump(small_with(section, key, value)),
                        f"{section}.{key}")
for fmt in FORMATS:
    for bits in [1, 0, -3, 25, 64, INT64]:
        generate_config(f"range-quant.{fmt}.bits-{bits}", dump(small_with("quant", fmt, {"bits": bits, "frac": 0})),
                        f"quant.{fmt}.bits")
    for bits, frac in [(8, -9), (8, 17), (2, 5), (24, 49), (16, -INT64 - 1), (16, INT64)]:
        generate_config(f"range-quant.{fmt}.frac-{bits}-{frac}",
                        dump(small_with("quant", fmt, {"bits": bits, "frac": frac})), f"quant.{fmt}.frac")
# cross-field: tables that do not fit the formats, nonlin unable to hold 1.0, a bias finer than the product
def small_merged(overlay: dict) -> dict:
    doc = json.loads(json.dumps(SMALL))
    for section, keys in overlay.items():
        doc.setdefault(section, {}).update(keys)
    return doc


for overlay, needle in [
    ({"activation": {"sigmoid_range": 32.0}}, "activation.sigmoid_range"),
    ({"quant": {"preact": {"bits": 8, "frac": 6}}}, "activation.sigmoid_range"),
    ({"quant": {"cell": {"bits": 8, "frac": 6}}}, "activation.tanh_range"),
    ({"activation": {"segments": 4096, "fold": False}, "quant": {"preact": {"bits": 10, "frac": 2}}},
     "activation.sigmoid_range"),
    ({"quant": {"nonlin": {"bits": 8, "frac": 8}}}, "quant.nonlin"),
    ({"quant": {"nonlin": {"bits": 8, "frac": 0}}}, "quant.nonlin"),
    ({"quant": {"bias": {"bits": 24, "frac": 19}}}, "quant.bias.frac"),
    ({"quant": {"bias": {"bits": 24, "frac": -24}}}, "quant.bias.frac"),
    ({"model": {"output_size": 2}, "quant": {"output": {"bits": 16, "frac": 19}}}, "quant.output.frac"),
    ({"model": {"hidden_size": 1, "output_size": 1}}, "sparsity.banks"),
    ({"model": {"output_size": 2}, "sparsity": {"banks": 5}}, "sparsity.banks"),
    ({"hardware": {"board": "kc705"}}, "hardware.board"),
    ({"hardware": {"part": "xc7a35tcsg324-1", "board": "pynq-z2"}}, "hardware.board"),
]:
    generate_config(f"cross-{needle}-{len(CASES)}", dump(small_merged(overlay)), needle)

# -- weights ----------------------------------------------------------------------------

def npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)        # pickles object arrays, as a careless export would
    return buf.getvalue()


def npy(array, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def weights_case(id_, toml_text, payload: bytes, *needles, name="w.npz"):
    add(id_, ["generate", "{d}/cfg.toml", "-w", "{d}/" + name, "-o", "{d}/out"],
        {"cfg.toml": toml_text.encode(), name: payload}, *needles)


for toml_text, tag in ((SMALL_TOML, "small"), (HEAD_TOML, "head")):
    cfg = parse_config(tomllib.loads(toml_text))
    good = random_weights(cfg)
    names = list(good)
    for i in range(12):                                  # wrong shapes
        name = rng.choice(names)
        shape = list(good[name].shape)
        how = rng.choice(["grow", "shrink", "transpose", "add-dim", "drop-dim", "empty"])
        if how == "grow":
            shape[rng.randrange(len(shape))] += rng.randint(1, 5)
        elif how == "shrink":
            shape[rng.randrange(len(shape))] -= 1
        elif how == "transpose" and len(shape) == 2:
            shape.reverse()
        elif how == "add-dim":
            shape.insert(rng.randrange(len(shape) + 1), 1)
        elif how == "drop-dim" and len(shape) == 2:
            shape = [shape[0] * shape[1]]
        else:
            shape[0] = 0
        if tuple(shape) == good[name].shape:
            shape = shape + [1]
        weights_case(f"w-{tag}-shape-{name}-{how}-{i}", toml_text,
                     npz({**good, name: np.zeros(shape)}), name)
    for i in range(8):                                   # missing arrays
        dropped = rng.sample(names, rng.randint(1, len(names)))
        weights_case(f"w-{tag}-missing-{i}", toml_text, npz({k: v for k, v in good.items() if k not in dropped}))
    weights_case(f"w-{tag}-empty-archive", toml_text, npz({}), names[0])
    for i, extra in enumerate(["weight_ih_l7", "bias", "lstm.weight_ih_l0", "weight_ih_l0_reverse", "fc.weight_x",
                               "arr_0"]):                # extra arrays
        weights_case(f"w-{tag}-extra-{extra}", toml_text, npz({**good, extra: np.zeros(3)}), extra)
    for i in range(10):                                  # NaN / Inf
        name = rng.choice(names)
        a = good[name].copy()
        idx = tuple(rng.randrange(s) for s in a.shape)
        a[idx] = rng.choice(NONFINITE)
        weights_case(f"w-{tag}-nonfinite-{name}-{i}", toml_text, npz({**good, name: a}), name)
    for dtype in (np.bool_, np.complex128, "U3", "S2", [("a", "f8")]):   # not numbers
        name = rng.choice(names)
        weights_case(f"w-{tag}-dtype-{np.dtype(dtype).str}", toml_text,
                     npz({**good, name: np.zeros(good[name].shape, dtype=dtype)}), name)
    name = rng.choice(names)
    obj = np.empty(good[name].shape, dtype=object)
    obj[...] = 0.0
    weights_case(f"w-{tag}-object", toml_text, npz({**good, name: obj}), "w.npz")
cfg = parse_config(tomllib.loads(SMALL_TOML))
good = random_weights(cfg)
weights_case("w-head-arrays-without-head", SMALL_TOML,
             npz({**good, "fc.weight": np.zeros((2, 4)), "fc.bias": np.zeros(2)}), "fc.")
archive = npz(good)
for i in range(8):                                       # not an .npz
    payload = rng.choice([
        bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))),
        archive[: rng.randrange(1, len(archive))],
        npy(good["weight_ih_l0"]),
        SMALL_TOML.encode(),
        b"PK\x03\x04" + bytes(40),
    ])
    weights_case(f"w-not-npz-{i}", SMALL_TOML, payload, "w.npz")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("weight_ih_l0.npy", b"not an array")
weights_case("w-zip-of-text", SMALL_TOML, buf.getvalue(), "w.npz")
weights_case("w-empty-file", SMALL_TOML, b"", "w.npz")
add("w-missing-file", ["generate", "{d}/cfg.toml", "-w", "{d}/nope.npz", "-o", "{d}/out"],
    {"cfg.toml": SMALL_TOML.encode()}, "nope.npz")
add("w-is-a-directory", ["generate", "{d}/cfg.toml", "-w", "{d}/wdir", "-o", "{d}/out"],
    {"cfg.toml": SMALL_TOML.encode(), "wdir": None}, "wdir")
add("cfg-is-a-directory", ["generate", "{d}/cdir", "-o", "{d}/out"], {"cdir": None}, "cdir")
add("cfg-missing", ["generate", "{d}/nope.toml", "-o", "{d}/out"], {}, "nope.toml")

# -- output directories -----------------------------------------------------------------

VALID = {"cfg.toml": SMALL_TOML.encode()}
# A valid design renders (about a second) before the write fails: only a few of these.
add("out-under-file", ["generate", "{d}/cfg.toml", "-o", "{d}/plain/out"], {**VALID, "plain": b"x"}, "plain")
add("out-deep-under-file", ["generate", "{d}/cfg.toml", "-o", "{d}/plain/a/b/c"], {**VALID, "plain": b"x"}, "plain")
add("out-is-file", ["generate", "{d}/cfg.toml", "-o", "{d}/plain"], {**VALID, "plain": b"x"}, "plain")
add("out-under-file-force", ["generate", "{d}/cfg.toml", "-o", "{d}/plain/out", "--force"],
    {**VALID, "plain": b"x"}, "plain")
for i in range(6):                                      # bad input and an unwritable target: nothing written either way
    bad = rng.choice([c for c in CASES if c.id.startswith(("range-", "type-"))])
    add(f"out-under-file-bad-config-{i}", ["generate", "{d}/cfg.toml", "-o", "{d}/plain/out"],
        {"cfg.toml": bad.files["cfg.toml"], "plain": b"x"}, *bad.needles)


def existing_outputs(i: int) -> dict[str, bytes | None]:
    """A non-empty ``out/``: earlier outputs, the user's own files, hidden files, subdirectories."""
    choices = ["lstm_top.v", "lstm_top.json", "lstm_top.xdc", "build.tcl", "package_ip.tcl", "notes.txt",
               ".hidden", ".lstm_top.v.tmp", "sub/keep.txt", "vivado_out/post_route.dcp"]
    files = {f"out/{name}": bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
             for name in rng.sample(choices, rng.randint(1, 4))}
    if i % 5 == 0:
        files = {"out/emptydir": None}
    return files


for i in range(20):                                     # existing outputs, no --force: refused before rendering
    add(f"existing-no-force-{i}", ["generate", "{d}/cfg.toml", "-o", "{d}/out"],
        {**VALID, **existing_outputs(i)}, "out", "--force")
for i in range(20):                                     # existing outputs, --force, but bad input: untouched
    bad = rng.choice([c for c in CASES if c.id.startswith(("range-", "type-", "w-", "toml-", "unknown-"))])
    add(f"existing-force-bad-{bad.id}", [*bad.args, "--force"], {**bad.files, **existing_outputs(i)}, *bad.needles)
for i in range(6):                                      # existing outputs, no --force, bad input: the input's error
    bad = rng.choice([c for c in CASES if c.id.startswith(("range-", "type-"))])
    add(f"existing-no-force-bad-{bad.id}", bad.args, {**bad.files, **existing_outputs(i)}, *bad.needles)

# -- golden: input .npy -----------------------------------------------------------------

def golden_case(id_, payload: bytes, *needles, existing_y: bool):
    files = {"cfg.toml": SMALL_TOML.encode(), "x.npy": payload}
    if existing_y:
        files["y.npy"] = npy(np.arange(6.0))
    add(id_, ["golden", "{d}/cfg.toml", "-i", "{d}/x.npy", "-o", "{d}/y.npy"], files, "x.npy", *needles)


for i in range(40):
    kind = rng.choice(["width", "ndim", "empty", "nonfinite", "dtype", "garbage", "npz"])
    if kind == "width":
        x = np.zeros((rng.randint(1, 9), rng.choice([1, 2, 4, 5, 30])))
    elif kind == "ndim":
        x = np.zeros(rng.choice([(), (3,), (1, 2, 3, 3), (2, 1, 1, 2, 3)]))
    elif kind == "empty":
        x = np.zeros(rng.choice([(0, 3), (0, 5, 3), (2, 0, 3), (3, 0)]))
    elif kind == "nonfinite":
        x = np.random.default_rng(i).normal(size=rng.choice([(4, 3), (2, 5, 3)]))
        x[tuple(rng.randrange(s) for s in x.shape)] = rng.choice(NONFINITE)
    elif kind == "dtype":
        x = np.zeros((4, 3), dtype=rng.choice([np.bool_, np.complex64, "U4", "S1", "M8[s]", [("a", "f4")]]))
    if kind == "garbage":
        payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 120)))
    elif kind == "npz":
        payload = npz({"x": np.zeros((4, 3))})
    else:
        payload = npy(x)
    golden_case(f"golden-{kind}-{i}", payload, existing_y=i % 2 == 0)
obj = np.empty((4, 3), dtype=object)
obj[...] = 1.0
golden_case("golden-object", npy(obj, allow_pickle=True), existing_y=True)
add("golden-missing-input", ["golden", "{d}/cfg.toml", "-i", "{d}/nope.npy", "-o", "{d}/y.npy"], VALID, "nope.npy")
add("golden-output-under-file", ["golden", "{d}/cfg.toml", "-i", "{d}/x.npy", "-o", "{d}/plain/y.npy"],
    {**VALID, "x.npy": npy(np.zeros((4, 3))), "plain": b"x"}, "plain")
add("golden-output-is-dir", ["golden", "{d}/cfg.toml", "-i", "{d}/x.npy", "-o", "{d}/ydir"],
    {**VALID, "x.npy": npy(np.zeros((4, 3))), "ydir": None}, "ydir")
for i in range(6):
    bad = rng.choice([c for c in CASES if c.id.startswith(("range-", "type-", "w-small-"))])
    args = ["golden", *bad.args[1:bad.args.index("-o")], "-i", "{d}/x.npy", "-o", "{d}/y.npy"]
    add(f"golden-bad-{bad.id}", args, {**bad.files, "x.npy": npy(np.zeros((4, 3))), "y.npy": b"old"}, *bad.needles)


# -- the check --------------------------------------------------------------------------

def tree(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under root, with contents and mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.read_bytes() if p.is_file() else None, st.st_mtime_ns)
    return out


def _unique_ids(cases):
    seen = {}
    for c in cases:
        seen[c.id] = seen.get(c.id, 0) + 1
        if seen[c.id] > 1:
            c.id = f"{c.id}#{seen[c.id]}"
    return cases


CASES = _unique_ids(CASES)


def test_enough_cases():
    assert len(CASES) >= 300, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(tmp_path, case: Case):
    d = tmp_path / "w"
    d.mkdir()
    for rel, content in case.files.items():
        target = d / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            target.mkdir()
        else:
            target.write_bytes(content)
    before = tree(d)
    result = CliRunner().invoke(main, [a.replace("{d}", str(d)) for a in case.args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert_one_line_error(result, *case.needles)
    assert "Traceback" not in result.stderr
    assert tree(d) == before                      # nothing written, nothing partial, existing files untouched
