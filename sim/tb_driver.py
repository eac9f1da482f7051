"""cocotb bench: the generated ``<top>_driver.py``, unmodified, against the RTL through simulated AXI DMAs.

Environment variables (set by tests/sim/test_driver.py):

``LSTM_HW_DRIVER``  the driver file ``generate`` wrote
``LSTM_HW_X``       ``.npz`` of real inputs, each ``(T, I)`` or ``(N, T, I)``; the driver's ``predict`` runs on
                    each in turn, in one simulation without reset in between
``LSTM_HW_CALLS``   optional, JSON: the calls in order, each an input's name (``predict`` on it),
                    ``"reset_state"``, or ``{"load_weights": FILE, "as": HOW}``: ``load_weights`` on the
                    file's bytes (HOW ``"bytes"``), its path (``"path"``) or, for an ``.npz``, a dict of its
                    arrays (``"dict"``); with ``"refused": true`` the call must raise, and its message is kept.
                    By default ``predict`` on every input
``LSTM_HW_RESULT``  ``.npz`` written here: ``predict``'s result for each input, under the same names; the
                    message of the n-th call's refusal as ``refused<n>``; the transfers of each channel
``LSTM_HW_SEED``    the seed of the DMAs' idle and stall cycles

The stand-in ``pynq`` (:mod:`lstm_hw.sim.dma`) replaces the real one in
``sys.modules`` before the driver is loaded, and an
:class:`~lstm_hw.sim.axis_checker.AxiStreamChecker` watches every stream port.
A ``"ram"`` design gets the weights DMA on ``s_axis_weights`` (idle cycles
of its own) and the GPIO that reads ``weights_ok``.
"""

import importlib.util
import json
import os
import sys

import cocotb
import numpy as np
from cocotb.task import bridge

from lstm_hw.sim.bench import start_top
from lstm_hw.sim.dma import SimulatedDma, SimulatedGpio, SimulatedInputGpio, pynq_module


def _load_driver(path: str):
    spec = importlib.util.spec_from_file_location("lstm_hw_driver_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights_argument(call: dict):
    """What ``load_weights`` gets for ``call``: the file's bytes, its path, or its arrays as a dict."""
    how, path = call["as"], call["load_weights"]
    if how == "bytes":
        with open(path, "rb") as f:
            return f.read()
    if how == "dict":
        with np.load(path) as arrays:
            return dict(arrays)
    assert how == "path", call
    return path


@cocotb.test()
async def driver_on_the_rtl(dut):
    seed = int(os.environ.get("LSTM_HW_SEED", "1"))
    rng = np.random.default_rng(seed)
    checkers = await start_top(dut)
    dma = SimulatedDma(dut, dut.aclk, rng)

    saved = sys.modules.get("pynq")
    driver = _load_driver(os.environ["LSTM_HW_DRIVER"])
    design = driver.DESIGN
    ips = {design["dma"]: dma}
    gpio = weights_dma = weights_gpio = None
    if design["stateful"]:
        ips[design["gpio"]] = gpio = SimulatedGpio(dut.state_rst, dut.aclk)
    if design["weights"]:
        weights_dma = SimulatedDma(dut, dut.aclk, np.random.default_rng(seed + 1), mm2s="s_axis_weights",
                                   s2mm=False)
        weights_gpio = SimulatedInputGpio(dut.weights_ok, dut.aclk)
        ips[design["weights"]["dma"]], ips[design["weights"]["gpio"]] = weights_dma, weights_gpio
    sys.modules["pynq"] = pynq_module(ips)
    try:
        acc = await bridge(driver.LstmAccelerator)("system.bit", timeout=600)
        inputs = dict(np.load(os.environ["LSTM_HW_X"]))
        calls = json.loads(os.environ.get("LSTM_HW_CALLS", "null")) or list(inputs)
        results = {}
        for n, call in enumerate(calls):
            if call == "reset_state":
                await bridge(acc.reset_state)()
            elif isinstance(call, dict):
                load = bridge(acc.load_weights)(_weights_argument(call))
                if call.get("refused"):
                    try:
                        await load
                    except (ValueError, RuntimeError) as e:
                        results[f"refused{n}"] = np.array(f"{type(e).__name__}: {e}")
                    else:
                        raise AssertionError(f"call {n}: load_weights took what it should refuse: {call}")
                else:
                    await load
            else:
                results[call] = await bridge(acc.predict)(inputs[call])
    finally:
        if saved is None:
            sys.modules.pop("pynq", None)
        else:
            sys.modules["pynq"] = saved
    np.savez(os.environ["LSTM_HW_RESULT"], **results,
             transfers=np.array([dma.sendchannel.transfers, dma.recvchannel.transfers]),
             gpio_writes=gpio.writes if gpio is not None else 0,
             weights_transfers=weights_dma.sendchannel.transfers if weights_dma is not None else 0,
             weights_words=weights_dma.sendchannel.beats if weights_dma is not None else 0,
             weights_ok_reads=weights_gpio.reads if weights_gpio is not None else 0)
    for checker in checkers:
        assert not checker.total, checker.report()
