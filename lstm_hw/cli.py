"""``lstm-hw``: generate, model and simulate LSTM accelerators.

The CLI only parses options, calls the library and prints. Every
:class:`~lstm_hw.errors.LstmHwError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from .config import DEFAULT_TOML, load_config
from .errors import LstmHwError, UsageError

SIMULATORS = ("icarus", "verilator")


def _one_line_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LstmHwError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
    return wrapper


def _design(config_path, weights_path):
    from .design import build_design
    from .weights import load_weights
    config = load_config(config_path)
    weights = load_weights(weights_path, config) if weights_path else None
    return build_design(config, weights)


def _load_input(path: str, input_size: int) -> np.ndarray:
    """Real-valued ``x`` of shape (T, I) or (N, T, I), checked."""
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"{path}: not a .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise UsageError(f"{path}: must hold a numeric array")
    if x.ndim not in (2, 3) or x.shape[-1] != input_size or 0 in x.shape:
        raise UsageError(f"{path}: shape {x.shape} is not (T, {input_size}) or (N, T, {input_size})")
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{path}: contains NaN or infinity")
    return x.astype(np.float64)


def _save_npy(path: str, array: np.ndarray):
    from .emit import write_files
    import io
    buf = io.BytesIO()
    np.save(buf, array)
    target = Path(path)
    write_files(target.parent if str(target.parent) else Path("."), {target.name: buf.getvalue()}, force=True)


config_arg = click.argument("config", required=False, type=click.Path(dir_okay=False))
weights_opt = click.option("--weights", "-w", type=click.Path(dir_okay=False),
                           help="PyTorch nn.LSTM state_dict as .npz (default: seeded random weights).")


class _Group(click.Group):
    """Click's own usage errors (bad option values, missing arguments) also as one line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as e:
            command = f" ({e.ctx.command_path} --help for usage)" if getattr(e, "ctx", None) else ""
            message = " ".join(e.format_message().split())
            click.echo(f"error: {message}{command}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # ctx.exit(n) and --help return their code


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lstm-hw")
def main():
    """Generate bank-balanced sparse, approximate LSTM accelerators for Xilinx 7-series FPGAs."""


@main.command()
@config_arg
@weights_opt
@click.option("--output", "-o", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory for <top>.v, <top>.json and <top>.xdc.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds files.")
@_one_line_errors
def generate(config, weights, out_dir, force):
    """Write synthesizable Verilog, metadata and constraints for CONFIG (default: embedded design)."""
    from .emit import design_files, write_files
    t0 = time.perf_counter()
    design = _design(config, weights)
    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not force:  # refuse before the slow part
        raise UsageError(f"{out}: directory is not empty (use --force to overwrite)")
    files = design_files(design)
    written = write_files(out, files, force=force)
    import json
    meta = json.loads(files[f"{design.config.hardware.top}.json"])
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{meta['macs']} MACs, {meta['cycles_per_timestep']} cycles/timestep "
               f"(ideal {meta['ideal_cycles_per_timestep']}), latency {meta['latency_cycles']} cycles, "
               f"generated in {time.perf_counter() - t0:.1f} s")


@main.command()
@config_arg
@weights_opt
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False),
              help="x as .npy, real-valued, (T, I) or (N, T, I).")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False),
              help="y as .npy: the real values of the hardware's output words.")
@_one_line_errors
def golden(config, weights, input_path, output_path):
    """Run the bit-exact model of the generated hardware."""
    from .golden import run_golden_real
    design = _design(config, weights)
    x = _load_input(input_path, design.config.model.input_size)
    y = run_golden_real(design, x)
    _save_npy(output_path, y)
    click.echo(f"wrote {output_path} {y.shape}")


@main.command()
@config_arg
@weights_opt
@click.option("--sim", type=click.Choice(SIMULATORS), required=True, help="Simulator.")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False),
              help="x as .npy, real-valued, (T, I) or (N, T, I).")
@click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False),
              help="Write the simulated outputs (real values) as .npy.")
@click.option("--waves", is_flag=True, help="Record waveforms (Verilator: dump.vcd, Icarus: <top>.fst) in the build directory, which is kept.")
@click.option("--build-dir", type=click.Path(file_okay=False), help="Keep the build here (default: temporary).")
@click.option("--seed", default=1, show_default=True, help="Seed of random idle and backpressure.")
@click.option("--idle", default=0.0, show_default=True, type=click.FloatRange(0, 0.95),
              help="Probability of an idle input cycle.")
@click.option("--backpressure", default=0.0, show_default=True, type=click.FloatRange(0, 0.95),
              help="Probability of a cycle with m_axis_tready low.")
@_one_line_errors
def simulate(config, weights, sim, input_path, output_path, waves, build_dir, seed, idle, backpressure):
    """Simulate the generated Verilog under cocotb and compare with the golden model."""
    from .sim.top import simulate_top
    design = _design(config, weights)
    x = _load_input(input_path, design.config.model.input_size)
    keep = build_dir is not None or waves
    work = Path(build_dir) if build_dir else Path(tempfile.mkdtemp(prefix="lstm-hw-sim-"))
    try:
        codes = design.io_format.quantize(x)
        res = simulate_top(design, codes, sim=sim, build_dir=work, seed=seed, idle=idle,
                           backpressure=backpressure, waves=waves)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    if output_path:
        y = design.io_format.to_real(res.output)
        _save_npy(output_path, y if x.ndim == 3 else y[0])
    if keep:
        click.echo(f"build directory: {work}")
    steps = res.expected.shape[0] * res.expected.shape[1]
    click.echo(f"{sim}: {res.output.size - res.mismatches}/{res.output.size} outputs match the golden model "
               f"({steps} output timesteps)")
    if not res.passed:
        click.echo(f"error: {res.mismatches} outputs differ from the golden model"
                   + ("" if res.mismatches else " but the testbench failed (tlast); see the log"), err=True)
        sys.exit(1)


@main.command("config")
def show_config():
    """Print the default configuration, every key documented."""
    click.echo(DEFAULT_TOML, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
