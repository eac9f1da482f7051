"""lstm-hw: bank-balanced sparse, approximate LSTM accelerators for Xilinx 7-series, with a bit-exact model."""

__version__ = "0.1.0"

from .errors import ConfigError, LstmHwError, UsageError  # noqa: E402
from .pruning import NonConformingWeightsWarning, WeightsPrunedWarning, prune  # noqa: E402

__all__ = ["__version__", "prune", "LstmHwError", "ConfigError", "UsageError", "WeightsPrunedWarning",
           "NonConformingWeightsWarning"]
