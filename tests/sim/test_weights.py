"""Run-time weights on the RTL, under both simulators (``hardware.weights = "ram"``): a design generated with model A
runs A, then B, then A again as their images are loaded through ``s_axis_weights``; a load during a transfer
takes effect after it; truncated, long and wrong-digest images stall the data stream until a good one comes;
back-to-back loads; a reset keeps the loaded weights and a reset during a load leaves ``weights_ok`` low; sums
narrowed to what the models need (``hardware.sum_bits``).
Every transfer's outputs bit-exact against the golden model of the weights it should have used."""

import json

import numpy as np
import pytest

from helpers import SIMULATORS
from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files, write_files
from lstm_hw.generators import mvm_rom
from lstm_hw.generators.image import DIGEST_WORDS
from lstm_hw.generators.top import weight_image
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import run_golden
from lstm_hw.model.sums import format_sum_bits, need_sum_bits
from lstm_hw.model.weights import random_weights
from lstm_hw.sim.runner import run_cocotb

CONFIGS = {
    # Two layers and a head, two lanes a beat, batches of 3 steps in a transfer; a row lane, so 24 passes
    # (start values in memories of their own), and a bias narrower than the product (codes above constant bits).
    "layers2_head": {"model": {"input_size": 4, "hidden_size": 6, "num_layers": 2, "output_size": 3,
                               "sequence_length": 3},
                     "quant": {"bias": {"bits": 12, "frac": 8}},
                     "sparsity": {"banks": 2}, "hardware": {"rows": 1, "io_lanes": 2, "weights": "ram"}},
    # Stateful, and weight memories three columns wide (8 rows x 8 banks at one chain position): a load
    # also clears the state. Two passes: start values in the partial-sum memories' upper halves.
    "stateful_columns": {"model": {"input_size": 5, "hidden_size": 4, "num_layers": 1, "stateful": True},
                         "sparsity": {"banks": 8, "density": 0.5},
                         "hardware": {"rows": 8, "mac_chain": 1, "weights": "ram"}},
}

#: The script (sim/tb_weights.py) and, for each transfer it sends, the model it must run on.
SCRIPT = [
    ({"run": 0}, "A"), ({"ok": 1}, None),                                    # 1. as generated
    ({"load": "B"}, None), ({"ok": 1}, None), ({"run": 1}, "B"),             # 2. B
    ({"load": "A"}, None), ({"run": 2}, "A"),                                # 3. A again
    ({"load": "B", "during": 3, "after": 2}, "A"), ({"run": 4}, "B"),        # 4. a load during a transfer
    ({"load": "short"}, None), ({"ok": 0}, None), ({"stalled": 5, "cycles": 300}, "A"),
    ({"load": "A"}, None),                                                   # 5. rejected images
    ({"load": "long"}, None), ({"ok": 0}, None), ({"stalled": 6, "cycles": 300}, "B"), ({"load": "B"}, None),
    ({"load": "digest"}, None), ({"ok": 0}, None), ({"stalled": 7, "cycles": 300}, "A"), ({"load": "A"}, None),
    ({"load": "B"}, None), ({"load": "A"}, None), ({"load": "B"}, None), ({"run": 8}, "B"),   # 6. back to back
    ({"reset": 16}, None), ({"ok": 1}, None), ({"run": 9}, "B"),             # a reset keeps B
    ({"reset_during": "A", "after": 10}, None), ({"ok": 0}, None), ({"stalled": 10, "cycles": 200}, "A"),
    ({"load": "A"}, None),
]


def images(design_a, design_b):
    """The images the script loads: A, B, and B cut short, B one word long, A with a wrong digest."""
    a, b = weight_image(design_a), weight_image(design_b)
    digest = a.copy()
    digest[DIGEST_WORDS] ^= 0x10
    return {"A": a, "B": b, "short": b[:-3], "long": np.append(b, b[-1]), "digest": digest}


