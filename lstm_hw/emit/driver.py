"""``<top>_driver.py``: the PYNQ driver (:mod:`lstm_hw.emit.pynq_driver`) with the design's formats written in."""

from __future__ import annotations

import pprint
from importlib import resources

__all__ = ["DESIGN_START", "DESIGN_END", "driver_design", "driver_text"]

DESIGN_START = "# -- design: written by lstm-hw generate from <top>.json --\n"
DESIGN_END = "# -- end of design --\n"


def driver_design(meta: dict) -> dict:
    """What the driver needs of the metadata: the stream formats, the framing and the DMA (its ``system``)."""
    if "system" not in meta:
        raise ValueError(f"{meta['top']} has no Zynq system (hardware.board): there is no DMA to drive")
    lanes = meta["input"]["lanes"]

    def port(p: dict) -> dict:
        return {"bits": p["bits"], "frac": p["frac"], "width": p["tdata_width"] // lanes,
                "elements": p["elements_per_timestep"]}

    return {"top": meta["top"], "generator": meta["generator"], "lanes": lanes,
            "input": port(meta["input"]), "output": port(meta["output"]),
            "return_sequences": meta["output"]["return_sequences"],
            "sequence_length": meta["framing"]["sequence_length"], "stateful": meta["framing"]["stateful"],
            "dma": meta["system"]["dma"], "gpio": meta["system"].get("gpio"),
            "max_transfer_bytes": meta["system"]["max_transfer_bytes"]}


def driver_text(meta: dict) -> str:
    """The driver's source for the design of ``meta``: the template with ``DESIGN`` filled in."""
    text = resources.files("lstm_hw.emit").joinpath("pynq_driver.py").read_text("utf-8")
    start, end = text.index(DESIGN_START), text.index(DESIGN_END)
    design = "DESIGN = " + pprint.pformat(driver_design(meta), sort_dicts=True, width=100) + "\n"
    return text[:start + len(DESIGN_START)] + design + text[end:]
