"""The Python API: the whole flow from one import, as the command line runs it.

.. code-block:: python

    import lstm_hw
    cfg = lstm_hw.load_config("lstm.toml")       # or lstm_hw.Config(...), lstm_hw.Config.from_dict({...})
    acc = lstm_hw.convert(model, cfg)            # nn.Module, state_dict, dict of arrays, or a path
    y = acc.predict(x)                           # the bit-exact golden model, real values
    y = acc.simulate(x, simulator="verilator")   # the generated Verilog; SimulationMismatch if it differs
    paths = acc.write("out")                     # what lstm-hw generate writes, byte for byte
    r = acc.report()                             # what lstm-hw report --json prints
    acc.metadata, acc.weights

Every error is an :class:`~lstm_hw.errors.LstmHwError` with the one-line
message the command line prints.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cached_property
from pathlib import Path

import numpy as np

from .config.schema import Config, config_mapping, fit_config, parse_config
from .errors import ConfigError, SimulationMismatch, UsageError
from .model.design import Design, build_design
from .model.pruning import pruning_lines, warn_pruning

__all__ = ["convert", "Accelerator", "WrittenFiles", "check_input", "resolve_config"]

_SIZES = ("input_size", "hidden_size", "num_layers", "output_size")


def resolve_config(config, sizes: dict | None, name: str = "the model") -> Config:
    """``config`` as a :class:`Config`: ``None`` (the default), a TOML path, a dict shaped like the TOML, or a Config.

    With the model's ``sizes``, a path, a dict or ``None`` takes the model's
    sizes where it does not state them; a size it states, and every size of a
    Config, must match.
    """
    if isinstance(config, Config):
        if sizes is not None:
            for key in _SIZES:
                if getattr(config.model, key) != sizes[key]:
                    raise ConfigError(f"model.{key}", f"is {getattr(config.model, key)!r}, but {name} has "
                                                      f"{sizes[key]}")
        return config
    raw = config_mapping(config)
    return parse_config(raw) if sizes is None else fit_config(raw, sizes, name)


def check_input(x, input_size: int, source: str = "x") -> np.ndarray:
    """Real-valued ``x`` of shape (T, I) or (N, T, I) as float64, or a one-line :class:`UsageError`."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise UsageError(f"{source}: must hold a numeric array")
    if x.ndim not in (2, 3) or x.shape[-1] != input_size or 0 in x.shape:
        raise UsageError(f"{source}: shape {x.shape} is not (T, {input_size}) or (N, T, {input_size})")
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{source}: contains NaN or infinity")
    return x.astype(np.float64)


def convert(model=None, config=None, *, strict: bool = False, trust_model: bool = False,
            name: str | None = None, warn: bool = True) -> Accelerator:
    """The accelerator for ``model`` under ``config``.

    ``model`` is an ``nn.Module`` holding one ``nn.LSTM`` and optionally one
    ``nn.Linear`` head (whatever its class), a ``state_dict``, a dict of NumPy
    arrays with PyTorch's names, a path (``.pt``, ``.pth``, ``.npz``,
    ``.onnx``), or ``None`` for the config's seeded random weights.
    ``config`` is a :class:`Config`, a dict shaped like the TOML, a TOML path,
    or ``None`` for the defaults; sizes it leaves out come from the model.

    What the hardware's pruning drops of the model's weights is told as a
    :class:`~lstm_hw.model.pruning.WeightsPrunedWarning` (dense weights pruned to the
    density) or :class:`~lstm_hw.model.pruning.NonConformingWeightsWarning` per
    matrix (``warn=False``: not at all); ``strict`` refuses such weights with
    a :class:`~lstm_hw.errors.ConfigError`. ``trust_model`` lets a PyTorch
    file that holds more than tensors be unpickled (it can run code).
    ``name`` stands for the model in messages (default: its path, or "weights").
    """
    from .model.torch_io import read_model
    from .model.weights import check_weights
    if model is None:
        return Accelerator(build_design(resolve_config(config, None)), "seeded weights")
    name = name or (str(model) if isinstance(model, (str, Path)) else "weights")
    weights, sizes = read_model(model, trust_model=trust_model, name=name)
    cfg = resolve_config(config, sizes, name)
    design = build_design(cfg, check_weights(weights, cfg, name), strict=strict, source=name)
    if warn:
        warn_pruning(design.pruning, name, stacklevel=2)
    return Accelerator(design, name)


class WrittenFiles(list):
    """The paths :meth:`Accelerator.write` wrote, in order; ``removed`` lists the stale sources it removed."""

    def __init__(self, written, removed):
        super().__init__(written)
        self.removed: list[Path] = list(removed)


