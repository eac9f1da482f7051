"""lstm-hw: bank-balanced sparse, approximate LSTM accelerators for Xilinx 7-series, with a bit-exact model.

The Python API (see README, "Python API")::

    import lstm_hw
    cfg = lstm_hw.load_config("lstm.toml")
    acc = lstm_hw.convert(model, cfg)
    y = acc.predict(x)
"""

__version__ = "0.1.0"

from .api import Accelerator, convert  # noqa: E402
from .compression.compress import compress  # noqa: E402
from .config.schema import Config, load_config  # noqa: E402
from .errors import (CheckFailed, ConfigError, DesignDoesNotFit, LstmHwError, SimulationMismatch,  # noqa: E402
                     ToolError, UsageError)
from .explore import Exploration, explore  # noqa: E402
from .model.pruning import NonConformingWeightsWarning, WeightsPrunedWarning, prune  # noqa: E402

__all__ = ["__version__", "load_config", "Config", "convert", "Accelerator", "compress", "prune", "explore",
           "Exploration",
           "LstmHwError", "ConfigError", "UsageError", "CheckFailed", "SimulationMismatch", "DesignDoesNotFit",
           "ToolError", "WeightsPrunedWarning", "NonConformingWeightsWarning"]
