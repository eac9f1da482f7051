"""Points per second of ``lstm_hw.explore`` with 1 and 2 local workers, on a digits space of 288 points.

    python benchmarks/explore.py [--work DIR] [--workers 1,2]

Model and data as examples/digits.py: its LSTM(8 -> 32) + Linear(32 -> 10),
trained as the example trains it (kept in ``--work``), the 1,257 training
images for calibration and the 540 test images for the scores. The space
crosses weight bits (4, 6, 8), density (0.125, 0.25, 0.5, 1), activation
method (pwl, lut, quadratic), banks (2, 4), rows (4, 8) and mac_chain (2, 4):
288 points, every one valid, no fine-tuning, so each point is bound by
compress's pruning and calibration, the golden model on 540 sequences and
the resource estimate.

Each worker count runs the whole space from an empty cache on a
``LocalCluster`` of that many worker processes (one thread each). The rate
is points over ``compute_seconds`` (first point sent to last result back,
once every worker has imported PyTorch and the generators); ``seconds`` is
the whole call (cluster start, imports, model and data, outputs). As a control, the
first ``--control-points`` points are also run with no Dask at all, split
over that many plain processes: the speed-up the machine itself gives at the
moment, against which Dask's is read. Writes
benchmarks/results/explore.json (with the 1-minute load average before and
after each run: the machine's other load changes the figures) and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import digits as example  # noqa: E402  (examples/digits.py: the data and the float training)

from lstm_hw.explore import explore  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "explore.json"
BASE = {"model": {"return_sequences": False}}
SPACE = {"quant.weight.bits": [4, 6, 8], "sparsity.density": [0.125, 0.25, 0.5, 1.0],
         "activation.method": ["pwl", "lut", "quadratic"], "sparsity.banks": [2, 4], "hardware.rows": [4, 8],
         "hardware.mac_chain": [2, 4]}


def _points_in_process(args) -> int:
    """The control's work: evaluate_point on ``raws`` in this process, after a warm-up point."""
    from lstm_hw.explore.points import evaluate_point, warm_up
    raws, inputs = args
    warm_up()
    for raw in raws:
        evaluate_point(raw, inputs)
    return len(raws)


def control(model, train, val, workers: int, n: int) -> float:
    """Points per second of the first ``n`` points of SPACE in ``workers`` plain processes, no Dask: what this
    machine's cores give at the moment."""
    import multiprocessing

    from lstm_hw.explore.points import Inputs
    from lstm_hw.explore.space import parse_space, point_mapping
    from lstm_hw.model.torch_io import read_model
    space = parse_space(SPACE)
    raws = [point_mapping(BASE, space.point(i)) for i in range(n)]
    inputs = Inputs(read_model(model)[0], train, val)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_points_in_process, [([], inputs)] * workers)          # start and import, untimed
        t0 = time.perf_counter()
        done = sum(pool.map(_points_in_process, [(raws[k::workers], inputs) for k in range(workers)]))
        return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("build/explore_bench"), help="the float model and the runs")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    ap.add_argument("--control-points", type=int, default=48, help="points of the plain-process control")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    (x_tr, y_tr), (x_te, y_te) = example.digits()
    model = args.work / "digits_h32.pt"
    if not model.exists():
        example.train(x_tr, y_tr, model)
    runs = []
    for workers in (int(n) for n in args.workers.split(",")):
        cache, out = args.work / f"cache_{workers}", args.work / f"out_{workers}"
        shutil.rmtree(cache, ignore_errors=True)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        res = explore(model, (x_te, y_te), SPACE, BASE, out, train=(x_tr, y_tr), workers=workers, cache=cache,
                      force=True)
        wall = time.perf_counter() - t0
        runs.append({"workers": workers, "points": res.computed, "compute_seconds": res.compute_seconds,
                     "seconds": round(wall, 1), "points_per_second": round(res.computed / res.compute_seconds, 3),
                     "overall_front": len(res.pareto["overall"]), "dense_float": res.dense_float,
                     "best_accuracy": max(r["accuracy"] for r in res.points),
                     "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        print(f"{workers} worker(s): {res.computed} points in {res.compute_seconds:.1f} s "
              f"({runs[-1]['points_per_second']:.2f} points/s), {wall:.1f} s in all", flush=True)
        rate = control(model, (x_tr, y_tr), (x_te, y_te), workers, args.control_points)
        runs[-1]["control_points_per_second"] = round(rate, 3)
        print(f"  control: {args.control_points} points in {workers} plain process(es): {rate:.2f} points/s",
              flush=True)
    base, control_base = runs[0]["points_per_second"], runs[0]["control_points_per_second"]
    for r in runs:
        r["speedup"] = round(r["points_per_second"] / base, 2)
        r["control_speedup"] = round(r["control_points_per_second"] / control_base, 2)
    lines = ["| Workers | Points | Compute s | Points/s | Speed-up | Whole call s | Plain processes: points/s, "
             "speed-up |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['workers']} | {r['points']} | {r['compute_seconds']:.1f} | {r['points_per_second']:.2f} | "
              f"{r['speedup']:.2f}x | {r['seconds']:.1f} | {r['control_points_per_second']:.2f}, "
              f"{r['control_speedup']:.2f}x |" for r in runs]
    print("\n".join(lines))
    RESULTS.write_text(json.dumps({"space": SPACE, "base": BASE, "cores": os.cpu_count(), "runs": runs,
                                   "grid_points": int(np.prod([len(v) for v in SPACE.values()]))}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