#: Designs whose hardware.sum_bits is what models A and B need, narrower than any weights of the formats would.
CAPPED = {"stateful_columns"}

#: Designs built with weight memories folded as those deeper than a block RAM slice are (mvm_rom.RamShape), with
#: slices this deep.
SLICE_DEPTHS = {"layers2_head": 16}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def loadable(request, tmp_path_factory):
    """One design (model A) written once, with model B pruned to the same config and the script's data."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param in SLICE_DEPTHS:
            mp.setattr(mvm_rom, "SLICE_DEPTH", SLICE_DEPTHS[request.param])
        return _loadable(request.param, tmp_path_factory)


def _loadable(name, tmp_path_factory):
    config = parse_config(CONFIGS[name])
    # Model B: other weights, four times as large (still inside the weight format), the same structure.
    weights_b = {k: 4 * v for k, v in random_weights(parse_config({**CONFIGS[name],
                                                                    "model": {**CONFIGS[name]["model"],
                                                                              "seed": 7}})).items()}
    if name in CAPPED:
        plans = [p for d in (build_design(config), build_design(config, weights_b)) for p in d.layers]
        need = max(need_sum_bits(p, config.quant) for p in plans)
        assert need < min(format_sum_bits(p, config.quant) for p in plans)
        config = parse_config({**CONFIGS[name], "hardware": {**CONFIGS[name]["hardware"], "sum_bits": need}})
    design_a = build_design(config)
    design_b = build_design(config, weights_b)
    out = tmp_path_factory.mktemp(name)
    files = design_files(design_a)
    write_files(out / "rtl", files)
    meta = json.loads(files[f"{config.hardware.top}.json"])
    rng = np.random.default_rng(len(name))
    fmt, n_in = design_a.io_format, config.model.input_size
    data = {f"image_{name}": words for name, words in images(design_a, design_b).items()}
    whole = None
    for step, model in SCRIPT:
        k = next((step[key] for key in ("run", "during", "stalled") if key in step), None)
        if k is None:
            continue
        x = rng.integers(fmt.min_int, fmt.max_int + 1, (int(rng.integers(2, 6)), n_in))
        design = design_a if model == "A" else design_b
        if config.model.stateful:
            # The state carries from transfer to transfer, until a load or a reset clears it.
            # (A load during transfer k - 1 takes effect after it: count the step that sent k - 1.)
            cleared = k == 0 or any(("load" in s or "reset" in s or "reset_during" in s)
                                    for s, _ in SCRIPT[_index(k - 1):_index(k)])
            whole = x if cleared else np.concatenate([whole, x])
            y = run_golden(design, whole[None])[0][-len(x):]
        else:
            y = run_golden(design, x[None])[0]
        data[f"t{k}"], data[f"e{k}"] = x.reshape(-1), y.reshape(-1)
    np.savez(out / "data.npz", **data)
    (out / "script.json").write_text(json.dumps([step for step, _ in SCRIPT]))
    return out, meta


def _index(k):
    """The script index of the step that sends transfer ``k``."""
    return next(n for n, (step, _) in enumerate(SCRIPT) if k in (step.get("run"), step.get("during"),
                                                                   step.get("stalled")))


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_loaded_weights_match_golden(loadable, sim):
    out, meta = loadable
    run, failed = run_cocotb(sim=sim, sources=[out / "rtl" / s for s in meta["sources"]], toplevel=meta["top"],
                             test_module="lstm_hw.sim.tb_weights", build_dir=out / sim,
                             env={"LSTM_HW_META": str(out / "rtl" / f"{meta['top']}.json"),
                                  "LSTM_HW_SCRIPT": str(out / "script.json"),
                                  "LSTM_HW_DATA": str(out / "data.npz"),
                                  "LSTM_HW_RESULT": str(out / f"result_{sim}.json"), "LSTM_HW_SEED": "3"})
    assert (run, failed) == (1, 0), (out / sim / "test.log").read_text()[-3000:]
