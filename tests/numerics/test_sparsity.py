"""Bank-balanced and unstructured pruning, packing and utilisation against plain-Python statements of the rules.

The rule: a row of the ``4H x (I+H)`` matrix is zero-padded on the right to
``banks * B`` columns, ``B = ceil(cols / banks)``, and split into ``banks``
contiguous banks; each bank keeps the ``k = max(1, floor(density * B + 1/2))``
largest ``|w|``, ties to the lower column. Unstructured pruning keeps the
``max(1, floor(density * size + 1/2))`` largest ``|w|`` of the whole matrix,
ties to the lower row-major index; it runs with every bank given the fullest
bank's number of slots.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from lstm_hw.numerics.sparsity import (bank_loads, bank_width, kept_per_bank, pack_banks, pack_padded,
                                       prune_bank_balanced, prune_unstructured, utilisation)

# Densities as a user writes them in TOML; the expected k treats them as the decimals they spell.
DENSITIES = [0.05, 0.1, 0.125, 0.2, 0.25, 0.3, 0.375, 0.4, 0.5, 0.6, 0.625, 0.7, 0.75, 0.8, 0.9, 1.0]


def expected_width(cols: int, banks: int) -> int:
    return math.ceil(Fraction(cols, banks))


def expected_k(width: int, density: float) -> int:
    return max(1, math.floor(Fraction(repr(density)) * width + Fraction(1, 2)))


def bank_columns(cols: int, banks: int, b: int) -> list[int]:
    """Real (unpadded) columns of bank ``b``: the banks interleave, column c is in bank c % banks."""
    return list(range(b, cols, banks))


def reference_prune(w: np.ndarray, banks: int, density: float) -> np.ndarray:
    rows, cols = w.shape
    width = expected_width(cols, banks)
    k = expected_k(width, density)
    out = np.zeros_like(w)
    for r in range(rows):
        for b in range(banks):
            # padding columns are zeros; they take part in the ranking but hold nothing
            candidates = [i * banks + b for i in range(width)]
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
    # Two interleaved banks, B = 3, k = 2: bank 0 is columns 0, 2, 4 and bank 1 columns 1, 3, 5;
    # equal magnitudes keep the lower columns, whatever the sign
    ([[2, -2, 2, 1, -1, 1]], 2, 0.5, [[2, -2, 2, 1, 0, 0]]),
    ([[-5, 5, 5, 0, 0, 0]], 2, 0.5, [[-5, 5, 5, 0, 0, 0]]),
    ([[1, 3, -3, 3, -1, -3]], 2, 0.5, [[1, 3, -3, 3, 0, 0]]),
    # B = 3, k = 1 (0.75 + 0.5 floors to 1)
    ([[1, -1, 1, 0.5, -0.5, 0.5]], 2, 0.25, [[1, -1, 0, 0, 0, 0]]),
    ([[-1, 1, 1, -0.5, 0.5, -0.5]], 2, 0.25, [[-1, 1, 0, 0, 0, 0]]),
    # 5 columns, 2 banks: B = 3, bank 1 is [c1, c3, pad]
    ([[1, 1, 1, 1, 1]], 2, 0.5, [[1, 1, 1, 1, 0]]),
    ([[0, 0, 0, 0, 7]], 2, 0.5, [[0, 0, 0, 0, 7]]),
    ([[4, 4, 4, 4, 4]], 2, 0.25, [[4, 4, 0, 0, 0]]),
    # one bank, B = 4, k = 2: the two largest magnitudes, not the two largest values
    ([[-9, 1, 2, 8]], 1, 0.5, [[-9, 0, 0, 8]]),
    # several rows are independent
    ([[3, 3, 3, 3], [1, 2, 3, 4]], 2, 0.5, [[3, 3, 0, 0], [0, 0, 3, 4]]),
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
    assert got.tolist() == [[0, 0, 0, 0, 5, -5]]   # bank 0: c0, c2, c4; bank 1: c1, c3, c5


# -- pack_banks -------------------------------------------------------------------

def unpack(values: np.ndarray, index: np.ndarray, cols: int, width: int) -> np.ndarray:
    rows, banks, k = values.shape
    out = np.zeros((rows, banks * width))
    for r in range(rows):
        for b in range(banks):
            for s in range(k):
                out[r, index[r, b, s] * banks + b] += values[r, b, s]
    assert not out[:, cols:].any(), "a stored weight landed in the padding"
    return out[:, :cols]


def assert_packs(values: np.ndarray, index: np.ndarray, w: np.ndarray, banks: int, k: int) -> None:
    """``(values, index)`` hold ``w`` in ``k`` slots a bank, distinct in-bank columns ascending."""
    rows, cols = w.shape
    width = expected_width(cols, banks)
    assert values.shape == index.shape == (rows, banks, k)
    assert np.issubdtype(index.dtype, np.integer)
    assert ((index >= 0) & (index < width)).all()
    assert (np.diff(index, axis=2) > 0).all()            # strictly ascending: distinct columns
    assert np.array_equal(unpack(values, index, cols, width), w)


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES))
def test_pack_banks_reconstructs(case, density):
    w, banks = case
    k = expected_k(expected_width(w.shape[1], banks), density)
    pruned = prune_bank_balanced(w, banks, density)
    assert_packs(*pack_banks(pruned, banks, k), pruned, banks, k)


def test_pack_banks_free_slots_hold_zeros():
    w = np.array([[0, 0, 6, 0, 0, 0, 0, 0]], dtype=np.float64)     # 2 banks of 4, k = 3; c2 is bank 0's entry 1
    values, index = pack_banks(w, 2, 3)
    assert index.tolist() == [[[0, 1, 2], [0, 1, 2]]]
    assert values.tolist() == [[[0, 6, 0], [0, 0, 0]]]
    w = np.array([[0, 0, 0, 5]], dtype=np.float64)                 # 1 bank of 4, k = 2
    values, index = pack_banks(w, 1, 2)
    assert index.tolist() == [[[0, 3]]] and values.tolist() == [[[0, 5]]]


@pytest.mark.parametrize("w, banks, k", [
    ([[1, 2, 3, 4]], 1, 3),
    ([[1, 0, 2, 0], [0, 0, 1, 0]], 2, 1),      # row 0, bank 0 (c0, c2) holds two
    ([[0, 0, 1, 0, 1, 0, 1]], 2, 2),           # bank 0 (c0, c2, c4, c6) holds three
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


# -- argument checks ------------------------------------------------------------------

@pytest.mark.parametrize("density", [0, 0.0, -0.25, 1.5, float("nan"), "0.5", None, True])
def test_bad_density(density):
    w = np.ones((2, 4))
    for prune in (lambda: prune_unstructured(w, density), lambda: prune_bank_balanced(w, 2, density)):
        with pytest.raises(ValueError, match="density must be in"):
            prune()


@pytest.mark.parametrize("banks", [0, -1, 1.5, True, "2", None])
def test_bad_banks(banks):
    w = np.ones((2, 4))
    for call in (lambda: bank_loads(w, banks), lambda: utilisation(w, banks, 1), lambda: pack_padded(w, banks),
                 lambda: prune_bank_balanced(w, banks, 0.5), lambda: pack_banks(w, banks, 1)):
        with pytest.raises(ValueError, match="banks must be a positive integer"):
            call()


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2), ()])
def test_not_a_matrix(shape):
    w = np.ones(shape)
    for call in (lambda: prune_unstructured(w, 0.5), lambda: bank_loads(w, 1), lambda: utilisation(w, 1, 1),
                 lambda: pack_padded(w, 1), lambda: prune_bank_balanced(w, 1, 0.5)):
        with pytest.raises(ValueError, match="must be 2-D"):
            call()


@pytest.mark.parametrize("rows_per_cycle", [0, -4, 2.0, True])
def test_bad_rows_per_cycle(rows_per_cycle):
    with pytest.raises(ValueError, match="rows_per_cycle"):
        utilisation(np.ones((4, 4)), 2, rows_per_cycle)


@pytest.mark.parametrize("k", [0, 3, 1.0])
def test_pack_banks_k_out_of_range(k):
    with pytest.raises(ValueError, match="bank width 2"):
        pack_banks(np.ones((1, 4)), 2, k)


# -- prune_unstructured ---------------------------------------------------------------

def expected_kept(size: int, density: float) -> int:
    return max(1, math.floor(Fraction(repr(density)) * size + Fraction(1, 2)))


def reference_unstructured(w: np.ndarray, density: float) -> np.ndarray:
    flat = w.ravel()
    ranked = sorted(range(flat.size), key=lambda i: (-abs(flat[i]), i))
    out = np.zeros_like(flat)
    for i in ranked[:expected_kept(flat.size, density)]:
        out[i] = flat[i]
    return out.reshape(w.shape)


@pytest.mark.parametrize("w, density, expected", [
    ([[1, -1, 1, -1]], 0.5, [[1, -1, 0, 0]]),                # equal magnitudes: lower flat index
    ([[2, 1], [-2, 1]], 0.5, [[2, 0], [-2, 0]]),
    ([[1, 2], [3, 1]], 0.25, [[0, 0], [3, 0]]),
    ([[1, 1], [1, 1]], 0.25, [[1, 0], [0, 0]]),
    ([[5, 4, 3, 2, 1]], 0.5, [[5, 4, 3, 0, 0]]),             # 2.5 rounds half up
    ([[5, 4, 3, 2, 1]], 0.01, [[5, 0, 0, 0, 0]]),            # at least one
    ([[0, 0, 7, 0]], 0.5, [[0, 0, 7, 0]]),                   # sparse enough: unchanged
    ([[-9, 1], [2, 8]], 0.5, [[-9, 0], [0, 8]]),             # magnitude, not value
])
def test_prune_unstructured_examples(w, density, expected):
    w = np.array(w, dtype=np.float64)
    assert prune_unstructured(w, density).tolist() == expected
    assert np.array_equal(reference_unstructured(w, density), np.array(expected, dtype=np.float64))


@settings(deadline=None, max_examples=150)
@given(case=matrices(max_rows=8, max_cols=24), density=st.sampled_from(DENSITIES))
def test_prune_unstructured_matches_reference(case, density):
    w, _ = case
    got = prune_unstructured(w, density)
    assert got.shape == w.shape and got.dtype == w.dtype
    assert np.array_equal(got, reference_unstructured(w, density))
    kept = got != 0
    assert np.array_equal(got[kept], w[kept])
    assert kept.sum() == min(np.count_nonzero(w), expected_kept(w.size, density))
    dropped = (w != 0) & ~kept
    if dropped.any():
        assert np.abs(w[kept]).min() >= np.abs(w[dropped]).max()
    assert np.array_equal(prune_unstructured(got, density), got)         # sparse enough now: unchanged


@settings(deadline=None)
@given(case=matrices(max_cols=40), density=st.sampled_from(DENSITIES), seed=st.integers(0, 2 ** 32 - 1))
def test_prune_unstructured_leaves_sparse_enough_matrix_unchanged(case, density, seed):
    w, _ = case
    rng = np.random.default_rng(seed)
    keep = rng.permutation(w.size)[:rng.integers(0, expected_kept(w.size, density) + 1)]
    sparse = np.zeros_like(w).ravel()
    sparse[keep] = w.ravel()[keep]
    sparse = sparse.reshape(w.shape)
    assert np.array_equal(prune_unstructured(sparse, density), sparse)
    assert np.array_equal(prune_unstructured(w, 1.0), w)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.float32])
def test_prune_unstructured_keeps_dtype(dtype):
    got = prune_unstructured(np.array([[1, -3, 2], [0, 5, -5]], dtype=dtype), 0.5)
    assert got.dtype == dtype and got.tolist() == [[0, -3, 0], [0, 5, -5]]


# -- bank_loads, utilisation, pack_padded ---------------------------------------------------

def reference_loads(w: np.ndarray, banks: int) -> np.ndarray:
    rows, cols = w.shape
    return np.array([[sum(w[r, c] != 0 for c in bank_columns(cols, banks, b)) for b in range(banks)]
                     for r in range(rows)])


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES), unstructured=st.booleans())
def test_bank_loads_and_utilisation(case, density, unstructured):
    w, banks = case
    w = prune_unstructured(w, density) if unstructured else prune_bank_balanced(w, banks, density)
    rows, cols = w.shape
    loads = bank_loads(w, banks)
    assert loads.shape == (rows, banks)
    assert np.array_equal(loads, reference_loads(w, banks))
    assert loads.sum() == np.count_nonzero(w)
    u = utilisation(w, banks, 4)
    k_max = max(1, max(max(row) for row in reference_loads(w, banks).tolist()))
    nnz = int(np.count_nonzero(w))
    assert u["k_max"] == k_max and u["nnz"] == nnz and u["stored"] == rows * banks * k_max
    assert u["utilisation"] == nnz / (rows * banks * k_max) <= 1
    assert u["max_load"] == loads.max()
    assert u["mean_load"] == pytest.approx(nnz / (rows * banks))
    assert u["imbalance"] == (pytest.approx(loads.max() / (nnz / (rows * banks))) if nnz else 1.0)
    assert u["passes"] == math.ceil(rows / 4) and u["cycles"] == u["passes"] * k_max
    assert u["ideal_cycles"] == math.ceil(nnz / (banks * 4)) <= u["cycles"]


@settings(deadline=None)
@given(case=matrices(low=0.5), density=st.sampled_from(DENSITIES))
def test_bank_balanced_utilisation_is_one(case, density):
    w, banks = case
    rows, cols = w.shape
    k = expected_k(expected_width(cols, banks), density)
    assume(all(len(bank_columns(cols, banks, b)) >= k for b in range(banks)))    # no bank must keep zeros
    u = utilisation(prune_bank_balanced(w, banks, density), banks, 1)
    assert u["k_max"] == k and u["stored"] == u["nnz"] == rows * banks * k
    assert u["utilisation"] == 1.0 and u["imbalance"] == 1.0 and u["cycles"] == u["ideal_cycles"]


def test_bank_balanced_with_kept_zeros():
    w = np.array([[3, 0, 0, 0, 1, 2, 0, 0]], dtype=np.float64)   # 2 banks of 4, k = 2: bank 0 keeps a zero
    u = utilisation(prune_bank_balanced(w, 2, 0.5), 2, 1)
    assert (u["nnz"], u["stored"], u["utilisation"], u["k_max"], u["imbalance"]) == (3, 4, 0.75, 2, 2 / 1.5)


def test_lstm_layer_unstructured_vs_bank_balanced():
    """H = I = 64, 8 banks, density 1/4: balanced fills every slot, unstructured pads to the fullest bank."""
    w = np.random.default_rng(1).standard_normal((4 * 64, 64 + 64))
    balanced = utilisation(prune_bank_balanced(w, 8, 0.25), 8, 4)
    assert (balanced["nnz"], balanced["k_max"], balanced["utilisation"], balanced["imbalance"]) == (8192, 4, 1.0, 1.0)
    pruned = prune_unstructured(w, 0.25)
    u = utilisation(pruned, 8, 4)
    k_max = max(np.count_nonzero(pruned[r, 16 * b:16 * (b + 1)]) for r in range(256) for b in range(8))
    assert u["nnz"] == 8192 and u["k_max"] == k_max > 4
    assert u["utilisation"] == 8192 / (256 * 8 * k_max) < 1
    assert u["cycles"] == 64 * k_max and u["ideal_cycles"] == 256


def test_all_zero_matrix():
    u = utilisation(np.zeros((3, 5)), 2, 2)
    assert (u["nnz"], u["k_max"], u["stored"], u["utilisation"], u["imbalance"]) == (0, 1, 6, 0.0, 1.0)
    values, index, k = pack_padded(np.zeros((3, 5)), 2)
    assert k == 1 and not values.any()


@settings(deadline=None, max_examples=150)
@given(case=matrices(), density=st.sampled_from(DENSITIES))
def test_pack_padded_reconstructs_any_pattern(case, density):
    w, banks = case
    pruned = prune_unstructured(w, density)
    values, index, k = pack_padded(pruned, banks)
    assert k == max(1, reference_loads(pruned, banks).max())
    assert_packs(values, index, pruned, banks, k)
    assert np.count_nonzero(values) == np.count_nonzero(pruned)          # the free slots hold zero weights
