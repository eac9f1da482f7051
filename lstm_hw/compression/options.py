"""The fine-tuning options of ``compress`` (and a later ``explore``): defaults and checks, without PyTorch.

The defaults are measured in docs/finetuning.md (``python benchmarks/finetune.py``).
"""

from __future__ import annotations

from ..errors import UsageError

__all__ = ["FINETUNE_DEFAULTS", "LR_SCHEDULES", "check_finetune_options"]

LR_SCHEDULES = ("plateau", "constant", "cosine")

#: ``epochs`` is the cap; training stops earlier once validation stops improving for ``patience`` epochs.
#: On the digits models (docs/finetuning.md) lr 3e-3 recovers the small ones where 1e-3 stalls, a 20-epoch ramp
#: loses less than a 10-epoch one, and a patience of 20 outlasts the held-out accuracy's noise; QAT lands nearer
#: the float model in the golden one. 200 epochs are ~20 s for LSTM(8 -> 32) on 1,300 sequences; most runs stop
#: well before.
FINETUNE_DEFAULTS = {"epochs": 200, "lr": 3e-3, "batch_size": 32, "qat": True, "val_fraction": 0.1,
                     "patience": 20, "ramp_epochs": 20, "lr_schedule": "plateau"}


def check_finetune_options(*, epochs, lr, batch_size, val_fraction, patience, ramp_epochs, lr_schedule) -> None:
    """One :class:`UsageError` line naming the first option out of its range."""
    def number(v, integer=False):
        return not isinstance(v, bool) and isinstance(v, int if integer else (int, float))

    checks = [("epochs", epochs, number(epochs, True) and epochs >= 0, "an integer >= 0"),
              ("lr", lr, number(lr) and lr > 0, "a number > 0"),
              ("batch_size", batch_size, number(batch_size, True) and batch_size >= 1, "an integer >= 1"),
              ("val_fraction", val_fraction, number(val_fraction) and 0 <= val_fraction <= 0.5,
               "a number in [0, 0.5]"),
              ("patience", patience, number(patience, True) and patience >= 1, "an integer >= 1"),
              ("ramp_epochs", ramp_epochs, number(ramp_epochs, True) and ramp_epochs >= 1, "an integer >= 1"),
              ("lr_schedule", lr_schedule, lr_schedule in LR_SCHEDULES, f"one of {', '.join(LR_SCHEDULES)}")]
    for name, value, ok, want in checks:
        if not ok:
            raise UsageError(f"{name} must be {want}, got {value!r}")
