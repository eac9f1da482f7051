"""Soak run: random configs end to end under a simulator, bit-exact against the golden model.

    python benchmarks/soak.py --count N --sim icarus|verilator [--seed S] [--max-size M] [--keep DIR]

Seeds S, S+1, ..., S+N-1 each give a config (``lstm_hw.config.randconfig.random_case``),
a design and a short input; each streams it in the four flow modes (none,
random idle 0.25, random output backpressure 0.3, both) in one simulation,
with the protocol checker on both streams. One line per
seed; a failing seed replays with ``--seed SEED --count 1`` and its build
directory (waveform-free logs) is kept. Exit 1 if any seed failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lstm_hw.config.randconfig import random_case
from lstm_hw.sim.flow import flow_modes
from lstm_hw.sim.top import simulate_top


def _summary(config: dict) -> str:
    m, q, s, a = config["model"], config["quant"], config["sparsity"], config["activation"]
    method = a["method"] + (str(a["taylor_order"]) if a["method"] == "taylor" else "")
    return (f"I={m['input_size']} H={m['hidden_size']} L={m['num_layers']} O={m['output_size']} "
            f"seq={int(m['return_sequences'])} banks={s['banks']} rows={config['hardware']['rows']} "
            f"lanes={config['hardware'].get('io_lanes', 1)} chain={config['hardware'].get('mac_chain', 4)} "
            f"d={s['density']} {s['pattern']} w{q['weight']['bits']} a{q['activation']['bits']} "
            f"{method}/{a['segments']}{'' if a['fold'] else ' unfolded'} {q['rounding']}")


def run_seed(seed: int, sim: str, max_size: int, keep: Path) -> bool:
    start = time.monotonic()
    config, design, x = random_case(seed, max_size=max_size)
    build = Path(tempfile.mkdtemp(prefix=f"soak_{sim}_{seed}_"))
    try:
        modes = flow_modes(idle=0.25, backpressure=0.3)
        res = simulate_top(design, x, sim=sim, build_dir=build, seed=seed, modes=modes)
        ok, why = res.passed, res.summary()
    except Exception as e:  # a crash is a failure of this seed, not of the run
        ok, why = False, f"{type(e).__name__}: {e}"
    verdict = "pass" if ok else f"FAIL ({why})"
    print(f"seed {seed}: {verdict} in {time.monotonic() - start:.1f} s  [{_summary(config)}]", flush=True)
    if ok:
        shutil.rmtree(build, ignore_errors=True)
    else:
        kept = keep / f"{sim}_{seed}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(build, kept)
        print(f"  config: {config}\n  build kept in {kept}", flush=True)
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, required=True, help="number of random configs")
    ap.add_argument("--sim", choices=("icarus", "verilator"), required=True)
    ap.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--max-size", type=int, default=40, help="largest input and hidden size (default 40)")
    ap.add_argument("--keep", type=Path, default=Path("soak_failures"), help="where failing builds are kept")
    args = ap.parse_args(argv)
    seeds = range(args.seed, args.seed + args.count)
    failed = [seed for seed in seeds if not run_seed(seed, args.sim, args.max_size, args.keep)]
    print(f"{args.count} run under {args.sim}: {args.count - len(failed)} passed, {len(failed)} failed"
          + (f" (seeds {', '.join(map(str, failed))})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
