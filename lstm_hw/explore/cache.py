"""The on-disk cache of point results: JSON and an ``.npz``'s bytes per key, never a pickle.

A result is ``<key>.json`` (the row and the config's TOML, or the error) and,
for a design, ``<key>.npz`` (its weights, kept as bytes and only ever copied).
The ``.npz`` is written first and the JSON last, each renamed into place, so
a result is either whole or absent: an interrupted sweep resumes from whatever
is complete. The default folder is ``$XDG_CACHE_HOME/lstm-hw/explore``
(``~/.cache/lstm-hw/explore``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

__all__ = ["Cache", "default_cache_dir"]

_KEY = re.compile(r"[0-9a-f]{64}\Z")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-hw" / "explore"


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cache:
    """Point results by key (a SHA-256 in hex) under ``root``."""

    def __init__(self, root: str | Path):
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def _paths(self, key: str) -> tuple[Path, Path]:
        if not _KEY.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self._root / f"{key}.json", self._root / f"{key}.npz"

    def get(self, key: str) -> dict | None:
        """The result stored under ``key`` (with ``weights_npz`` as bytes), or ``None`` when absent or unreadable."""
        meta, npz = self._paths(key)
        try:
            result = json.loads(meta.read_text("utf-8"))
            if "row" in result:
                result["weights_npz"] = npz.read_bytes()
        except (OSError, ValueError):
            return None
        return result

    def put(self, key: str, result: dict) -> None:
        """Store ``result`` (from :func:`lstm_hw.explore.points.evaluate_point`) under ``key``."""
        meta, npz = self._paths(key)
        self._root.mkdir(parents=True, exist_ok=True)
        if "weights_npz" in result:
            _write(npz, result["weights_npz"])
        _write(meta, json.dumps({k: v for k, v in result.items() if k != "weights_npz"}).encode())
