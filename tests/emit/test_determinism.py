"""Generated output is a pure function of (config, weights).

Two ``generate`` runs in separate processes, from different working
directories, with different hash seeds, different output directory names (one
relative, one absolute) and the inputs at different paths, must write
byte-identical files. The config has a head, a board, unfolded tables and an
odd activation width, so most of what ``generate`` writes is exercised.
"""

import os
import subprocess
import sys
import tomllib

import numpy as np

from lstm_hw.config.schema import parse_config
from lstm_hw.model.weights import expected_shapes

CONFIG = """\
[model]
input_size = 3
hidden_size = 5
num_layers = 2
output_size = 2
seed = 11
[quant]
activation = { bits = 13, frac = 9 }
[sparsity]
banks = 3
density = 0.6
[activation]
method = "lut"
segments = 64
fold = false
[hardware]
top = "det_top"
rows = 2
board = "pynq-z2"
"""


def test_generate_is_byte_identical_across_processes(tmp_path):
    cfg = parse_config(tomllib.loads(CONFIG))
    rng = np.random.default_rng(5)
    weights = {name: rng.uniform(-0.7, 0.7, shape) for name, shape in expected_shapes(cfg).items()}
    runs = [  # (cwd, PYTHONHASHSEED, config path, weights path, output dir as given)
        (tmp_path / "one", "0", "lstm.toml", "w.npz", "out"),
        (tmp_path / "two" / "deeper", "987654",
         str(tmp_path / "inputs" / "other name.toml"), str(tmp_path / "inputs" / "weights b.npz"),
         str(tmp_path / "elsewhere" / "rtl_b")),
    ]
    procs = []
    for cwd, seed, cfg_path, w_path, out in runs:
        cwd.mkdir(parents=True)
        for path in (cwd / cfg_path, cwd / w_path):   # an absolute path overrides cwd
            path.parent.mkdir(parents=True, exist_ok=True)
        (cwd / cfg_path).write_text(CONFIG, encoding="utf-8")
        np.savez(cwd / w_path, **weights)
        env = {**os.environ, "PYTHONHASHSEED": seed}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "lstm_hw", "generate", cfg_path, "-w", w_path, "-o", out],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()

    dirs = [cwd / out for cwd, _, _, _, out in runs]
    files = [{p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))} for d in dirs]
    assert sorted(files[0]) == sorted(files[1])
    assert {"det_top_board.xdc", "det_top.v", "det_top__layer0__mvm.v"} <= set(files[0])
    for name in files[0]:
        assert files[0][name] == files[1][name], name
    for content in files[0].values():                  # no path, directory or input name leaks in
        for leak in (str(tmp_path), "rtl_b", "other name", "weights b", "lstm.toml", "w.npz"):
            assert leak.encode() not in content, leak
