"""``lstm-hw explore``: a sweep of a design space on Dask, its Pareto fronts and their ready-made designs.

:func:`explore` reads the model (as ``compress`` does, nothing unpickled
unless ``trust_model``), the data and the space; picks the points
(:func:`lstm_hw.explore.space.select_points`); takes what it can from the
cache (:mod:`lstm_hw.explore.cache`) and runs the rest as Dask tasks, one
:func:`lstm_hw.explore.points.evaluate_point` each, on a ``LocalCluster``
with one worker process per core (``workers`` to choose) or on the cluster
at ``scheduler``. The data and weights go to each worker once. Each result
is cached as it arrives, so an interrupted sweep resumes where it stopped;
a task whose worker dies is run again elsewhere (Dask reschedules it, and
``retries`` covers a task that raised), and since a point is a pure function
of its inputs, the results equal an undisturbed run's.

Files in ``out_dir`` (all of them a function of the inputs alone):

- ``points.json`` and ``points.csv``: one row per point, grid order;
- ``pareto.json``: the digests on each front (:func:`lstm_hw.explore.pareto.fronts`),
  among the points that fit the part;
- ``summary.json``: the metric, the dense float model's score, the space,
  the sampling and the points skipped with the reason;
- ``front_<resource>.png``: each front against its resource;
- ``front/<digest>/config.toml`` and ``weights.npz`` for every point of the
  ``overall`` front: ``lstm-hw generate config.toml -w weights.npz``;
- with ``verify``, ``verify.json`` (:mod:`lstm_hw.explore.verify`).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from .cache import Cache, default_cache_dir
from .pareto import RESOURCES, fronts
from .points import Inputs, array_digest, evaluate_point, point_key, source_digest, warm_up, weights_digest
from .space import parse_space, point_mapping, check_point, select_points

__all__ = ["explore", "Exploration", "COLUMNS", "RETRIES", "STALL_SECONDS"]

#: The columns of points.csv after ``digest`` and the knobs, in order; ``accuracy`` becomes ``mse`` for real targets.
COLUMNS = ("accuracy", "cycles_per_timestep", "latency_cycles", "dsp", "bram36", "lut", "ff", "fmax_mhz", "fits",
           "clock_mhz", "real_gops", "effective_gops", "finetune_epochs_run")
#: Times Dask runs a task again after it raised (a worker that dies is rescheduled anyway).
RETRIES = 2
#: Seconds to wait for the next result before checking for results the client was not told of (see _run).
STALL_SECONDS = 10


@dataclass
class Exploration:
    """What :func:`explore` found and wrote.

    Members
    -------
    points : list of dict
        One row per point tried, grid order: ``digest``, the knobs by key path, then :data:`COLUMNS`.
    pareto : dict
        The digests of each front, best score first: ``dsp``, ``lut``, ``bram36``, ``cycles_per_timestep``,
        ``overall``.
    metric : str
        ``accuracy`` (integer labels) or ``mse`` (real targets).
    dense_float : float
        The unpruned float model's ``metric`` on the validation data.
    skipped : list of dict
        Points not tried or not designs: their knobs and the reason.
    computed, cached : int
        Points computed now, and taken from the cache.
    seconds : float
        The whole call.
    compute_seconds : float
        From the first point sent to the warmed-up workers to the last result back (0 when all came from
        the cache).
    verified : list of dict
        With ``verify``: each verified design's estimate against Yosys and its RTL against the golden model.
    written : list of Path
    """

    points: list[dict]
    pareto: dict[str, list[str]]
    metric: str
    dense_float: float
    skipped: list[dict] = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    verified: list[dict] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def row(self, digest: str) -> dict:
        """The point with ``digest``."""
        return next(r for r in self.points if r["digest"] == digest)


def _data(source, sizes: dict, name: str):
    from ..compression.data import check_data, load_data
    if isinstance(source, (str, Path)):
        return load_data(source, sizes)
    if isinstance(source, (tuple, list)) and len(source) == 2:
        return check_data(*source, sizes, name)
    raise UsageError(f"{name}: an (x, y) pair or an .npz path, not a {type(source).__name__}")


def _check_options(workers, scheduler, finetune_epochs, verify) -> None:
    if workers is not None and scheduler is not None:
        raise UsageError("--workers and --scheduler exclude each other: a scheduler's cluster has its own workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError(f"workers must be an integer >= 1, got {workers!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise UsageError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    if isinstance(verify, bool) or not isinstance(verify, int) or verify < 0:
        raise UsageError(f"verify must be an integer >= 0, got {verify!r}")


@contextmanager
def _client(workers: int | None, scheduler: str | None):
    """A Dask client, and words for where it runs: the cluster at ``scheduler``, else a LocalCluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("explore runs on Dask distributed, which is not installed: "
                         "pip install 'lstm-hw[explore]'") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise UsageError(f"--scheduler {scheduler}: cannot connect ({str(e).splitlines()[0]})") from None
        try:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise UsageError(f"--scheduler {scheduler}: no worker joined within 60 s") from None
            yield client, f"the cluster at {scheduler} ({len(client.scheduler_info()['workers'])} workers)"
        finally:
            client.close()
        return
    import dask
    n = workers or os.cpu_count() or 1
    # Dask's nannies set MALLOC_TRIM_THRESHOLD_, which doubles a point's time (glibc then hands memory back
    # and maps it again all the time): unset for these workers.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": ":0"},   # its HTTP server: any free port
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client, f"a local cluster of {n} worker process(es)"


def _shared(inputs: Inputs) -> Inputs:
    """What every point takes, as a task of its own."""
    return inputs


def check_sources(client, where: str) -> None:
    """Refuse a cluster whose workers run other lstm-hw sources than this process (:func:`source_digest`):
    their results would be cached as this code's."""
    ours = source_digest()
    other = sorted(addr for addr, digest in client.run(source_digest).items() if digest != ours)
    if other:
        raise UsageError(f"{len(other)} worker(s) of {where} run other lstm-hw sources than this process "
                         f"({', '.join(other)}): install the same lstm-hw on every worker")


def _point(raw: dict, inputs: Inputs, source: str, **options) -> dict:
    """:func:`evaluate_point` on a worker that runs the client's sources (``source``), checked again for a worker
    that joins the cluster after the sweep started."""
    if source_digest() != source:
        raise UsageError("a worker that joined the cluster runs other lstm-hw sources than the client: "
                         "install the same lstm-hw on every worker")
    return evaluate_point(raw, inputs, **options)


def _run(tasks: dict[str, dict], inputs: Inputs, options: dict, cache: Cache, workers, scheduler, progress,
         log) -> float:
    """Run ``tasks`` (key -> config mapping) on Dask, caching each result as it arrives (:func:`collect`); the
    seconds from the first task submitted to the last result."""
    from ..progress import steps
    with _client(workers, scheduler) as (client, where):
        log(f"computing {len(tasks)} point(s) on {where}")
        check_sources(client, where)
        client.run(warm_up)
        start = time.perf_counter()
        # A task, not scattered data: if every worker holding it dies, the scheduler makes it again.
        shared = client.submit(_shared, inputs, pure=False)
        sent = dict.fromkeys(tasks, 0)

        def submit(key):
            sent[key] += 1
            name = f"lstm-hw-point-{key}" + (f"-{sent[key]}" if sent[key] > 1 else "")
            return client.submit(_point, tasks[key], shared, source_digest(), **options, key=name, pure=False,
                                 retries=RETRIES)

        with steps(progress, "explore", len(tasks), "point") as update:
            finished = []

            def done(key, result):
                cache.put(key, result)
                finished.append(key)
                update(len(finished))

            collect(client, submit, list(tasks), done, log)
        return time.perf_counter() - start


def collect(client, submit, keys: list, done, log=lambda line: None) -> None:
    """Submit every key (``submit(key)`` gives its future) and call ``done(key, result)`` as each result comes.

    A result is waited for at most :data:`STALL_SECONDS` at a time. When none has come by then, every point
    whose result the scheduler holds (``client.who_has``) while this client still waits for it, on two checks
    in a row, is submitted again, and so is a result that cannot be fetched within that time: a worker that
    dies while its result is being fetched can leave the client unaware that the scheduler has made it again
    (distributed 2026.11). A point is a pure function, so running it again changes nothing.
    """
    from distributed import wait
    pending = {submit(key): key for key in keys}
    suspect: set = set()
    while pending:
        try:
            finished = wait(list(pending), timeout=STALL_SECONDS, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            finished = set()
        stale = set()
        for future in finished:
            try:
                result = future.result(timeout=STALL_SECONDS)
            except TimeoutError:
                stale.add(future)
                continue
            done(pending.pop(future), result)
        if not finished:
            held = client.who_has(list(pending))
            unseen = {f for f in pending if held.get(f.key)}   # the scheduler has it, this client waits
            stale |= unseen & suspect
            suspect = unseen - stale
        if stale:
            log(f"sent again: {len(stale)} point(s) the scheduler finished without this client hearing of it "
                "(a worker died)")
        for future in stale:
            key = pending.pop(future)
            pending[submit(key)] = key


def _csv_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def _points_csv(rows: list[dict], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_csv_value(r[c]) for c in columns])
    return buf.getvalue().encode()


def _json(data) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def _write_outputs(out: Path, rows: list[dict], columns: list[str], pareto: dict, summary: dict,
                   files: dict[str, dict], plots: bool) -> list[Path]:
    """Every file of ``out`` but ``verify.json`` (see the module docstring); the paths written."""
    from ..emit.files import write_files
    written = write_files(out, {"points.json": _json(rows), "points.csv": _points_csv(rows, columns),
                                "pareto.json": _json(pareto), "summary.json": _json(summary)}, force=True)
    for digest in pareto["overall"]:
        written += write_files(out / "front" / digest, {"config.toml": files[digest]["config_toml"].encode(),
                                                        "weights.npz": files[digest]["weights_npz"]}, force=True)
    if plots:
        from .plots import plot_front
        for resource in RESOURCES:
            written.append(plot_front(rows, pareto[resource], resource, summary["metric"],
                                      out / f"front_{resource}.png", reference=summary["dense_float"]))
    return written


def explore(model, data, space, base=None, out_dir="explore", *, train=None, workers: int | None = None,
            scheduler: str | None = None, budget: int | None = None, seed: int = 0, finetune_epochs: int = 0,
            cache: str | Path | None = None, force: bool = False, plots: bool = True, verify: int = 0,
            trust_model: bool = False, progress=None, log: Callable[[str], None] = lambda line: None) -> Exploration:
    """``lstm_hw.explore``: sweep ``space`` for ``model``, score each point on ``data``, write the fronts to
    ``out_dir``.

    ``model`` is what :func:`lstm_hw.compress` takes; ``data`` the validation
    data, ``(x, y)`` or an ``.npz`` path (integer labels: accuracy; real
    targets: MSE); ``space`` a SPACE.toml path or a dict shaped like it
    (:mod:`lstm_hw.explore.space`); ``base`` the config every point starts from
    (a TOML path, a dict, a :class:`~lstm_hw.config.schema.Config` or ``None``).
    ``train`` is the data to fine-tune on and calibrate with (default:
    ``data``); fine-tuning (``finetune_epochs`` > 0, the cap of compress's
    fine-tuning) needs it, as scoring on the data trained on would flatter
    every point. ``budget`` caps the points tried (sampled with ``seed``);
    ``workers`` sizes the local cluster (default: one per core), ``scheduler``
    (``tcp://host:8786``) uses a running one instead. ``cache`` is the result
    cache's folder (default :func:`~lstm_hw.explore.cache.default_cache_dir`).
    ``out_dir`` must be empty unless ``force``. ``plots`` writes the PNGs.
    ``verify`` synthesizes and simulates the best ``verify`` designs of the
    overall front (:mod:`lstm_hw.explore.verify`) into ``verify.json``; an RTL
    that differs from the golden model is a
    :class:`~lstm_hw.errors.SimulationMismatch`, raised once everything is written.
    ``progress`` (:mod:`lstm_hw.progress`) shows the points done with an ETA,
    ``log`` gets the summary lines. Returns an :class:`Exploration`.
    """
    from ..compression.compress import split_bits_only
    from ..compression.evaluate import evaluate
    from ..config.schema import config_mapping, fit_config
    from ..emit.files import check_output_dir, write_files
    from ..model.torch_io import read_model

    t0 = time.perf_counter()
    out = check_output_dir(out_dir, force=force)
    _check_options(workers, scheduler, finetune_epochs, verify)
    if verify:
        from ..synth.yosys import find_yosys
        find_yosys()    # before the sweep, not after it
    model_name = str(model) if isinstance(model, (str, Path)) else "model"
    weights, sizes = read_model(model, trust_model=trust_model, name=model_name)
    base_raw = config_mapping(base)
    error = check_point(base_raw, sizes)
    if error is not None:
        raise error
    space = parse_space(space)
    x_val, y_val, kind = _data(data, sizes, "data")
    if train is None and finetune_epochs:
        raise UsageError("fine-tuning (--finetune-epochs > 0) needs --train: scoring on the data it trained on "
                         "would flatter every point")
    x_tr, y_tr, _ = (x_val, y_val, kind) if train is None else _data(train, sizes, "train")
    selection = select_points(space, base_raw, sizes, budget, seed)
    if not selection.indices:
        raise UsageError("no valid point to try")
    log(f"space: {len(space.knobs)} knob(s), {selection.grid_size} grid point(s); trying {len(selection.indices)}"
        + (f" (a sample, seed {seed})" if selection.sampled else "")
        + (f", {len(selection.skipped)} invalid skipped" if selection.skipped else ""))

    options = {"finetune_epochs": finetune_epochs, "seed": seed if finetune_epochs else 0}
    digests = (weights_digest(weights), array_digest(x_tr, y_tr), array_digest(x_val, y_val))
    store = Cache(cache if cache is not None else default_cache_dir())
    points = []
    for i in selection.indices:
        knobs = space.point(i)
        raw = point_mapping(base_raw, knobs)
        points.append((knobs, raw, point_key(raw, *digests, options)))
    results = {key: store.get(key) for _, _, key in points}
    tasks = {key: raw for _, raw, key in points if results[key] is None}
    cached = sum(1 for r in results.values() if r is not None)
    if cached:
        log(f"cache: {cached} point(s) from {store.root}")
    compute_seconds = 0.0
    if tasks:
        inputs = Inputs(weights, (x_tr, y_tr), (x_val, y_val))
        compute_seconds = _run(tasks, inputs, options, store, workers, scheduler, progress, log)
        results.update({key: store.get(key) for key in tasks})

    metric = "accuracy" if kind == "cross_entropy" else "mse"
    figures = [metric if c == "accuracy" else c for c in COLUMNS]
    rows, skipped, files = [], [{"point": space.point(i), "reason": reason} for i, reason in selection.skipped], {}
    for knobs, _, key in points:
        result = results[key]
        if "error" in result:
            skipped.append({"point": knobs, "reason": result["error"]})
        else:
            rows.append({"digest": result["row"]["digest"], **knobs, **{c: result["row"][c] for c in figures}})
            files[result["row"]["digest"]] = result
    if not rows:
        raise UsageError(f"no point makes a design: {skipped[0]['reason']}" if skipped else "no point to try")
    fitting = [r for r in rows if r["fits"]]
    pareto = fronts(fitting, metric) if fitting else {name: [] for name in (*RESOURCES, "overall")}
    dense_raw = copy.deepcopy(base_raw)
    split_bits_only(dense_raw)   # the float model reads no format
    dense = evaluate(fit_config(dense_raw, sizes), weights, x_val, y_val)["float"][metric]

    summary = {"metric": metric, "dense_float": dense, "knobs": {k.path: list(k.values) for k in space.knobs},
               "grid_points": selection.grid_size, "budget": budget, "sampled": selection.sampled,
               "seed": seed, "finetune_epochs": finetune_epochs, "points": len(rows),
               "fitting_points": len(fitting), "skipped": skipped}
    written = _write_outputs(out, rows, ["digest", *space.paths, *figures], pareto, summary, files, plots)
    log(f"{len(rows)} point(s): {len(tasks)} computed, {cached} from the cache, in "
        f"{time.perf_counter() - t0:.1f} s; {len(fitting)} fit the part, {len(pareto['overall'])} on the overall "
        "front")
    verified = []
    if verify:
        from .verify import verify_front
        verified = verify_front(rows, files, pareto["overall"][:verify], x_val, progress=progress, log=log)
        written += write_files(out, {"verify.json": _json(verified)}, force=True)
    result = Exploration(points=rows, pareto=pareto, metric=metric, dense_float=dense, skipped=skipped,
                         computed=len(tasks), cached=cached, seconds=round(time.perf_counter() - t0, 1),
                         compute_seconds=round(compute_seconds, 2), verified=verified, written=written)
    failed = [v["digest"] for v in verified if not v["rtl"]["passed"]]
    if failed:
        from ..errors import SimulationMismatch
        raise SimulationMismatch(f"the RTL of {', '.join(failed)} differs from the golden model (verify.json)")
    return result

