"""The sparsity, histogram and accuracy figures: valid PNGs, the same bytes every time, clean failures."""

import io
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from lstm_hw.compression import plots
from lstm_hw.errors import UsageError
from lstm_hw.numerics.fixed import Fixed, quantize_real
from lstm_hw.numerics.sparsity import prune_bank_balanced, prune_unstructured
from helpers import png_size

W = np.random.default_rng(7).standard_normal((256, 128))
FMT = Fixed(8, 6)
ACCURACY = [
    {"density": d, "weight_bits": b, "float": 0.91, "pruned_float": 0.91 - 0.1 * (1 - d),
     "golden": 0.9 - 0.1 * (1 - d) - 0.01 * (8 - b), **({"rtl": 0.9 - 0.1 * (1 - d)} if b == 8 else {})}
    for b in (4, 8) for d in (1.0, 0.5, 0.25, 0.125)
]

FIGURES = {
    "sparsity_balanced": lambda path: plots.plot_sparsity(prune_bank_balanced(W, 8, 0.25), 8, path),
    "sparsity_unstructured": lambda path: plots.plot_sparsity(prune_unstructured(W, 0.25), 8, path, title="ESE"),
    "sparsity_large": lambda path: plots.plot_sparsity(
        prune_bank_balanced(np.random.default_rng(3).standard_normal((700, 1300)), 7, 0.1), 7, path),
    "histogram": lambda path: plots.plot_weight_histogram(prune_unstructured(2 * W, 0.5), FMT, path),
    "histogram_empty": lambda path: plots.plot_weight_histogram(np.zeros((4, 4)), FMT, path),
    "accuracy": lambda path: plots.plot_accuracy_vs_density(ACCURACY, path, title="toy"),
}


def decoded(path) -> Image.Image:
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()                                    # decodes every row: a truncated file fails here
    return image


@pytest.mark.parametrize("name", FIGURES)
def test_valid_png_and_deterministic(name, tmp_path):
    first = FIGURES[name](tmp_path / "a.png")
    assert first == tmp_path / "a.png"
    data = first.read_bytes()
    assert png_size(data) == (800, 600) and decoded(first).size == (800, 600)
    assert b"Software" not in data and b"matplotlib" not in data.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]     # no temporary file left
    assert FIGURES[name](tmp_path / "b.png").read_bytes() == data


def test_user_style_ignored(tmp_path):
    import matplotlib
    plain = FIGURES["accuracy"](tmp_path / "a.png").read_bytes()
    with matplotlib.rc_context({"lines.linewidth": 7.0, "axes.facecolor": "yellow", "font.size": 20}):
        assert FIGURES["accuracy"](tmp_path / "b.png").read_bytes() == plain


def test_same_bytes_in_another_process(tmp_path):
    code = ("import sys, numpy as np; from lstm_hw.compression import plots; "
            "from lstm_hw.numerics.sparsity import prune_unstructured; "
            "w = np.random.default_rng(7).standard_normal((256, 128)); "
            "plots.plot_sparsity(prune_unstructured(w, 0.25), 8, sys.argv[1], title='ESE')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b.png")], check=True,
                   env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert (tmp_path / "b.png").read_bytes() == FIGURES["sparsity_unstructured"](tmp_path / "a.png").read_bytes()


def test_import_leaves_matplotlib_alone():
    code = "import sys, lstm_hw.compression.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_figures_differ(tmp_path):
    balanced = FIGURES["sparsity_balanced"](tmp_path / "a.png").read_bytes()
    assert FIGURES["sparsity_unstructured"](tmp_path / "b.png").read_bytes() != balanced


