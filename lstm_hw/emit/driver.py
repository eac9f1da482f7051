"""``<top>_driver.py``: the PYNQ driver (:mod:`lstm_hw.emit.pynq_driver`) with the design's formats written in."""

from __future__ import annotations

import pprint
from importlib import resources

from ..config.schema import toml_mapping

__all__ = ["DESIGN_START", "DESIGN_END", "driver_design", "weights_design", "driver_text"]

DESIGN_START = "# -- design: written by lstm-hw generate from <top>.json --\n"
DESIGN_END = "# -- end of design --\n"


def driver_design(meta: dict) -> dict:
    """What the driver needs of the metadata: the stream formats, the framing, the DMA and GPIOs (its
    ``system``) and, on a ``"ram"`` design, the weight image it takes (:func:`weights_design`)."""
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
            "interleave": meta["interleave"],
            "dma": meta["system"]["dma"], "gpio": meta["system"].get("gpio"),
            "max_transfer_bytes": meta["system"]["max_transfer_bytes"], "weights": weights_design(meta)}


def weights_design(meta: dict) -> dict | None:
    """A ``"ram"`` design's weight port for the driver: the weights DMA and GPIO, the image's header (magic,
    digest, length in words), and the config, shaped like the TOML, to pack weights with; None for ROMs."""
    weights = meta["weights"]
    if weights["memory"] != "ram":
        return None
    image = weights["image"]
    return {"dma": meta["system"]["weights_dma"], "gpio": meta["system"]["weights_gpio"],
            "word_bits": weights["word_bits"], "magic": image["magic"], "digest": list(image["digest"]),
            "header_words": image["header_words"], "words": image["words"], "config": toml_mapping(meta["config"])}


def driver_text(meta: dict) -> str:
    """The driver's source for the design of ``meta``: the template with ``DESIGN`` filled in."""
    text = resources.files("lstm_hw.emit").joinpath("pynq_driver.py").read_text("utf-8")
    start, end = text.index(DESIGN_START), text.index(DESIGN_END)
    design = "DESIGN = " + pprint.pformat(driver_design(meta), sort_dicts=True, width=100) + "\n"
    return text[:start + len(DESIGN_START)] + design + text[end:]
