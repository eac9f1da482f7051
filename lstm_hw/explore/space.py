"""The design space of ``lstm-hw explore``: SPACE.toml read, checked and sampled.

SPACE.toml maps config key paths to lists of values, one knob per key; the
grid is every combination of the knobs' values::

    "quant.weight.bits" = [6, 8]
    "sparsity.density" = [0.125, 0.25, 0.5]
    "activation.method" = ["pwl", "lut"]

A key path names one setting of the config schema (:mod:`lstm_hw.config.schema`):
``section.key``, or ``quant.<format>.bits`` / ``quant.<format>.frac`` for a
fixed-point format. Nested tables (``[quant.weight] bits = [6, 8]``) say the
same. The ``model`` section comes from the model and the base config, so it
is no knob. Every setting that is no knob comes from the base config.

A format's fraction bits are chosen as ``lstm-hw compress`` chooses them
(from the weights, and from the data for activation, preact, cell and output)
when ``quant.<format>.frac`` is ``"calibrate"``, or when the space sets the
format's bits and neither the space nor the base config states its frac.

A point is *valid* when its config passes the schema's checks (before the
calibrated fraction bits are chosen). Invalid combinations (``io_lanes``
above ``banks``, say) are skipped and listed; a knob value with which no
point of the grid is valid is an error naming that key.

**Sampling** (:func:`select_points`): a grid of at most ``budget`` points is
tried whole (its valid points); a larger one is put in a random order seeded
by ``seed`` (``numpy.random.default_rng(seed).permutation``) and its first
``budget`` valid points are tried, so a sample never repeats a point.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..compression.compress import split_bits_only
from ..config.schema import Config, QuantConfig, fit_config, read_toml
from ..errors import ConfigError, LstmHwError, UsageError
from ..numerics.fixed import Fixed

__all__ = ["Knob", "Space", "parse_space", "point_mapping", "check_point", "select_points", "CALIBRATE",
           "CALIBRATED_FORMATS", "MAX_GRID"]

#: The value of ``quant.<format>.frac`` that lets compress choose the fraction bits.
CALIBRATE = "calibrate"
#: The formats whose fraction bits compress chooses from the weights and data.
CALIBRATED_FORMATS = ("weight", "activation", "preact", "cell", "output")
#: The most grid points a space may have: every one is checked before sampling (about 70 us each).
MAX_GRID = 200_000


@dataclass(frozen=True)
class Knob:
    """One swept setting: its key path and its values, in the order SPACE.toml lists them."""

    path: str
    values: tuple

    @property
    def section(self) -> str:
        return self.path.split(".")[0]


@dataclass(frozen=True)
class Space:
    """The knobs of a sweep; point ``i`` of the grid has the last knob varying fastest."""

    knobs: tuple[Knob, ...]
    name: str = "space"      # the file, in messages

    @property
    def size(self) -> int:
        return math.prod(len(k.values) for k in self.knobs)

    @property
    def paths(self) -> list[str]:
        return [k.path for k in self.knobs]

    def point(self, index: int) -> dict:
        """Point ``index`` of the grid as ``{key path: value}``."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        out = {}
        for knob in reversed(self.knobs):
            index, j = divmod(index, len(knob.values))
            out[knob.path] = knob.values[j]
        return {k.path: out[k.path] for k in self.knobs}


#: The config's sections and their dataclasses.
_SECTIONS = {f.name: f.default_factory for f in fields(Config)}


def _format_fields() -> set[str]:
    return {f.name for f in fields(QuantConfig) if f.name != "rounding"}


def _check_path(path: str, where: str) -> None:
    parts = path.split(".")
    section = parts[0]
    if section not in _SECTIONS:
        raise ConfigError(f"{where}: {path}", f"unknown section {section!r} (expected one of: "
                                              f"{', '.join(s for s in _SECTIONS if s != 'model')})")
    if section == "model":
        raise ConfigError(f"{where}: {path}", "the model section comes from the model and the base config, "
                                              "not from the space")
    names = {f.name for f in fields(_SECTIONS[section])}
    if len(parts) < 2 or parts[1] not in names:
        raise ConfigError(f"{where}: {path}", f"unknown key (expected {section}.<one of: "
                                              f"{', '.join(sorted(names))}>)")
    is_format = section == "quant" and parts[1] in _format_fields()
    if is_format and (len(parts) != 3 or parts[2] not in ("bits", "frac")):
        raise ConfigError(f"{where}: {path}", f"a format is swept by its parts: quant.{parts[1]}.bits or "
                                              f"quant.{parts[1]}.frac")
    if not is_format and len(parts) != 2:
        raise ConfigError(f"{where}: {path}", f"{section}.{parts[1]} has no key {'.'.join(parts[2:])!r}")


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            if path in out:
                raise ConfigError(path, "given twice")
            out[path] = value
    return out


