"""A sweep on a LocalCluster of 2 workers: its files, its fronts, its front designs, and its cache."""

import csv
import io
import json
import tomllib

import numpy as np
import pytest

from helpers import PNG_MAGIC, assert_one_line_error, invoke
from lstm_hw.config.schema import parse_config
from lstm_hw.explore import explore
from lstm_hw.explore.pareto import RESOURCES, fronts
from lstm_hw.explore.run import COLUMNS
from lstm_hw.explore.space import parse_space
from lstm_hw.progress import Progress

pytestmark = pytest.mark.dask

KNOBS = ["quant.weight.bits", "sparsity.density", "activation.method"]


def test_the_sweep_writes_every_point_and_its_fronts(local_run, sweep_files):
    res, out = local_run
    space = parse_space(sweep_files / "space.toml")
    rows = json.loads((out / "points.json").read_text())
    assert rows == res.points and len(rows) == space.size == 8 and res.computed == 8 and res.cached == 0
    assert [{k: r[k] for k in KNOBS} for r in rows] == [space.point(i) for i in range(space.size)]
    assert list(rows[0]) == ["digest", *KNOBS, *COLUMNS]
    assert len({r["digest"] for r in rows}) == 8
    with open(out / "points.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["digest"] for r in table] == [r["digest"] for r in rows]
    assert all(float(t["accuracy"]) == r["accuracy"] and int(t["dsp"]) == r["dsp"] for t, r in zip(table, rows))
    # fewer bits and a lower density never cost more DSP48E1s or cycles here
    by = {(r["quant.weight.bits"], r["sparsity.density"], r["activation.method"]): r for r in rows}
    assert by[4, 0.25, "pwl"]["cycles_per_timestep"] < by[4, 0.5, "pwl"]["cycles_per_timestep"]

    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto == res.pareto == fronts([r for r in rows if r["fits"]], "accuracy")
    assert set(pareto) == {*RESOURCES, "overall"} and pareto["overall"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "accuracy" and summary["grid_points"] == 8 and not summary["sampled"]
    assert 0 <= summary["dense_float"] <= 1 and summary["dense_float"] == res.dense_float
    for resource in RESOURCES:
        assert (out / f"front_{resource}.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in (out / "front").iterdir()) == sorted(pareto["overall"])


def test_a_front_design_is_ready_for_generate(local_run, tmp_path):
    res, out = local_run
    digest = res.pareto["overall"][0]
    folder = out / "front" / digest
    config = parse_config(tomllib.loads((folder / "config.toml").read_text()))
    row = res.row(digest)
    assert config.quant.weight.bits == row["quant.weight.bits"] and config.sparsity.density == row["sparsity.density"]
    result = invoke("generate", folder / "config.toml", "-w", folder / "weights.npz", "-o", tmp_path / "gen",
                    "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cycles_per_timestep"] == row["cycles_per_timestep"]
    assert summary["latency_cycles"] == row["latency_cycles"]
    assert "warning" not in result.stderr.lower()       # the weights already conform: nothing pruned


def test_a_repeated_sweep_comes_from_the_cache(local_run, sweep_files, tmp_path):
    _, out = local_run
    cache = out.parent / "cache"
    again = explore(sweep_files / "model.npz", sweep_files / "val.npz", sweep_files / "space.toml",
                    sweep_files / "base.toml", tmp_path / "again", cache=cache, workers=1)
    assert again.computed == 0 and again.cached == 8
    for name in ("points.json", "points.csv", "pareto.json", "summary.json", *(f"front_{r}.png" for r in RESOURCES)):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


def test_an_interrupted_sweep_resumes(local_run, sweep_files, tmp_path):
    """A cache holding some of the points (as a stopped sweep leaves it): only the others are computed."""
    res, out = local_run
    cache = tmp_path / "cache"
    cache.mkdir()
    done = sorted((out.parent / "cache").glob("*.json"))[:5]
    for path in done:
        for part in (path, path.with_suffix(".npz")):
            (cache / part.name).write_bytes(part.read_bytes())
    shown = io.StringIO()
    resumed = explore(sweep_files / "model.npz", sweep_files / "val.npz", sweep_files / "space.toml",
                      sweep_files / "base.toml", tmp_path / "out", cache=cache, workers=1, plots=False,
                      progress=Progress(stream=shown, bars=False))
    assert (resumed.cached, resumed.computed) == (5, 3)
    assert resumed.points == res.points and resumed.pareto == res.pareto
    assert "explore: 3 points" in shown.getvalue() and "explore: 3 of 3 points in" in shown.getvalue()


def test_a_budget_samples_the_grid(local_run, sweep_files, tmp_path):
    res, out = local_run
    sample = explore(sweep_files / "model.npz", sweep_files / "val.npz", sweep_files / "space.toml",
                     sweep_files / "base.toml", tmp_path / "out", cache=out.parent / "cache", budget=3, seed=5,
                     plots=False)
    assert len(sample.points) == 3 and sample.computed == 0
    assert all(r in res.points for r in sample.points)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["sampled"] is True


def test_a_sweep_of_refused_configs_says_why(local_run, sweep_files, tmp_path):
    """Points that compress refuses are skipped with the reason; when no point is left, one line says why."""
    (tmp_path / "base.toml").write_text((sweep_files / "base.toml").read_text() + "[quant]\nbias = { bits = 12 }\n")
    (tmp_path / "space.toml").write_text('"sparsity.density" = [0.5]\n')
    result = invoke("explore", sweep_files / "model.npz", "-d", sweep_files / "val.npz", "-s", tmp_path / "space.toml",
                    "-c", tmp_path / "base.toml", "-o", tmp_path / "out", "--workers", "1", "--cache",
                    tmp_path / "cache")
    assert_one_line_error(result, "no point makes a design: quant.bias: needs frac too")
    assert json.loads(next((tmp_path / "cache").glob("*.json")).read_text())["error"].startswith("quant.bias")


def test_the_cli_refuses_a_folder_with_files(local_run, sweep_files):
    _, out = local_run
    result = invoke("explore", sweep_files / "model.npz", "-d", sweep_files / "val.npz", "-s",
                    sweep_files / "space.toml", "-o", out)
    assert_one_line_error(result, "directory is not empty (use --force to overwrite)")


def test_the_cli_with_real_targets_and_fine_tuning(sweep_files, tmp_path):
    """MSE on real targets, fine-tuned for one epoch on --train, from the command line, with the front on stdout."""
    with np.load(sweep_files / "val.npz") as f:
        x = f["x"]
    np.savez(tmp_path / "val.npz", x=x[:24], y=np.tanh(x[:24].sum(axis=1)[:, :2]))
    np.savez(tmp_path / "train.npz", x=x[24:], y=np.tanh(x[24:].sum(axis=1)[:, :2]))
    (tmp_path / "space.toml").write_text('"sparsity.density" = [0.25, 0.5]\n')
    result = invoke("explore", sweep_files / "model.npz", "-d", tmp_path / "val.npz", "-s", tmp_path / "space.toml",
                    "-c", sweep_files / "base.toml", "-o", tmp_path / "out", "--workers", "1",
                    "--cache", tmp_path / "cache", "--train", tmp_path / "train.npz", "--finetune-epochs", "1", "-q")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "out" / "points.json").read_text())
    assert len(rows) == 2 and all("mse" in r and "accuracy" not in r for r in rows)
    assert all(r["finetune_epochs_run"] == 1 for r in rows)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["finetune_epochs"] == 1
    pareto = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert pareto == fronts(rows, "mse")
    assert all(d in result.stdout for d in pareto["overall"])


@pytest.mark.synth
@pytest.mark.cocotb
def test_verify_synthesizes_and_simulates_the_best_front_design(local_run, sweep_files, tmp_path):
    """--verify 1 from the cache: the best overall design against Yosys and under Verilator."""
    from lstm_hw.explore.verify import VERIFY_SAMPLES
    res, out = local_run
    result = invoke("explore", sweep_files / "model.npz", "-d", sweep_files / "val.npz", "-s",
                    sweep_files / "space.toml", "-c", sweep_files / "base.toml", "-o", tmp_path / "out",
                    "--cache", out.parent / "cache", "--verify", "1", "-q")
    assert result.exit_code == 0, result.output
    verified = json.loads((tmp_path / "out" / "verify.json").read_text())
    best = res.pareto["overall"][0]
    assert [v["digest"] for v in verified] == [best]
    v, row = verified[0], res.row(best)
    assert v["estimate"] == {k: row[k] for k in ("dsp", "bram36", "lut", "ff", "fmax_mhz")}
    assert all(v["yosys"][k] > 0 for k in ("dsp", "lut", "ff", "fmax_mhz"))   # a real netlist's counts
    assert all(v["error"][k] == pytest.approx(v["estimate"][k] - v["yosys"][k]) for k in v["error"])
    assert v["rtl"] == {"simulator": "verilator", "samples": VERIFY_SAMPLES, "mismatches": 0, "passed": True}
    assert f"verified {best}" in result.output


class FakeFuture:
    """A future that is ready (with its result) or not, and that the scheduler holds or not."""

    def __init__(self, key, ready, held=False, fetchable=True):
        self.key, self.ready, self.held, self.fetchable = key, ready, held, fetchable

    def result(self, timeout=None):
        if not self.fetchable:
            raise TimeoutError
        return f"result of {self.key}"


class FakeClient:
    def who_has(self, futures):
        return {f.key: ["tcp://w1"] if f.held else [] for f in futures}


def fake_wait(futures, timeout, return_when):
    done = {f for f in futures if f.ready}
    if not done:
        raise TimeoutError
    return type("DoneAndNotDone", (), {"done": done})()


@pytest.mark.parametrize("lost", ["unseen", "unfetchable"])
def test_collect_sends_again_what_the_client_was_never_told_of(monkeypatch, lost):
    """A result the scheduler holds while the client waits (twice in a row), or one that cannot be fetched, is
    submitted again; a point still running (not held) is waited for, not sent again."""
    import distributed
    from lstm_hw.explore.run import collect
    monkeypatch.setattr(distributed, "wait", fake_wait)
    sent, results, lines = [], {}, []
    slow = FakeFuture("c", ready=False)
    checks = {"n": 0}

    def submit(key):
        sent.append(key)
        if key == "b" and sent.count("b") == 1:     # lost: never ready though held, or ready but unfetchable
            return FakeFuture("b", ready=lost == "unfetchable", held=True, fetchable=lost != "unfetchable")
        return slow if key == "c" else FakeFuture(key, ready=True)

    class Client(FakeClient):
        def who_has(self, futures):
            checks["n"] += 1
            if checks["n"] == 3:
                slow.ready = True                    # the running point ends at last
            return super().who_has(futures)

    collect(Client(), submit, ["a", "b", "c"], lambda key, result: results.setdefault(key, result), lines.append)
    assert results == {k: f"result of {k}" for k in "abc"}
    assert sorted(sent) == ["a", "b", "b", "c"]      # b once more, the slow c never
    assert len(lines) == 1 and lines[0].startswith("sent again: 1 point(s)")


def test_a_cluster_running_other_sources_is_refused():
    """Workers whose lstm-hw sources differ from the client's are named and refused before any point runs; a
    worker that joins later refuses the point itself."""
    from lstm_hw.errors import UsageError
    from lstm_hw.explore.points import source_digest
    from lstm_hw.explore.run import _point, check_sources

    class Client:
        def __init__(self, digests):
            self.digests = digests

        def run(self, function):
            assert function is source_digest
            return self.digests

    ours = source_digest()
    check_sources(Client({"tcp://10.0.0.1:1": ours, "tcp://10.0.0.2:2": ours}), "the cluster")
    with pytest.raises(UsageError, match=r"^1 worker\(s\) of the cluster run other lstm-hw sources than this "
                                         r"process \(tcp://10\.0\.0\.2:2\): install the same lstm-hw"):
        check_sources(Client({"tcp://10.0.0.1:1": ours, "tcp://10.0.0.2:2": "0" * 64}), "the cluster")
    with pytest.raises(UsageError, match="joined the cluster runs other lstm-hw sources"):
        _point({}, None, "0" * 64)
