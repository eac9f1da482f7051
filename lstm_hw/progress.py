"""Progress of long work on stderr: a tqdm bar on a terminal, one line per stage elsewhere, nothing when quiet.

Library functions take a ``progress`` argument (a :class:`Progress`, or
``None`` for silence) and call :meth:`Progress.stage` as each stage starts
and :meth:`Progress.steps` around work counted in steps (epochs, simulated
timesteps). The command line makes one per run with :func:`for_cli`.

Off a terminal (a pipe, a CI log) every stage is one line,
``[  12.3 s] synthesize: ABC9``, and counted work gives a line when it starts
and one when it ends, so logs stay short and greppable.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Progress", "for_cli", "stage", "steps", "follow"]


class Progress:
    """Stages and counted steps of one run, on ``stream`` (default: stderr).

    ``bars`` draws tqdm bars (default: when ``stream`` is a terminal);
    ``quiet`` shows nothing at all. Nothing shows before the run is ``delay``
    seconds old: a stage that began earlier is shown then, if it still runs,
    so a quick run (or an early one-line error) prints no progress at all.
    Call :meth:`close` when the run ends.
    """

    def __init__(self, *, quiet: bool = False, stream=None, bars: bool | None = None, delay: float = 0.0):
        self._stream = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._bars = (not quiet and _isatty(self._stream)) if bars is None else bars
        self._delay = delay
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._pending: tuple[str, float] | None = None   # a stage not shown yet, with its start
        self._timer: threading.Timer | None = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def stage(self, name: str) -> None:
        """A stage starts: one line with the time since the run began."""
        if self._quiet:
            return
        with self._lock:
            self._pending = (name, self.elapsed)
            if self._pending[1] >= self._delay:
                self._show_pending()
            elif self._timer is None:
                self._timer = threading.Timer(self._delay - self._pending[1], self._late)
                self._timer.daemon = True
                self._timer.start()

    def _late(self) -> None:
        with self._lock:
            self._timer = None
            self._show_pending()

    def _show_pending(self) -> None:
        if self._pending is None:
            return
        name, start = self._pending
        self._pending = None
        line = f"[{start:6.1f} s] {name}"
        if self._bars:
            from tqdm import tqdm
            tqdm.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        """The run ended: a stage not shown yet never will be."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending = None

    @contextmanager
    def steps(self, name: str, total: int, unit: str = "step"):
        """Work of ``total`` steps; yields ``update(done)``, to call with the steps done so far.

        A bar with rate and ETA on a terminal; otherwise a line at the start and
        one at the end with the time taken.
        """
        if self._quiet:
            yield lambda done: None
            return
        if not self._bars:
            start = self.elapsed
            self.stage(f"{name}: {total} {unit}s")
            last = [0]
            yield lambda done: last.__setitem__(0, done)
            self.stage(f"{name}: {last[0]} of {total} {unit}s in {self.elapsed - start:.1f} s")
            return
        from tqdm import tqdm
        with tqdm(total=total, desc=name, unit=unit, file=self._stream, leave=False, dynamic_ncols=True,
                  delay=max(0.0, self._delay - self.elapsed)) as bar:
            def update(done: int) -> None:
                bar.update(max(0, min(done, total) - bar.n))
            yield update
        self.stage(f"{name}: {bar.n} of {total} {unit}s")


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


#: Seconds before the command line shows any progress: quick runs and early errors stay quiet.
CLI_DELAY = 1.0


def for_cli(quiet: bool) -> Progress:
    """The command line's progress: on stderr, bars on a terminal, nothing with ``--quiet``, nothing in the
    first :data:`CLI_DELAY` seconds; closed when the command ends."""
    import click
    progress = Progress(quiet=quiet, delay=CLI_DELAY)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(progress.close)
    return progress


def stage(progress: Progress | None, name: str) -> None:
    """:meth:`Progress.stage`, or nothing without a progress."""
    if progress is not None:
        progress.stage(name)


@contextmanager
def steps(progress: Progress | None, name: str, total: int, unit: str = "step"):
    """:meth:`Progress.steps`, or a no-op ``update`` without a progress."""
    if progress is None:
        yield lambda done: None
    else:
        with progress.steps(name, total, unit) as update:
            yield update


@contextmanager
def follow(path, on_line, interval: float = 0.5):
    """While the block runs, call ``on_line`` with each complete line a tool appends to the file ``path``.

    A thread polls the file (which need not exist yet) every ``interval``
    seconds, and once more when the block ends, so no line is missed. With
    ``on_line`` None nothing is read.
    """
    if on_line is None:
        yield
        return
    stop = threading.Event()
    path = Path(path)

    def run():
        offset, partial = 0, ""
        while True:
            stopping = stop.wait(interval)
            try:
                with open(path, errors="replace") as f:
                    f.seek(offset)
                    text = f.read()
                    offset = f.tell()
            except OSError:
                text = ""
            lines = (partial + text).split("\n")
            partial = lines.pop()
            for line in lines:
                on_line(line)
            if stopping:
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
