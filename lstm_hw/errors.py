"""Errors that the command line reports as one line and exit code 2."""


class LstmHwError(Exception):
    """Base of every user-facing error: its message is one line."""


class ConfigError(LstmHwError):
    """A configuration or weight file is invalid; names the key path and the reason."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UsageError(LstmHwError):
    """A command was asked for something it cannot do (missing tool, bad file, ...)."""
