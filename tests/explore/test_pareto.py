"""Pareto fronts against the definition, checked pair by pair on random points."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstm_hw.explore.pareto import RESOURCES, fronts, non_dominated


def brute_force(costs: np.ndarray) -> list[int]:
    """Every row no other row beats: at most equal in every column and below in one."""
    n = len(costs)
    return [i for i in range(n)
            if not any(all(costs[j] <= costs[i]) and any(costs[j] < costs[i]) for j in range(n) if j != i)]


# Small integer ranges make ties and duplicates common.
costs_strategy = st.integers(1, 5).flatmap(
    lambda k: arrays(np.int64, st.tuples(st.integers(1, 25), st.just(k)), elements=st.integers(0, 4)))


@settings(max_examples=300, deadline=None)
@given(costs_strategy)
def test_non_dominated_is_the_brute_force_front(costs):
    assert non_dominated(costs).tolist() == brute_force(costs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2),
                          st.integers(10, 13), st.booleans()), min_size=1, max_size=20))
def test_fronts_of_rows(points):
    rows = [{"digest": f"{n:016x}", "accuracy": a / 4, "mse": a / 4, "dsp": d, "lut": lut, "bram36": b,
             "cycles_per_timestep": c} for n, (a, d, lut, b, c, _) in enumerate(points)]
    for metric, sign in (("accuracy", -1), ("mse", 1)):
        got = fronts(rows, metric)
        assert set(got) == {*RESOURCES, "overall"}
        for name in (*RESOURCES, "overall"):
            columns = RESOURCES if name == "overall" else (name,)
            costs = np.array([[sign * r[metric], *(r[c] for c in columns)] for r in rows])
            want = {rows[i]["digest"] for i in brute_force(costs)}
            assert set(got[name]) == want and len(got[name]) == len(want)
            scores = [sign * next(r for r in rows if r["digest"] == d)[metric] for d in got[name]]
            assert scores == sorted(scores)     # best score first


def test_the_overall_front_holds_each_single_front_best_in_class():
    rng = np.random.default_rng(0)
    rows = [{"digest": f"{n:016x}", "accuracy": float(rng.random()), **{r: int(rng.integers(0, 50)) for r in RESOURCES}}
            for n in range(60)]
    got = fronts(rows, "accuracy")
    best = max(rows, key=lambda r: r["accuracy"])
    assert all(best["digest"] in got[name] for name in got)   # the most accurate point is on every front
    for name in RESOURCES:
        cheapest = min(r[name] for r in rows)
        assert any(next(r for r in rows if r["digest"] == d)[name] == cheapest for d in got[name])
