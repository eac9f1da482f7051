"""Errors that the command line reports as one line, each class with its exit code.

====  ==========================================================================
code  meaning
====  ==========================================================================
0     success
1     a check failed: the RTL differs from the golden model, the design does
      not fit its part (:class:`CheckFailed`)
2     bad input: a config, weights, model or data file, an option
      (:class:`ConfigError`, :class:`UsageError`, any other :class:`LstmHwError`)
3     a tool failed or is missing: Yosys, Verilator, Icarus (:class:`ToolError`)
====  ==========================================================================
"""

__all__ = ["LstmHwError", "ConfigError", "UsageError", "CheckFailed", "SimulationMismatch", "DesignDoesNotFit",
           "ToolError"]


class LstmHwError(Exception):
    """Base of every user-facing error: its message is one line."""

    exit_code = 2


class ConfigError(LstmHwError):
    """A configuration or weight file is invalid; names the key path and the reason."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UsageError(LstmHwError):
    """A command was asked for something it cannot do (bad file, bad option, ...)."""


class CheckFailed(LstmHwError):
    """A check the user asked for failed."""

    exit_code = 1


class SimulationMismatch(CheckFailed):
    """The generated Verilog's outputs differ from the golden model's (or its ``tlast`` is misplaced)."""


class DesignDoesNotFit(CheckFailed):
    """The synthesized design needs more of a resource than its part has."""


class ToolError(UsageError):
    """An external tool (Yosys, Verilator, Icarus) is missing or failed."""

    exit_code = 3

