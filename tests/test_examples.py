"""The examples run as a user runs them: examples/quickstart.py, the Python API end to end, under Icarus."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.cocotb
def test_quickstart(tmp_path):
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--out", "rtl", "--simulator", "icarus"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("bit-exact model: ") for line in lines), proc.stdout
    assert "icarus: 4 sequences, every output word equal to the golden model's" in lines
    assert lines[-1].startswith("wrote ") and "files to rtl" in lines[-1]
    assert (tmp_path / "rtl" / "lstm_top.v").is_file() and (tmp_path / "rtl" / "lstm_top.json").is_file()
    accuracy = float(next(ln for ln in lines if ln.startswith("bit-exact model: ")).split()[2].rstrip("%"))
    assert accuracy > 80.0, proc.stdout  # the pruned, quantized model still does the task
