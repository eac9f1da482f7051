"""Generated Verilog passes Verilator lint (reviewed waivers only) and ``iverilog -Wall``."""

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


@pytest.fixture(scope="module", params=sorted(E2E_CONFIGS))
def verilog(request, tmp_path_factory):
    design = build_design(parse_config(E2E_CONFIGS[request.param]))
    out = tmp_path_factory.mktemp(request.param)
    write_files(out, design_files(design))
    return out / f"{design.config.hardware.top}.v", design.config.hardware.top


def test_verilator_lint_clean_with_waivers(verilog):
    source, top = verilog
    assert verilator_lint([source], top, WAIVER, wall=False) == []


def test_verilator_unwaived_warnings_are_only_the_known_two(verilog):
    source, top = verilog
    classes = {line.split(":")[0].removeprefix("%Warning-") for line in verilator_lint([source], top, None, wall=False)}
    assert classes <= WAIVED, f"unexpected warning classes {classes - WAIVED}"


def test_iverilog_wall_clean(verilog):
    ensure_simulators_on_path()
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog not installed (tests/run.sh installs it)")
    source, top = verilog
    res = subprocess.run(["iverilog", "-Wall", "-g2005", "-s", top, "-o", "/dev/null", str(source)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr
