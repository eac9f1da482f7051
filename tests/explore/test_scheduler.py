"""A sweep through a real Dask cluster: ``dask scheduler`` and two ``dask worker`` processes over TCP on
localhost, started here and torn down after. The results must equal the LocalCluster's, also when a worker
is killed in the middle of the sweep."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from helpers import invoke
from lstm_hw.explore import explore

pytestmark = pytest.mark.dask

distributed = pytest.importorskip("distributed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and named workers, each its own process (no nanny, so a killed worker stays dead)."""

    def __init__(self, log_dir):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self._log_dir = log_dir
        self._env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.processes: dict[str, subprocess.Popen] = {}
        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"])

    def _start(self, name: str, args: list[str]) -> None:
        with open(self._log_dir / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                                    stderr=subprocess.STDOUT, env=self._env, start_new_session=True)

    def add_worker(self, name: str) -> None:
        self._start(name, ["worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
                           "--no-dashboard"])

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        with distributed.Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def logs(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every process's log, to say what the cluster did when a test fails."""
        out = []
        for name in self.processes:
            text = (self._log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def kill(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def close(self) -> None:
        """Workers first, while their scheduler is there to say goodbye to; then the scheduler."""
        workers = [p for name, p in self.processes.items() if name != "scheduler"]
        for group in (workers, [self.processes["scheduler"]]):
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and the workers w1 and w2, for the module: a test that kills a worker adds its own."""
    c = Cluster(tmp_path_factory.mktemp("dask_logs"))
    try:
        for name in ("w1", "w2"):
            c.add_worker(name)
        c.wait_for_workers(2)
        yield c
    finally:
        c.close()


def sweep(sweep_files, out, cache, **options):
    return explore(sweep_files / "model.npz", sweep_files / "val.npz", sweep_files / "space.toml",
                   sweep_files / "base.toml", out, cache=cache, plots=False, **options)


def test_a_sweep_through_the_scheduler_equals_the_local_one(cluster, local_run, sweep_files, tmp_path):
    res, local_out = local_run
    out = tmp_path / "out"
    result = invoke("explore", sweep_files / "model.npz", "-d", sweep_files / "val.npz", "-s",
                    sweep_files / "space.toml", "-c", sweep_files / "base.toml", "-o", out, "--scheduler",
                    cluster.address, "--cache", tmp_path / "cache", "-q")
    assert result.exit_code == 0, result.output
    assert f"computing 8 point(s) on the cluster at {cluster.address} (" in result.output
    for name in ("points.json", "points.csv", "pareto.json", "summary.json"):
        assert (out / name).read_bytes() == (local_out / name).read_bytes(), name
    for digest in res.pareto["overall"]:
        for name in ("config.toml", "weights.npz"):
            assert (out / "front" / digest / name).read_bytes() == (local_out / "front" / digest / name).read_bytes()


def test_a_worker_killed_mid_sweep_loses_nothing(cluster, local_run, sweep_files, tmp_path):
    res, _ = local_run
    cache = tmp_path / "cache"
    outcome = {}

    def run():
        try:
            outcome["result"] = sweep(sweep_files, tmp_path / "out", cache, scheduler=cluster.address)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = e

    cluster.add_worker("w3")
    cluster.wait_for_workers(3)
    thread = threading.Thread(target=run, daemon=True)   # a hung sweep must not keep pytest alive
    thread.start()
    killed = None
    with distributed.Client(cluster.address, timeout="30s") as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and thread.is_alive():
            names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}
            busy = sorted(names.get(addr) for addr, keys in client.processing().items()
                          if any(str(k).startswith("lstm-hw-point-") for k in keys))
            if busy:   # the scheduler may keep the points beside their data on some workers: kill one that
                killed = "w3" if "w3" in busy else busy[0]     # holds a point, w3 if it is one of them
                cluster.kill(killed)
                break
            time.sleep(0.02)
    if killed is not None and killed != "w3":
        cluster.add_worker(f"{killed}-again")          # the module's cluster keeps its two workers
    thread.join(timeout=300)
    logs = cluster.logs()
    assert not thread.is_alive() and "error" not in outcome, f"{outcome.get('error')!r}\n{logs}"
    assert killed, f"the sweep ended before a worker could be killed with a point in hand\n{logs}"
    got = outcome["result"]
    assert got.computed == 8 and got.points == res.points and got.pareto == res.pareto, logs
    assert json.loads((tmp_path / "out" / "points.json").read_text()) == res.points
