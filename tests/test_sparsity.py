"""Bank-balanced pruning and packing against a plain-Python statement of the rule.

The rule: a row of the ``4H x (I+H)`` matrix is zero-padded on the right to
``banks * B`` columns, ``B = ceil(cols / banks)``, and split into ``banks``
contiguous banks; each bank keeps the ``k = max(1, floor(density * B + 1/2))``
largest ``|w|``, ties to the lower column.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from lstm_hw.sparsity import bank_width, kept_per_bank, pack_banks, prune_bank_balanced

# Densities as a user writes them in TOML; the expected k treats them as the decimals they spell.
DENSITIES = [0.05, 0.1, 0.125, 0.2, 0.25, 0.3, 0.375, 0.4, 0.5, 0.6, 0.625, 0.7, 0.75, 0.8, 0.9, 1.0]


def expected_width(cols: int, banks: int) -> int:
    return math.ceil(Fraction(cols, banks))


def expected_k(width: int, density: float) -> int:
    return max(1, math.floor(Fraction(repr(density)) * width + Fraction(1, 2)))


def bank_columns(cols: int, banks: int, b: int) -> list[int]:
    """Real (unpadded) columns of bank ``b``."""
    width = expected_width(cols, banks)
    return [c for c in range(b * width, (b + 1) * width) if c < cols]


def reference_prune(w: np.ndarray, banks: int, density: float) -> np.ndarray:
    rows, cols = w.shape
    width = expected_width(cols, banks)
    k = expected_k(width, density)
    out = np.zeros_like(w)
    for r in range(rows):
        for b in range(banks):
            # padding columns are zeros; they take part in the ranking but hold nothing
            candidates = range(b * width, (b + 1) * width)
            ranked = sorted(candidates, key=lambda c: (-abs(w[r, c]) if c < cols else 0, c))
            for c in ranked[:k]:
                if c < cols:
                    out[r, c] = w[r, c]
    return out


@st.composite
def matrices(draw, max_rows=6, max_cols=24, low=None):
    """A random ``(w, banks)``; small integers give plenty of equal magnitudes, signs and zeros."""
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    banks = draw(st.integers(1, cols))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if low is not None:
        return rng.uniform(low, 2.0, (rows, cols)) * rng.choice([-1, 1], (rows, cols)), banks
    w = rng.integers(-3, 4, (rows, cols)).astype(np.float64)
    smooth = rng.random((rows, cols)) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    return np.where(smooth, rng.uniform(-2, 2, (rows, cols)), w), banks


# -- bank_width and kept_per_bank -------------------------------------------------

@given(cols=st.integers(1, 100_000), data=st.data())
def test_bank_width_is_ceiling(cols, data):
    banks = data.draw(st.integers(1, cols))
    width = bank_width(cols, banks)
    assert width == expected_width(cols, banks)
    assert banks * (width - 1) < cols <= banks * width


@pytest.mark.parametrize("width, density, k", [
    (5, 0.5, 3),       # 2.5 rounds half up
    (3, 0.5, 2),       # 1.5
    (7, 0.5, 4),       # 3.5
    (4, 0.5, 2),
    (5, 0.1, 1),       # 0.5 rounds up to 1
    (5, 0.05, 1),      # 0.25 rounds to 0; max(1, .) keeps one
    (1, 0.001, 1),
    (24, 0.01, 1),
    (2, 0.25, 1),      # 0.5
    (6, 0.25, 2),      # 1.5
    (10, 0.25, 3),     # 2.5
    (2, 0.75, 2),      # 1.5
    (4, 0.125, 1),     # 0.5
    (12, 0.125, 2),    # 1.5
    (20, 0.125, 3),    # 2.5
    (4, 0.375, 2),     # 1.5
    (5, 0.3, 2),       # 1.5
    (6, 0.3, 2),       # 1.8
    (10, 0.3, 3),
    (7, 0.35, 2),      # 2.45 rounds down
    (10, 1.0, 10),
    (1, 1.0, 1),
    (17, 0.5, 9),      # 8.5
])
def test_kept_per_bank_examples(width, density, k):
    assert kept_per_bank(width, density) == k


@given(width=st.integers(1, 4096), num=st.integers(1, 1024), exp=st.integers(0, 10))
def test_kept_per_bank_dyadic_densities(width, num, exp):
    """Densities ``num / 2**exp`` are exact in binary, so ties are exact ties."""
    assume(num <= 2 ** exp)
    density = Fraction(num, 2 ** exp)
    assert kept_per_bank(width, float(density)) == max(1, math.floor(density * width + Fraction(1, 2)))


@given(width=st.integers(1, 24), density=st.sampled_from(DENSITIES))
def test_kept_per_bank_small_banks(width, density):
    k = kept_per_bank(width, density)
    assert k == expected_k(width, density)
    assert 1 <= k <= width


@pytest.mark.parametrize("width, density, k", [(25, 0.58, 15), (45, 0.7, 32), (50, 0.29, 15), (90, 0.35, 32)])
def test_kept_per_bank_decimal_ties(width, density, k):
    assert kept_per_bank(width, density) == k


# -- prune_bank_balanced ------------------------------------------------------------

@pytest.mark.parametrize("w, banks, density, expected", [
    # B = 3, k = 2: equal magnitudes keep the lower columns, whatever the sign
    ([[2, -2, 2, 1, -1, 1]], 2, 0.5, [[2, -2, 0, 1, -1, 0]]),
    ([[-5, 5, 5, 0, 0, 0]], 2, 0.5, [[-5, 5, 0, 0, 0, 0]]),
    ([[1, 3, -3, 3, -1, -3]], 2, 0.5, [[0, 3, -3, 3, 0, -3]]),
    # B = 3, k = 1 (0.75 + 0.5 floors to 1)
    ([[1, -1, 1, 0.5, -0.5, 0.5]], 2, 0.25, [[1, 0, 0, 0.5, 0, 0]]),
    ([[-1, 1, 1, -0.5, 0.5, -0.5]], 2, 0.25, [[-1, 0, 0, -0.5, 0, 0]]),
    # 5 columns, 2 banks: B = 3, the last bank is [c3, c4, pad]
    ([[1, 1, 1, 1, 1]], 2, 0.5, [[1, 1, 0, 1, 1]]),
    ([[0, 0, 0, 0, 7]], 2, 0.5, [[0, 0, 0, 0, 7]]),
    ([[4, 4, 4, 4, 4]], 2, 0.25, [[4, 0, 0, 4, 0]]),
    # one bank, B = 4, k = 2: the two largest magnitudes, not the two largest values
    ([[-9, 1, 2, 8]], 1, 0.5, [[-9, 0, 0, 8]]),
    # several rows are independent
    ([[3, 3, 3, 3], [1, 2, 3, 4]], 2, 0.5, [[3, 0, 3, 0], [0, 2, 0, 4]]),
])
def test_prune_ties_to_lower_column(w, banks, density, expected):
    w = np.array(w, dtype=np.float64)
    got = prune_bank_balanced(w, banks, density)
    assert np.array_equal(got, np.array(expected, dtype=np.float64))
    assert np.array_equal(reference_prune(w, banks, density), got)


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES))
def test_prune_matches_reference(case, density):
    w, banks = case
    got = prune_bank_balanced(w, banks, density)
    assert got.shape == w.shape and got.dtype == w.dtype
    assert np.array_equal(got, reference_prune(w, banks, density))


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES))
def test_prune_keeps_at_most_k_largest_per_bank(case, density):
    w, banks = case
    rows, cols = w.shape
    k = expected_k(expected_width(cols, banks), density)
    got = prune_bank_balanced(w, banks, density)
    kept = got != 0
    assert np.array_equal(got[kept], w[kept])           # survivors are untouched
    for r in range(rows):
        for b in range(banks):
            cs = bank_columns(cols, banks, b)
            kept_cs = [c for c in cs if kept[r, c]]
            dropped = [c for c in cs if not kept[r, c] and w[r, c] != 0]
            assert len(kept_cs) == min(k, sum(w[r, c] != 0 for c in cs))
            if kept_cs and dropped:
                assert min(abs(w[r, c]) for c in kept_cs) >= max(abs(w[r, c]) for c in dropped)


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES), seed=st.integers(0, 2 ** 32 - 1))
def test_prune_leaves_sparse_enough_matrix_unchanged(case, density, seed):
    w, banks = case
    rows, cols = w.shape
    k = expected_k(expected_width(cols, banks), density)
    rng = np.random.default_rng(seed)
    w = w.copy()
    for r in range(rows):
        for b in range(banks):
            cs = bank_columns(cols, banks, b)   # may be empty: 5 columns in 4 banks of 2
            keep = rng.permutation(cs)[:rng.integers(0, k + 1)]
            w[r, [c for c in cs if c not in keep]] = 0
    got = prune_bank_balanced(w, banks, density)
    assert np.array_equal(got, w)
    assert np.array_equal(prune_bank_balanced(got, banks, density), got)   # idempotent


@settings(deadline=None)
@given(case=matrices(max_cols=40))
def test_density_one_keeps_everything(case):
    w, banks = case
    assert np.array_equal(prune_bank_balanced(w, banks, 1.0), w)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.float32])
def test_prune_keeps_dtype(dtype):
    w = np.array([[1, -3, 2, 0, 5, -5]], dtype=dtype)
    got = prune_bank_balanced(w, 2, 0.25)
    assert got.dtype == dtype
    assert got.tolist() == [[0, -3, 0, 0, 5, 0]]


# -- pack_banks -------------------------------------------------------------------

def unpack(values: np.ndarray, index: np.ndarray, cols: int, width: int) -> np.ndarray:
    rows, banks, k = values.shape
    out = np.zeros((rows, banks * width))
    for r in range(rows):
        for b in range(banks):
            for s in range(k):
                out[r, b * width + index[r, b, s]] += values[r, b, s]
    assert not out[:, cols:].any(), "a stored weight landed in the padding"
    return out[:, :cols]


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES))
def test_pack_banks_reconstructs(case, density):
    w, banks = case
    rows, cols = w.shape
    width = expected_width(cols, banks)
    k = expected_k(width, density)
    pruned = prune_bank_balanced(w, banks, density)
    values, index = pack_banks(pruned, banks, k)
    assert values.shape == index.shape == (rows, banks, k)
    assert np.issubdtype(index.dtype, np.integer)
    assert ((index >= 0) & (index < width)).all()
    assert (np.diff(index, axis=2) > 0).all()            # strictly ascending: distinct columns
    assert np.array_equal(unpack(values, index, cols, width), pruned)


def test_pack_banks_free_slots_hold_zeros():
    w = np.array([[0, 0, 6, 0, 0, 0, 0, 0]], dtype=np.float64)     # 2 banks of 4, k = 3
    values, index = pack_banks(w, 2, 3)
    assert index.tolist() == [[[0, 1, 2], [0, 1, 2]]]
    assert values.tolist() == [[[0, 0, 6], [0, 0, 0]]]
    w = np.array([[0, 0, 0, 5]], dtype=np.float64)                 # 1 bank of 4, k = 2
    values, index = pack_banks(w, 1, 2)
    assert index.tolist() == [[[0, 3]]] and values.tolist() == [[[0, 5]]]


@pytest.mark.parametrize("w, banks, k", [
    ([[1, 2, 3, 4]], 1, 3),
    ([[1, 2, 0, 0], [0, 0, 1, 0]], 2, 1),      # row 0, bank 0 holds two
    ([[0, 0, 0, 0, 1, 1, 1]], 2, 2),           # the last, padded bank holds three
])
def test_pack_banks_rejects_overfull_bank(w, banks, k):
    with pytest.raises(ValueError):
        pack_banks(np.array(w, dtype=np.float64), banks, k)


@settings(deadline=None)
@given(case=matrices(low=0.5), density=st.sampled_from(DENSITIES[:-1]))
def test_pack_banks_rejects_unpruned(case, density):
    w, banks = case
    k = expected_k(expected_width(w.shape[1], banks), density)
    assume(any(len(bank_columns(w.shape[1], banks, b)) > k for b in range(banks)))
    with pytest.raises(ValueError):
        pack_banks(w, banks, k)
