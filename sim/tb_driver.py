"""cocotb bench: the generated ``<top>_driver.py``, unmodified, against the RTL through a simulated AXI DMA.

Environment variables (set by tests/sim/test_driver.py):

``LSTM_HW_DRIVER``  the driver file ``generate`` wrote
``LSTM_HW_X``       ``.npz`` of real inputs, each ``(T, I)`` or ``(N, T, I)``; the driver's ``predict`` runs on
                    each in turn, in one simulation without reset in between
``LSTM_HW_CALLS``   optional, JSON: the calls in order, each an input's name (``predict`` on it) or
                    ``"reset_state"``; by default ``predict`` on every input
``LSTM_HW_RESULT``  ``.npz`` written here: ``predict``'s result for each input, under the same names
``LSTM_HW_SEED``    the seed of the DMA's idle and stall cycles

The stand-in ``pynq`` (:mod:`lstm_hw.sim.dma`) replaces the real one in
``sys.modules`` before the driver is loaded, and an
:class:`~lstm_hw.sim.axis_checker.AxiStreamChecker` watches both stream ports.
"""

import importlib.util
import json
import os
import sys

import cocotb
import numpy as np
from cocotb.task import bridge

from lstm_hw.sim.bench import start_top
from lstm_hw.sim.dma import SimulatedDma, SimulatedGpio, pynq_module


def _load_driver(path: str):
    spec = importlib.util.spec_from_file_location("lstm_hw_driver_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cocotb.test()
async def driver_on_the_rtl(dut):
    rng = np.random.default_rng(int(os.environ.get("LSTM_HW_SEED", "1")))
    checkers = await start_top(dut)
    dma = SimulatedDma(dut, dut.aclk, rng)

    saved = sys.modules.get("pynq")
    driver = _load_driver(os.environ["LSTM_HW_DRIVER"])
    gpio = SimulatedGpio(dut.state_rst, dut.aclk) if driver.DESIGN["stateful"] else None
    sys.modules["pynq"] = pynq_module(dma, driver.DESIGN["dma"], gpio, driver.DESIGN["gpio"])
    try:
        acc = await bridge(driver.LstmAccelerator)("system.bit", timeout=600)
        inputs = dict(np.load(os.environ["LSTM_HW_X"]))
        calls = json.loads(os.environ.get("LSTM_HW_CALLS", "null")) or list(inputs)
        results = {}
        for call in calls:
            if call == "reset_state":
                await bridge(acc.reset_state)()
            else:
                results[call] = await bridge(acc.predict)(inputs[call])
    finally:
        if saved is None:
            sys.modules.pop("pynq", None)
        else:
            sys.modules["pynq"] = saved
    np.savez(os.environ["LSTM_HW_RESULT"], **results,
             transfers=np.array([dma.sendchannel.transfers, dma.recvchannel.transfers]),
             gpio_writes=gpio.writes if gpio is not None else 0)
    for checker in checkers:
        assert not checker.total, checker.report()
