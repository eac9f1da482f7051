"""Logic-depth counting of lstm_hw.synth.yosys on small hand-built netlists (no Yosys needed)."""

from lstm_hw.synth import yosys as synth


def _cell(type_, inputs: dict, outputs: dict, parameters=None):
    return {"type": type_, "parameters": parameters or {},
            "port_directions": {**{p: "input" for p in inputs}, **{p: "output" for p in outputs}},
            "connections": {**inputs, **outputs}}


def _netlist(cells: dict, names: dict) -> synth.Netlist:
    data = {"modules": {"top": {"cells": cells, "ports": {},
                                "netnames": {n: {"bits": bits, "hide_name": 0} for n, bits in names.items()}}}}
    return synth.Netlist.from_json(data, "top")


def chain_netlist():
    """q -> LUT2 -> CARRY4 -> CARRY4 (through CI) -> d1 (3 levels); q -> LUT2 -> d2 (1 level)."""
    cells = {
        "ff_q": _cell("FDRE", {"C": [1], "D": [9], "CE": ["1"], "R": ["0"]}, {"Q": [2]}),
        "lut": _cell("LUT2", {"I0": [2], "I1": [2]}, {"O": [3]}),
        "c0": _cell("CARRY4", {"S": [3, "0", "0", "0"], "DI": ["0"] * 4, "CI": ["0"], "CYINIT": ["0"]},
                    {"O": [20, 21, 22, 23], "CO": [24, 25, 26, 4]}),
        "c1": _cell("CARRY4", {"S": ["0"] * 4, "DI": ["0"] * 4, "CI": [4], "CYINIT": ["0"]},
                    {"O": [5, 30, 31, 32], "CO": [33, 34, 35, 36]}),
        "ff_d1": _cell("FDRE", {"C": [1], "D": [5], "CE": ["1"], "R": ["0"]}, {"Q": [9]}),
        "ff_d2": _cell("FDRE", {"C": [1], "D": [3], "CE": ["1"], "R": ["0"]}, {"Q": [10]}),
    }
    return _netlist(cells, {"q": [2], "d1": [9], "d2": [10]})


def test_levels_count_luts_and_every_carry4():
    depth = synth.logic_depth(chain_netlist())
    assert depth["levels"] == 3
    assert depth["levels_path"]["cells"] == {"CARRY4": 2, "LUT2": 1}
    assert depth["levels_path"]["from"] == "FDRE q"
    # The chained CARRY4 costs less than the first, as the delay model says.
    m = synth.DELAY_MODEL
    assert depth["estimated_period_ns"] == round(m["overhead"] + m["LUT"] + m["CARRY4"] + m["CARRY4_chain"], 2)
    assert "deep_paths" not in depth


def test_deep_paths_lists_endpoints_over_the_limit():
    assert synth.logic_depth(chain_netlist(), over=2)["deep_paths"] == [
        {"levels": 3, "from": "FDRE q", "to": "FDRE.D of d1"}]
    paths = synth.logic_depth(chain_netlist(), over=0)["deep_paths"]
    assert [(p["levels"], p["to"]) for p in paths] == [(3, "FDRE.D of d1"), (1, "FDRE.D of d2")]
    assert synth.logic_depth(chain_netlist(), over=3)["deep_paths"] == []
