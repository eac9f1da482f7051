"""CI gate: the generated Verilog of every end-to-end config passes lint.

- ``verilator --lint-only`` with the reviewed waiver file ``constraints/amaranth.vlt``:
  nothing; without it, nothing but WIDTHEXPAND and PROCASSINIT.
- ``verilator --lint-only -Wall`` with the waiver file: nothing. The files are
  one module each, without Amaranth's dead alias wires (:mod:`lstm_hw.emit.verilog`).
- ``iverilog -Wall``: nothing.
- The waiver file waives only what its review allows (:func:`test_waiver_file_waives_only_the_reviewed`).
"""

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from lstm_hw.config.randconfig import random_config
from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files, write_files
from lstm_hw.emit.verilog import hdl_sources
from lstm_hw.model.design import build_design
from lstm_hw.sim.tools import ensure_simulators_on_path, verilator_lint

from configs import E2E_CONFIGS, INTERLEAVE_CONFIGS

WAIVER = Path(str(resources.files("lstm_hw.constraints").joinpath("amaranth.vlt")))
# The only warning classes Amaranth's output always triggers; everything else must be fixed.
WAIVED = {"WIDTHEXPAND", "PROCASSINIT"}
#: The rule waivers the review allows; any other waiver names one signal exactly.
RULE_WAIVERS = {"lint_off -rule WIDTHEXPAND", "lint_off -rule PROCASSINIT",
                'lint_off -rule UNUSEDSIGNAL -file "*" -match "*\'$*"'}


LINT_CONFIGS = {**E2E_CONFIGS, **INTERLEAVE_CONFIGS}


@pytest.fixture(scope="module", params=sorted(LINT_CONFIGS))
def verilog(request, tmp_path_factory):
    """(Verilog files, top, config name) of one end-to-end config, written as ``generate`` does."""
    design = build_design(parse_config(LINT_CONFIGS[request.param]))
    return _write(design, tmp_path_factory.mktemp(request.param)), design.config.hardware.top, request.param


def _write(design, out) -> list:
    """Write the design's files into ``out`` as ``generate`` does; its Verilog sources, top first (not its .mem files)."""
    files = design_files(design)
    write_files(out, files)
    return [out / source for source in hdl_sources(json.loads(files[f"{design.config.hardware.top}.json"])["sources"])]


def test_verilator_lint_clean_with_waivers(verilog):
    sources, top, _ = verilog
    assert verilator_lint(sources, top, WAIVER, wall=False) == []


def test_verilator_unwaived_warnings_are_only_the_known_two(verilog):
    sources, top, _ = verilog
    classes = _classes(verilator_lint(sources, top, None, wall=False))
    assert classes <= WAIVED, f"unexpected warning classes {classes - WAIVED}"


def test_iverilog_wall_clean(verilog):
    ensure_simulators_on_path()
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog not installed (tests/run.sh installs it)")
    sources, top, _ = verilog
    res = subprocess.run(["iverilog", "-Wall", "-g2005", "-s", top, "-o", "/dev/null", *map(str, sources)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr


def _classes(lines):
    return {line.split(":")[0].removeprefix("%Warning-") for line in lines}


def test_verilator_wall_clean_with_waivers(verilog):
    sources, top, name = verilog
    assert verilator_lint(sources, top, WAIVER, wall=True) == []
    if name == "default":
        # Without the waiver file, -Wall reports only the waived rules: UNUSEDSIGNAL only on
        # $-nets and on the signals the file waives by exact name.
        unwaived = verilator_lint(sources, top, None, wall=True)
        assert _classes(unwaived) == WAIVED | {"UNUSEDSIGNAL"}, _classes(unwaived)
        named = set(re.findall(r"""-match "\*'([\w.$\[\]]+)'\*""", WAIVER.read_text()))
        assert named and not any(n.startswith("$") for n in named)
        unused = [line for line in unwaived if line.startswith("%Warning-UNUSEDSIGNAL")]
        left = [line for line in unused if not re.search(r"'\$", line)
                and re.search(r"used: '([^']+)'", line).group(1) not in named]
        assert left == []


def _wall(design, out):
    sources = _write(design, out)
    return sources, verilator_lint(sources, design.config.hardware.top, WAIVER, wall=True)


def test_wide_port_list_wall_clean(tmp_path):
    """Ten cell lanes write h through nine extra MVM write ports: Yosys wraps that module's long port list."""
    cfg = {"model": {"input_size": 4, "hidden_size": 10, "num_layers": 1},
           "sparsity": {"banks": 10, "density": 0.5}, "hardware": {"rows": 40}}
    sources, warnings = _wall(build_design(parse_config(cfg)), tmp_path)
    assert warnings == []
    mvm = (tmp_path / "lstm_top__layer0__mvm.v").read_text()
    assert "\n, wr_group__" in mvm   # the header really is wrapped


@pytest.mark.parametrize("block", range(4))
def test_random_configs_wall_clean(block, tmp_path):
    """Seeds 0-39 of the random configs (sizes 1-40, 1-3 layers, 4-16 bits, every method): -Wall clean.

    Among them are one-entry memories (zero-width addresses) and heads with no
    ``h_{t-1}`` column, which the fixed configs do not reach.
    """
    for seed in range(block * 10, (block + 1) * 10):
        design = build_design(parse_config(random_config(np.random.default_rng(seed))))
        assert _wall(design, tmp_path / str(seed))[1] == [], f"random config seed {seed}"


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