class Accelerator:
    """A design ready to predict, simulate, write and report; made by :func:`convert`.

    Members
    -------
    design : Design
        The pruned, quantized and scheduled design (:mod:`lstm_hw.model.design`).
    config : Config
    metadata : dict
        The contents of ``<top>.json``.
    weights : dict
        What the hardware holds, as real values under PyTorch's names.
    """

    def __init__(self, design: Design, name: str = "weights"):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {type(design).__name__}")
        self._design = design
        self._name = name

    def __repr__(self) -> str:
        m = self.config.model
        return (f"<Accelerator {self.config.hardware.top}: LSTM {m.input_size}->{m.hidden_size} x{m.num_layers}"
                f"{f', head {m.output_size}' if m.output_size else ''}, {self._name}>")

    @property
    def design(self) -> Design:
        return self._design

    @property
    def config(self) -> Config:
        return self._design.config

    @property
    def pruning_lines(self) -> list[str]:
        """The lines the command line prints of what pruning dropped (none for seeded weights)."""
        return pruning_lines(self._design.pruning, self._name) if self._design.weights_given else []

    @cached_property
    def files(self) -> dict[str, bytes]:
        """Every output file by name, rendered once (the Verilog takes seconds to minutes)."""
        from .emit.files import design_files
        return design_files(self._design)

    @property
    def metadata(self) -> dict:
        return json.loads(self.files[f"{self.config.hardware.top}.json"])

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """What the hardware holds, pruned and quantized, as real values under PyTorch's names.

        A layer stores one bias, ``b_ih + b_hh`` quantized once: it is under
        ``bias_ih_l{k}``, and ``bias_hh_l{k}`` is zero. ``convert`` of these
        weights with ``strict=True`` gives the same design.
        """
        q = self.config.quant
        out = {}
        for layer in self._design.layers:
            w, k, i = q.weight.to_real(layer.w), layer.index, layer.input_size
            out[f"weight_ih_l{k}"], out[f"weight_hh_l{k}"] = w[:, :i], w[:, i:]
            out[f"bias_ih_l{k}"] = q.bias_format.to_real(layer.b)
            out[f"bias_hh_l{k}"] = np.zeros_like(out[f"bias_ih_l{k}"])
        head = self._design.head
        if head is not None:
            out["fc.weight"], out["fc.bias"] = q.weight.to_real(head.w), q.bias_format.to_real(head.b)
        return out

    def summary(self) -> dict:
        """What ``lstm-hw generate`` prints: the design's figures, each layer's overhead with its cause,
        the activation tables' cost and error."""
        meta = self.metadata
        overhead = []
        for layer in meta["layers"]:
            issue, step = layer["issue_cycles_per_timestep"], layer["cycles_per_timestep"]
            if layer["stream_cycles_per_timestep"] > layer["compute_cycles_per_timestep"]:
                cause = "bound by the stream ports (more io_lanes would help)"
            elif layer["tail_wait_cycles"] and meta["interleave"] > 1:
                cause = (f"the {meta['interleave']} interleaved sequences' steps do not cover the "
                         f"{layer['tail_cycles']}-cycle tail (more interleave, or more passes, would)")
            elif layer["tail_wait_cycles"]:
                cause = (f"its {layer['input_phase_cycles']}-cycle input phase does not cover the "
                         f"{layer['tail_cycles']}-cycle tail (more passes, i.e. fewer rows, would)")
            elif layer["phase_gap_cycles"]:
                cause = "hand-over, and the wait until the input phase's partial sums are written (few passes)"
            else:
                cause = "command and phase hand-over"
            overhead.append({"cycles_per_timestep": step, "issuing": issue, "overhead": step - issue,
                             "fraction": (step - issue) / step, "cause": cause})
        act = meta["activation"]
        return {
            "top": meta["top"], "macs": meta["macs"], "cycles_per_timestep": meta["cycles_per_timestep"],
            "ideal_cycles_per_timestep": meta["ideal_cycles_per_timestep"],
            "latency_cycles": meta["latency_cycles"], "overhead": overhead,
            "mapping": meta["mapping"]["reason"] if "mapping" in meta else None,
            "activation": {"name": f"taylor{act['taylor_order']}" if act["method"] == "taylor" else act["method"],
                           "segments": act["segments"], "auto": act["chosen_by"] == "auto",
                           "multipliers_per_unit": act["multipliers_per_unit"],
                           "max_abs_error": max(act[k]["max_abs_error"] for k in ("sigmoid", "tanh_gate",
                                                                                  "tanh_cell"))},
            "pruning": meta["pruning"],
        }

    def pack_weights(self, weights=None, *, strict: bool = False, trust_model: bool = False,
                     name: str | None = None, warn: bool = True) -> bytes:
        """The weight image of ``weights`` for this hardware, to load through ``s_axis_weights``: what
        ``lstm-hw pack`` writes, little-endian 32-bit words (README "Run-time weights").

        ``weights`` is anything :func:`convert` takes for a model (an ``nn.Module``,
        a ``state_dict``, a dict of arrays, a path), or ``None`` for this
        accelerator's own. They are pruned and quantized to this config as
        ``convert`` does, with the same warnings and ``strict``; sizes that differ
        from the config's are a :class:`~lstm_hw.errors.ConfigError`. Only for
        ``hardware.weights = "ram"``.
        """
        from .emit.files import weight_image_bytes
        if weights is None or self.config.hardware.weights != "ram":     # (a ROM design refuses, saying why)
            return weight_image_bytes(self._design)
        other = convert(weights, self.config, strict=strict, trust_model=trust_model, name=name, warn=False)
        if warn:
            warn_pruning(other.design.pruning, other._name, stacklevel=2)
        return weight_image_bytes(other.design)

    def predict(self, x) -> np.ndarray:
        """The bit-exact golden model: real ``x`` (T, I) or (N, T, I) in, the output words' real values out.

        Exactly what ``lstm-hw golden`` writes: (T', O) or (N, T', O), T' = 1
        with ``return_sequences = false``.
        """
        from .model.golden import run_golden_real
        return run_golden_real(self._design, check_input(x, self.config.model.input_size))

    def simulation(self, x, simulator: str = "verilator", *, build_dir: str | Path | None = None, seed: int = 1,
                   idle: float = 0.0, backpressure: float = 0.0, waves: bool = False, progress=None):
        """Run the generated Verilog on ``x`` under ``simulator``; the :class:`~lstm_hw.sim.top.SimResult`.

        ``build_dir`` keeps the build (default: a temporary folder, removed
        after). ``idle`` and ``backpressure`` are the probabilities of an idle
        input cycle and of a cycle with ``m_axis_tready`` low, seeded by ``seed``.
        ``progress`` (a :class:`lstm_hw.progress.Progress`) shows the build's
        phases and the timesteps simulated.
        """
        from .sim.top import simulate_top
        x = check_input(x, self.config.model.input_size)
        for key, p in (("idle", idle), ("backpressure", backpressure)):
            if not 0.0 <= p <= 0.95:
                raise UsageError(f"{key}: must be in [0, 0.95], got {p!r}")
        work = Path(build_dir) if build_dir is not None else Path(tempfile.mkdtemp(prefix="lstm-hw-sim-"))
        try:
            return simulate_top(self._design, self._design.io_format.quantize(x), sim=simulator, build_dir=work,
                                seed=seed, idle=idle, backpressure=backpressure, waves=waves, progress=progress)
        finally:
            if build_dir is None:
                shutil.rmtree(work, ignore_errors=True)

    def simulate(self, x, simulator: str = "verilator", **options) -> np.ndarray:
        """:meth:`simulation`'s output words as real values, shaped as :meth:`predict`'s.

        Raises :class:`~lstm_hw.errors.SimulationMismatch` when any word, or
        any ``tlast``, differs from the golden model.
        """
        res = self.simulation(x, simulator, **options)
        if not res.passed:
            raise SimulationMismatch(f"{simulator}: {res.mismatches} of {res.output.size} output words differ from "
                                     "the golden model" if res.mismatches else
                                     f"{simulator}: the outputs match but the testbench failed "
                                     f"({res.failed_checks} failed checks, {res.protocol_violations} protocol "
                                     "violations, tlast); keep build_dir to see the log")
        y = self._design.output_format.to_real(res.output)
        return y if np.ndim(x) == 3 else y[0]

    def write(self, out: str | Path, force: bool = False) -> WrittenFiles:
        """Write exactly the files ``lstm-hw generate`` writes into ``out``; see :class:`WrittenFiles`.

        A folder that already holds files is refused unless ``force``; then the
        submodule and ``.mem`` files that the previous ``<top>.json`` listed and
        this design no longer has are removed, and nothing else is touched.
        """
        from .emit.files import check_output_dir, previous_sources, write_files
        out = check_output_dir(out, force=force)  # before the slow part
        stale = previous_sources(out, self.config.hardware.top) - set(self.files)
        written = write_files(out, self.files, force=force)
        removed = []
        for name in sorted(stale):
            (out / name).unlink(missing_ok=True)
            removed.append(out / name)
        return WrittenFiles(written, removed)

    def report(self, *, yosys: str | None = None, progress=None) -> dict:
        """Synthesize with Yosys: what ``lstm-hw report --json`` prints, as a dict.

        ``progress`` (a :class:`lstm_hw.progress.Progress`) shows the stages and each Yosys pass.
        """
        from .synth.report import build_report
        # the files only if already rendered: without Yosys, report fails before the slow part
        return build_report(self._design, yosys=yosys, progress=progress, files=self.__dict__.get("files"))

