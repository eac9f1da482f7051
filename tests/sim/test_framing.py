"""Framing on the RTL, under both simulators: batches of ``sequence_length`` steps in one transfer, transfers
that end inside a sequence or inside a timestep, and ``stateful`` streams sent in chunks with ``state_rst``
between sequences; every transfer's outputs bit-exact against the golden model of the sequences run whole."""

import json

import numpy as np
import pytest

from helpers import SIMULATORS
from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files, write_files
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import run_golden
from lstm_hw.sim.runner import run_cocotb

#: name: (config, transfers). A transfer is a list of sequences, each a number of steps, the last of
#: which may end a fraction of a step early (a framing error); stateful transfers list chunks instead,
#: "reset" before a chunk pulsing state_rst.
CASES = {
    # Batches of 3 steps: 4 in one transfer; a transfer of 2 (a short sequence); 2 and a short one;
    # a transfer ending inside a timestep (3 of 5 elements, lanes 2: the step is completed with zeros).
    "t3_head_lanes2": ({"model": {"input_size": 5, "hidden_size": 6, "num_layers": 1, "output_size": 3,
                                  "sequence_length": 3},
                        "sparsity": {"banks": 2}, "hardware": {"io_lanes": 2}},
                       [[3, 3, 3, 3], [2], [3, 3, 1], [3, 1.6], [3]]),
    # h_T only, two layers: each sequence's last h, a short sequence's too.
    "t4_last_only": ({"model": {"input_size": 3, "hidden_size": 5, "num_layers": 2, "return_sequences": False,
                                "sequence_length": 4}},
                     [[4, 4], [4, 1], [2.34], [4, 4, 4]]),
    # A sequence of 11 steps in chunks of 1, 3 and 7, then state_rst, another in chunks of 7, 3 and 1.
    "stateful": ({"model": {"input_size": 4, "hidden_size": 7, "num_layers": 2, "stateful": True},
                  "hardware": {"rows": 8}},
                 [[1], [3], [7], "reset", [7], [3], [1], [2]]),
    # Only each chunk's last output, through a head.
    "stateful_last_head": ({"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2,
                                      "return_sequences": False, "stateful": True}},
                           [[3], [1], [7], "reset", [1], [3], "reset", [2]]),
}


def frame(design, plan, rng):
    """The input transfers (element codes, flat), the state_rst flags and the expected outputs of ``plan``.

    The expectation comes from the golden model of whole sequences: without ``stateful`` each sequence
    (a step cut short zero-filled) on its own; with it, each run of chunks between resets as one
    sequence, cut at the chunks' ends.
    """
    fmt, n_in = design.io_format, design.config.model.input_size
    stateful = design.config.model.stateful
    every_step = design.config.model.return_sequences
    transfers, resets, expected = [], [], []
    pulse, whole = False, None                    # stateful: the sequence so far, since the last reset
    for item in plan:
        if item == "reset":
            pulse, whole = True, None
            continue
        codes, outputs = [], []
        for steps in item:
            full = int(np.ceil(steps))
            x = rng.integers(fmt.min_int, fmt.max_int + 1, (full, n_in))
            elements = full * n_in - round((full - steps) * n_in)
            x.reshape(-1)[elements:] = 0           # the hardware completes a step cut short with zeros
            codes += x.reshape(-1)[:elements].tolist()
            if stateful:
                whole = x if whole is None else np.concatenate([whole, x])
                out = run_golden(design, whole[None])[0]
                outputs.append(out[-full:] if every_step else out)
            else:
                outputs.append(run_golden(design, x[None])[0])
        transfers.append(codes)
        resets.append(pulse)
        expected.append(np.concatenate(outputs).reshape(-1).tolist())
        pulse = False
    return transfers, resets, expected


@pytest.fixture(scope="module", params=sorted(CASES))
def framed(request, tmp_path_factory):
    """One case's design written once: (its folder, metadata, transfers, resets, expected outputs)."""
    config, plan = CASES[request.param]
    design = build_design(parse_config(config))
    out = tmp_path_factory.mktemp(request.param)
    files = design_files(design)
    write_files(out / "rtl", files)
    meta = json.loads(files[f"{design.config.hardware.top}.json"])
    return out, meta, *frame(design, plan, np.random.default_rng(len(request.param)))


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_transfers_match_golden(framed, sim):
    out, meta, transfers, resets, expected = framed
    np.savez(out / f"in_{sim}.npz", codes=np.concatenate(transfers), lengths=[len(t) for t in transfers],
             resets=resets)
    np.savez(out / f"want_{sim}.npz", codes=np.concatenate(expected), lengths=[len(e) for e in expected])
    run, failed = run_cocotb(sim=sim, sources=[out / "rtl" / s for s in meta["sources"]], toplevel=meta["top"],
                             test_module="lstm_hw.sim.tb_transfers", build_dir=out / sim,
                             env={"LSTM_HW_META": str(out / "rtl" / f"{meta['top']}.json"),
                                  "LSTM_HW_TRANSFERS": str(out / f"in_{sim}.npz"),
                                  "LSTM_HW_EXPECTED": str(out / f"want_{sim}.npz"),
                                  "LSTM_HW_RESULT": str(out / f"result_{sim}.json"), "LSTM_HW_SEED": "5"})
    assert (run, failed) == (1, 0), (out / sim / "test.log").read_text()[-3000:]
