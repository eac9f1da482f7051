"""Amaranth's Verilog as one file per module, without the wires nothing reads.

Amaranth 0.5 (through its builtin Yosys ``write_verilog``) emits every module of
the hierarchy into one text, names submodules after their path
(``\\lstm_top.layer0.mvm``), and declares a wire for every named signal and
every field of a layout-typed signal, whether anything reads it or not:

    wire [15:0] \\i__payload.data ;
    assign \\i__payload.data  = i__payload[15:0];

Logic reads the net the alias is assigned from, never the alias, so such wires
are dead: ``verilator -Wall`` reports each as UNUSEDSIGNAL, and one file of many
modules as DECLFILENAME. :func:`split_modules` takes that text apart:

- each module goes to its own ``<module>.v``, the top to ``<top>.v``;
- a submodule ``\\top.a.b`` is renamed ``top__a__b``, a plain identifier that is
  also its file's name;
- a ``wire`` that is not a port and that nothing reads is removed with the
  ``assign`` statements that drive it; this repeats until none is left, since the
  right-hand side of a removed ``assign`` may have been the last reader of
  another wire.

Nothing else changes: registers, memories, processes, instances and ports stay as
Yosys wrote them, so behaviour is untouched.

The weight ROMs are not in that text: each one's module (``<top>__<path>__rom_p<j>.v``)
and contents (``.mem``) are written straight from the weights
(:meth:`lstm_hw.generators.top.LSTMTop.rom_files`), so megabytes of contents never
pass through Amaranth and Yosys as text.

The text is Yosys's fixed output format; anything the parser does not recognise
raises ``ValueError`` rather than being guessed at.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["split_modules", "module_file_name", "is_module_file", "is_data_file",
           "hdl_sources", "drop_dead_wires"]

# Yosys breaks the port list after every 21 ports: the header is joined up to ");".
_MODULE = re.compile(r"^module (\\\S+ |[A-Za-z_][\w$]*)\((.*)\);$", re.DOTALL)
_INSTANCE = re.compile(r"^  (\\\S+ ) ([A-Za-z_][\w$]*|\\\S+ ) \($")
_NAME = r"(\\\S+ |[A-Za-z_][\w$]*)"
# Amaranth declares a zero-width signal (a one-entry memory's address) as `wire [-1:0] a;`.
_WIRE = re.compile(rf"^  wire (?:signed )?(?:\[-?\d+:\d+\] )?{_NAME};$")
_ASSIGN = re.compile(rf"^  assign {_NAME}(?: ?\[\d+(?::\d+)?\])? = .*;$")
_ATTRIBUTE = re.compile(r"^ *\(\*.*\*\)$")
# What is not a name: attributes, comments, strings, sized literals, and port names (".port(").
_NOT_NAMES = re.compile(r"\(\*.*?\*\)|/\*.*?\*/|\"(?:[^\"\\]|\\.)*\""
                        r"|\d*'[sS]?[bodhBODH][0-9a-fA-FxXzZ_?]+|\.[A-Za-z_][\w$]*\(")
_TOKEN = re.compile(r"\\\S+|(?<![\w$])[A-Za-z_][\w$]*")


def _key(name: str) -> str:
    """One spelling for an identifier: ``\\abc `` and ``abc`` are the same name in Verilog."""
    return name.strip().removeprefix("\\")


def module_file_name(module: str, top: str) -> str:
    """``top`` for the top, ``top__a__b`` for ``top.a.b``."""
    if module != top and not module.startswith(top + "."):
        raise ValueError(f"module {module!r} is not the top {top!r} or under it")
    return module.replace(".", "__")


def is_module_file(name: str, top: str) -> bool:
    """``name`` is a file :func:`split_modules` writes for ``top``: ``<top>.v`` or ``<top>__<path>.v``."""
    return re.fullmatch(rf"{re.escape(top)}(__\w+)?\.v", name) is not None


def is_data_file(name: str, top: str) -> bool:
    """``name`` is a ROM contents file a generation of ``top`` writes: ``<top>__<path>.mem``."""
    return re.fullmatch(rf"{re.escape(top)}(__\w+)?\.mem", name) is not None


def hdl_sources(sources: list) -> list:
    """The Verilog files of a design's ``sources`` (paths or names), without its ``.mem`` data files.

    Simulators and Yosys compile these; the ``.mem`` files must sit in the directory
    they run in (``$readmemh`` names them relative to it).
    """
    return [s for s in sources if not str(s).endswith(".mem")]


def _reads(lines: list[str]) -> Counter:
    counts: Counter = Counter()
    for line in lines:
        for token in _TOKEN.findall(_NOT_NAMES.sub(" ", line)):
            counts[_key(token)] += 1
    return counts


def drop_dead_wires(lines: list[str], ports: set[str]) -> list[str]:
    """A module body without the non-port wires that only ``assign`` statements write and nothing reads."""
    lines = list(lines)
    while True:
        declared = {}
        for i, line in enumerate(lines):
            m = _WIRE.match(line)
            if m:
                declared[_key(m.group(1))] = i
        writes: dict[str, list[int]] = {}
        others = []
        for i, line in enumerate(lines):
            m = _ASSIGN.match(line)
            if m and _key(m.group(1)) in declared:
                writes.setdefault(_key(m.group(1)), []).append(i)
                others.append(line.split("=", 1)[1])  # the right-hand side reads
            elif not _WIRE.match(line):
                others.append(line)
        reads = _reads(others)
        dead = {name for name in declared if name not in ports and reads[name] == 0}
        if not dead:
            return lines
        drop = set()
        for name in dead:
            i = declared[name]
            drop.add(i)
            while i > 0 and _ATTRIBUTE.match(lines[i - 1]):  # the declaration's attributes go with it
                i -= 1
                drop.add(i)
            drop.update(writes.get(name, []))
        lines = [line for i, line in enumerate(lines) if i not in drop]


def split_modules(text: str, top: str) -> dict[str, str]:
    """``{file name: Verilog}`` for every module of Amaranth's ``text``, the top first."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("/* Generated by "):
        raise ValueError("not Yosys write_verilog output: no generator comment on line 1")
    header = lines[0]
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines[1:]:
        if not current and not line:
            continue
        current.append(line)
        if line == "endmodule":
            blocks.append(current)
            current = []
    if current:
        raise ValueError(f"unterminated module in Yosys output: {current[0]!r}")

    names = {}  # Verilog module name -> plain name
    parsed = []
    for block in blocks:
        at = next((i for i, line in enumerate(block) if line.startswith("module ")), None)
        end = next((i for i in range(at, len(block)) if block[i].endswith(");")), None) if at is not None else None
        m = _MODULE.match("\n".join(block[at:end + 1])) if end is not None else None
        if m is None:
            raise ValueError(f"unrecognised module header in Yosys output: {block[at or 0]!r}")
        names[m.group(1)] = module_file_name(_key(m.group(1)), top)
        ports = {_key(p) for p in m.group(2).replace("\n", "").split(",")}
        parsed.append((block[:at], block[at:end + 1], block[end + 1:-1], ports))
    plain = list(names.values())
    if len(set(plain)) != len(plain) or top not in plain:
        raise ValueError(f"module names collide or no top {top!r} after renaming: {sorted(plain)}")

    files = {}
    for attributes, module, block, ports in parsed:
        old = _MODULE.match("\n".join(module)).group(1)
        name = names[old]
        body = []
        for line in drop_dead_wires(block, ports):
            m = _INSTANCE.match(line)
            if m and m.group(1) in names:
                line = f"  {names[m.group(1)]} {m.group(2)} ("
            body.append(line)
        module = [f"module {name}(" + module[0].removeprefix(f"module {old}(")] + module[1:]
        files[f"{name}.v"] = "\n".join([header, "", *attributes, *module, *body, "endmodule", ""])
    top_file = f"{top}.v"
    return {top_file: files.pop(top_file), **files}