@pytest.mark.parametrize("cols, banks", [(12, 3), (1201, 3), (1300, 7), (130, 8)])
def test_bank_lines_at_exact_columns(cols, banks, tmp_path):
    """The red lines sit at the bank boundaries of the bank-major column order (bank b holds columns
    b, b + banks, ...), also when the image is blocked (more than 600 columns) and a block straddles a
    boundary: measured in pixels between the axes' left and right spines."""
    path = plots.plot_sparsity(np.zeros((8, cols)), banks, tmp_path / "a.png")
    image = np.asarray(decoded(path).convert("RGB")).astype(int)
    red = np.flatnonzero(((image[:, :, 0] > 150) & (image[:, :, 1] < 80) & (image[:, :, 2] < 80)).sum(axis=0) > 100)
    left, right = np.flatnonzero((image.sum(axis=2) < 200).sum(axis=0) > 300)[:2]       # the axes' spines
    edges = np.cumsum([len(range(b, cols, banks)) for b in range(banks)])[:-1]
    expected = [left + e / cols * (right - left) for e in edges if e < cols]
    assert len(red) == len(expected)
    assert np.abs(red - np.array(expected)).max() <= 1.0


# -- argument checks and bad paths -------------------------------------------------------

@pytest.mark.parametrize("name", FIGURES)
@pytest.mark.parametrize("bad", ["missing", "is_dir", "under_file", "too_long", "temp_too_long"])
def test_bad_path_leaves_nothing(name, bad, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "adir").mkdir()
    path = {"missing": tmp_path / "nowhere" / "a.png", "is_dir": tmp_path / "adir",
            "under_file": tmp_path / "file.txt" / "a.png", "too_long": tmp_path / ("x" * 300 + ".png"),
            # a legal name whose temporary name is not: write_files fails after drawing and cleans up
            "temp_too_long": tmp_path / ("x" * 248 + ".png")}[bad]
    with pytest.raises(UsageError) as e:
        FIGURES[name](path)
    assert "\n" not in str(e.value) and str(e.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["adir", "file.txt"]


@pytest.mark.parametrize("call, match", [
    (lambda p: plots.plot_sparsity(np.ones(4), 2, p), "2-D"),
    (lambda p: plots.plot_sparsity(np.ones((2, 4)), 0, p), "banks"),
    (lambda p: plots.plot_weight_histogram(np.ones((2, 2)), "s8.6", p), "Fixed"),
    (lambda p: plots.plot_weight_histogram(np.array([[1.0, np.nan]]), FMT, p), "finite"),
    (lambda p: plots.plot_accuracy_vs_density([], p), "no rows"),
    (lambda p: plots.plot_accuracy_vs_density([{"density": 0.5, "weight_bits": 8, "float": 1, "golden": 1}], p),
     r"rows\[0\]: missing key 'pruned_float'"),
    (lambda p: plots.plot_accuracy_vs_density([{**ACCURACY[0], "density": 0}], p), r"rows\[0\].density"),
])
def test_bad_arguments(call, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        call(tmp_path / "a.png")
    assert not any(tmp_path.iterdir())


# -- what the figures count ------------------------------------------------------------------

def exact_saturates(value: float, fmt: Fixed) -> bool:
    code = math.floor(Fraction(value) * 2 ** fmt.frac + Fraction(1, 2))
    return not fmt.min_int <= code <= fmt.max_int


@pytest.mark.parametrize("fmt", [Fixed(8, 6), Fixed(4, 0), Fixed(6, 8), Fixed(12, -2)])
def test_saturating_count(fmt):
    half = fmt.lsb / 2
    edges = [fmt.max_real, fmt.max_real + half, np.nextafter(fmt.max_real + half, 0), fmt.min_real,
             fmt.min_real - half, np.nextafter(fmt.min_real - half, 0), np.nextafter(fmt.min_real - half, -np.inf)]
    values = np.concatenate([edges, np.random.default_rng(fmt.bits).uniform(3 * fmt.min_real, 3 * fmt.max_real, 500)])
    expected = sum(exact_saturates(float(v), fmt) for v in values)
    assert plots._saturating(values, fmt) == expected
    # and it is exactly where quantize_real clamps
    unclamped_error = np.abs(quantize_real(values, fmt) * fmt.lsb - values)
    assert expected == np.count_nonzero(unclamped_error > half) + np.count_nonzero(values == fmt.max_real + half)


def test_accuracy_lines():
    lines = plots._accuracy_lines(ACCURACY)
    assert list(lines) == [(4, "float"), (4, "pruned_float"), (4, "golden"),
                           (8, "float"), (8, "pruned_float"), (8, "golden"), (8, "rtl")]
    assert [d for d, _ in lines[(8, "rtl")]] == [0.125, 0.25, 0.5, 1.0]