def parse_space(source, name: str | None = None) -> Space:
    """A :class:`Space` from a SPACE.toml path or a dict shaped like it; a one-line :class:`ConfigError` names
    the key."""
    if isinstance(source, Space):
        return source
    if isinstance(source, (str, Path)):
        name = name or str(source)
        raw = read_toml(source)
    elif isinstance(source, dict):
        name, raw = name or "space", source
    else:
        raise UsageError(f"space: a SPACE.toml path or a dict, not a {type(source).__name__}")
    knobs = []
    for path, values in _flatten(raw).items():
        _check_path(path, name)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{name}: {path}", "must be a non-empty array of values")
        seen = set()
        for v in values:
            if not isinstance(v, (bool, int, float, str)):
                raise ConfigError(f"{name}: {path}", f"values must be numbers, strings or booleans, got {v!r}")
            if v == CALIBRATE and not (path.endswith(".frac") and path.split(".")[1] in CALIBRATED_FORMATS):
                raise ConfigError(f"{name}: {path}", f"{CALIBRATE!r} is a value of quant.<format>.frac only, for "
                                                     f"the formats {', '.join(CALIBRATED_FORMATS)}")
            if (type(v), v) in seen:
                raise ConfigError(f"{name}: {path}", f"lists {v!r} twice")
            seen.add((type(v), v))
        knobs.append(Knob(path, tuple(values)))
    if not knobs:
        raise ConfigError(name, "no knobs: map config key paths to lists of values, e.g. "
                                '"sparsity.density" = [0.25, 0.5]')
    return Space(tuple(knobs), name)


def point_mapping(base: dict, point: dict) -> dict:
    """The config of ``point`` (``{key path: value}``) over ``base`` (shaped like the TOML), shaped like the TOML.

    A format whose frac is :data:`CALIBRATE`, or whose bits the point sets while
    neither it nor ``base`` states its frac, is left as ``{ bits = N }`` for
    compress to choose the frac; a frac without bits takes the default's bits.
    """
    raw = copy.deepcopy(base)
    touched = set()
    for path, value in point.items():
        parts = path.split(".")
        section = raw.setdefault(parts[0], {})
        if len(parts) == 3:
            fmt = section.get(parts[1])
            fmt = dict(fmt) if isinstance(fmt, dict) else {}
            fmt[parts[2]] = value
            section[parts[1]] = fmt
            touched.add(parts[1])
        else:
            section[parts[1]] = value
    for key in touched:
        fmt = raw["quant"][key]
        if fmt.get("frac") == CALIBRATE:
            del fmt["frac"]
        if "bits" not in fmt:
            default = getattr(QuantConfig(), key)
            fmt["bits"] = default.bits if isinstance(default, Fixed) else QuantConfig().activation.bits
    return raw


def check_point(raw: dict, sizes: dict) -> ConfigError | None:
    """Why the config ``raw`` (from :func:`point_mapping`) is invalid for a model of ``sizes``, or ``None``."""
    raw = copy.deepcopy(raw)
    try:
        split_bits_only(raw)
        fit_config(raw, sizes)
    except ConfigError as e:
        return e
    except LstmHwError as e:  # pragma: no cover - the schema raises ConfigError
        return ConfigError("config", str(e))
    return None


@dataclass(frozen=True)
class Selection:
    """The points a sweep tries (grid indices in grid order) and the invalid ones met on the way."""

    indices: tuple[int, ...]
    skipped: tuple[tuple[int, str], ...]   # (grid index, reason)
    grid_size: int
    sampled: bool


def select_points(space: Space, base: dict, sizes: dict, budget: int | None = None, seed: int = 0) -> Selection:
    """The points to try under ``budget`` (see the module docstring for the rule), all checked.

    A knob value with which no point of the grid is valid is a :class:`ConfigError` naming its key.
    """
    total = space.size
    if total > MAX_GRID:
        raise UsageError(f"the space has {total} points, more than {MAX_GRID}: list fewer values")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise UsageError(f"budget must be an integer >= 1, got {budget!r}")
    reasons: list[ConfigError | None] = [check_point(point_mapping(base, space.point(i)), sizes)
                                         for i in range(total)]
    valid = np.array([r is None for r in reasons])
    for n, knob in enumerate(space.knobs):
        radix = math.prod(len(k.values) for k in space.knobs[n + 1:])
        which = (np.arange(total) // radix) % len(knob.values)   # the index of this knob's value in each point
        for j, value in enumerate(knob.values):
            if not valid[which == j].any():
                first = reasons[int(np.flatnonzero(which == j)[0])]
                raise ConfigError(f"{space.name}: {knob.path}", f"{value!r} makes no valid point ({first})")
    sampled = budget is not None and total > budget
    order = np.random.default_rng(seed).permutation(total) if sampled else np.arange(total)
    chosen, skipped = [], []
    for i in map(int, order):
        if budget is not None and len(chosen) == budget:
            break
        if reasons[i] is None:
            chosen.append(i)
        else:
            skipped.append((i, str(reasons[i])))
    return Selection(tuple(sorted(chosen)), tuple(sorted(skipped)), total, sampled)
