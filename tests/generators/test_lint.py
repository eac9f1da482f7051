"""CI gate: the generated Verilog of every end-to-end config passes lint.

- ``verilator --lint-only`` with the reviewed waiver file ``constraints/amaranth.vlt``:
  nothing; without it, nothing but WIDTHEXPAND and PROCASSINIT.
- ``verilator --lint-only -Wall`` with the waiver file: no warning class but
  UNUSEDSIGNAL and DECLFILENAME (see :func:`test_verilator_wall_leaves_only_unused_and_filename`),
  and none on Amaranth's ``$``-named nets.
- ``iverilog -Wall``: nothing.
- The waiver file waives only what its review allows (:func:`test_waiver_file_waives_only_the_reviewed`).
"""

import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from lstm_hw.config import parse_config
from lstm_hw.design import build_design
from lstm_hw.emit import design_files, write_files
from lstm_hw.tools import ensure_simulators_on_path, verilator_lint

from configs import E2E_CONFIGS

WAIVER = Path(str(resources.files("lstm_hw.constraints").joinpath("amaranth.vlt")))
# The only warning classes Amaranth's output always triggers; everything else must be fixed.
WAIVED = {"WIDTHEXPAND", "PROCASSINIT"}
#: The rule waivers the review allows; any other waiver names one signal exactly.
RULE_WAIVERS = {"lint_off -rule WIDTHEXPAND", "lint_off -rule PROCASSINIT",
                'lint_off -rule UNUSEDSIGNAL -file "*" -match "*\'$*"'}
#: Left by -Wall on Amaranth's output: named wires it emits for every signal,
#: port and layout field, whether read or not (UNUSEDSIGNAL), and all modules
#: in one file (DECLFILENAME). Any other -Wall class fails the gate.
WALL_LEFT = {"UNUSEDSIGNAL", "DECLFILENAME"}


@pytest.fixture(scope="module", params=sorted(E2E_CONFIGS))
def verilog(request, tmp_path_factory):
    design = build_design(parse_config(E2E_CONFIGS[request.param]))
    out = tmp_path_factory.mktemp(request.param)
    write_files(out, design_files(design))
    return out / f"{design.config.hardware.top}.v", design.config.hardware.top, request.param


def test_verilator_lint_clean_with_waivers(verilog):
    source, top, _ = verilog
    assert verilator_lint([source], top, WAIVER, wall=False) == []


def test_verilator_unwaived_warnings_are_only_the_known_two(verilog):
    source, top, _ = verilog
    classes = {line.split(":")[0].removeprefix("%Warning-") for line in verilator_lint([source], top, None, wall=False)}
    assert classes <= WAIVED, f"unexpected warning classes {classes - WAIVED}"


def test_iverilog_wall_clean(verilog):
    ensure_simulators_on_path()
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog not installed (tests/run.sh installs it)")
    source, top, _ = verilog
    res = subprocess.run(["iverilog", "-Wall", "-g2005", "-s", top, "-o", "/dev/null", str(source)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr


def _classes(lines):
    return {line.split(":")[0].removeprefix("%Warning-") for line in lines}


def test_verilator_wall_leaves_only_unused_and_filename(verilog):
    source, top, name = verilog
    waived = verilator_lint([source], top, WAIVER, wall=True)
    assert _classes(waived) <= WALL_LEFT, f"unexpected -Wall warning classes {_classes(waived) - WALL_LEFT}"
    # The $-net waiver is in force: Amaranth's internal nets are reported without it, never with it.
    dollar = re.compile(r"UNUSEDSIGNAL: .*'\$")
    assert not any(dollar.search(line) for line in waived)
    if name == "default":
        assert any(dollar.search(line) for line in verilator_lint([source], top, None, wall=True))
    # One file holds the top and its submodules, named <top>.<path>.
    for line in waived:
        if line.startswith("%Warning-DECLFILENAME"):
            assert re.search(rf"MODULE name: '{re.escape(top)}\.[\w.]+'$", line), line


def test_waiver_file_waives_only_the_reviewed():
    """The three reviewed rule waivers; any other names one signal exactly, after a one-line reason."""
    lines = [line.strip() for line in WAIVER.read_text().splitlines()]
    assert lines[0] == "`verilator_config"
    waivers = [(i, line) for i, line in enumerate(lines) if line and not line.startswith("//")]
    assert all(line.startswith("lint_off ") for _, line in waivers[1:]), waivers
    rules = {line for _, line in waivers[1:] if line in RULE_WAIVERS}
    assert rules == RULE_WAIVERS
    for i, line in waivers[1:]:
        if line in RULE_WAIVERS:
            continue
        assert re.fullmatch(r"""lint_off -rule [A-Z]+ -file "\*" -match "\*'[\w.$\[\]]+'\*?" ?""", line), (
            f"waiver {line!r} does not name one signal exactly")
        assert lines[i - 1].startswith("// "), f"waiver {line!r} has no reason on the line before it"
