"""``explore --verify N``: the N best designs of the overall front synthesized and simulated, to check the sweep.

For each design, in the front's order (best score first): Yosys synthesis as
``lstm-hw report`` runs it (:func:`lstm_hw.synth.report.build_report`), and the
generated Verilog simulated under Verilator on the first
:data:`VERIFY_SAMPLES` sequences of the validation data, every output word
compared with the golden model. The estimate's error is ``estimate - yosys``
per resource, and relative to Yosys where Yosys counts more than zero.
"""

from __future__ import annotations

import io
import tomllib

import numpy as np

__all__ = ["verify_front", "VERIFY_SAMPLES", "VERIFIED"]

#: Validation sequences each verified design is simulated on.
VERIFY_SAMPLES = 16
#: (row column, key in the report's resources) of the figures checked against Yosys.
VERIFIED = (("dsp", "dsps"), ("bram36", "bram36"), ("lut", "luts"), ("ff", "ffs"))


def _design_files(result: dict):
    from ..config.schema import parse_config
    config = parse_config(tomllib.loads(result["config_toml"]))
    with np.load(io.BytesIO(result["weights_npz"]), allow_pickle=False) as f:
        weights = {name: f[name] for name in f.files}
    return config, weights


def verify_front(rows: list[dict], results: dict[str, dict], digests: list[str], x: np.ndarray, *,
                 simulator: str = "verilator", progress=None, log=lambda line: None) -> list[dict]:
    """Synthesize and simulate the designs ``digests`` (``results`` holds their config and weights by digest).

    Returns one entry per design: ``digest``, ``estimate`` and ``yosys`` (DSP48E1,
    BRAM36, LUT, FF, fmax), ``error`` (``estimate - yosys``) and
    ``relative_error`` per figure, and ``rtl`` (``samples``, ``mismatches``,
    ``passed``).
    """
    from ..api import convert
    from ..progress import stage
    by_digest = {r["digest"]: r for r in rows}
    out = []
    for n, digest in enumerate(digests, 1):
        row = by_digest[digest]
        config, weights = _design_files(results[digest])
        acc = convert(weights, config, strict=True, warn=False)
        stage(progress, f"verify {n}/{len(digests)} {digest}: synthesize")
        rep = acc.report(progress=progress)
        stage(progress, f"verify {n}/{len(digests)} {digest}: simulate ({simulator})")
        sim = acc.simulation(x[:VERIFY_SAMPLES], simulator, progress=progress)
        estimate = {col: row[col] for col, _ in VERIFIED} | {"fmax_mhz": row["fmax_mhz"]}
        yosys = {col: rep["resources"][key] for col, key in VERIFIED}
        yosys["fmax_mhz"] = round(float(rep["timing"]["estimated_fmax_mhz"]), 1)
        error = {k: round(estimate[k] - yosys[k], 3) for k in estimate}
        entry = {"digest": digest, "estimate": estimate, "yosys": yosys, "error": error,
                 "relative_error": {k: round(error[k] / yosys[k], 4) if yosys[k] else None for k in estimate},
                 "rtl": {"simulator": simulator, "samples": int(min(VERIFY_SAMPLES, x.shape[0])),
                         "mismatches": int(sim.mismatches), "passed": bool(sim.passed)}}
        out.append(entry)
        log(f"verified {digest}: " + ", ".join(
            f"{k} {estimate[k]:g} est. / {yosys[k]:g} Yosys" for k in estimate)
            + f"; RTL {'matches' if sim.passed else 'DIFFERS FROM'} the golden model on {entry['rtl']['samples']} "
              f"sequences")
    return out
