"""Figures drawn in a Python process of their own while the job's process goes on.

A report's figures are a second of matplotlib in the process that also holds the
in-process cluster, the Dask performance report and the job, under one GIL.
:class:`DrawingProcess` starts a child Python as the command starts (it imports
numpy and matplotlib, half a second on a core the command's own imports leave
idle); :meth:`DrawingProcess.draw` sends it :class:`Request` s and returns their
PNG bytes, and the caller's thread waits without holding the GIL.

The child reads requests on its stdin until it closes: however the job ends,
SIGKILL included, its end of the pipe closes and the child exits. It runs in a
process group of its own, so a Ctrl-C at the terminal reaches the job alone,
which then closes it. Wherever the child cannot draw (it did not start, it
died, a figure failed there, it took too long), the figures are drawn here
instead: a job never loses a figure to the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pickle
import signal
import subprocess
import sys
import threading
import traceback
import warnings

from . import _charts, _curves, _digits
from ._canvas import png_bytes

log = logging.getLogger(__name__)

#: The figures a request may name: the functions the figure modules define, by name.
FIGURES = {
    name: function
    for module in (_charts, _curves, _digits)
    for name, function in vars(module).items()
    if callable(function) and not name.startswith("_") and function.__module__ == module.__name__
}
#: Seconds one call of :meth:`DrawingProcess.draw` waits for the child (a report's eight
#: figures take about one) before it stops the child and draws here.
TIMEOUT_S = 120.0
_SERVE = "from mnistdist.drawing._process import serve; serve()"


@dataclasses.dataclass(frozen=True)
class Request:
    """A figure to draw: one of this package's figure functions by name, and its arguments."""

    figure: str
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.figure not in FIGURES:
            raise ValueError(f"no figure {self.figure!r}: expected one of {sorted(FIGURES)}")

    def draw(self) -> bytes:
        return png_bytes(FIGURES[self.figure](*self.args, **self.kwargs))


def draw_here(requests: dict[str, Request]) -> dict[str, bytes]:
    """Each request drawn in this process: its PNG bytes, by the same key."""
    return {key: request.draw() for key, request in requests.items()}


class DrawingProcess:
    """A child Python that draws figures; :meth:`draw` falls back to this process.

    Not started, or once closed, it draws here. :meth:`start` starts the child;
    :meth:`close` (or leaving a ``with`` block) ends it.
    """

    def __init__(self):
        self._child: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one request on the pipe at a time

    def start(self) -> DrawingProcess:
        """Start the child; where it cannot start, figures are drawn here (and logged)."""
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-c", _SERVE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                process_group=0,  # the terminal's Ctrl-C is the job's to handle
            )
        except OSError as exc:
            log.warning("figures: no drawing process (%s); drawn in the job's process", exc)
        return self

    def draw(self, requests: dict[str, Request]) -> dict[str, bytes]:
        """The PNG bytes of each request, by its key: drawn by the child where it can."""
        with self._lock:
            if self._child is not None:
                try:
                    pngs, caught = self._exchange(self._child, requests)
                except Exception as exc:  # whatever the child did, the figures are drawn here
                    log.warning("figures: the drawing process failed (%s); drawn here", exc)
                    self._stop()
                else:
                    for message in caught:
                        log.warning("figures: %s", message)
                    return pngs
        return draw_here(requests)

    def _exchange(self, child: subprocess.Popen, requests: dict[str, Request]):
        # A child that hangs is killed: its pipe then ends and the read below fails.
        timer = threading.Timer(TIMEOUT_S, child.kill)
        timer.daemon = True
        timer.start()
        try:
            pickle.dump(requests, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.flush()
            status, payload = pickle.load(child.stdout)
        finally:
            timer.cancel()
        if status != "ok":
            raise RuntimeError(payload.strip().splitlines()[-1])
        return payload

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        # It writes no file: stopping it mid-start or mid-figure loses nothing, and a job
        # that ends early (a refused option) does not wait for its imports.
        child.terminate()
        for stream in (child.stdin, child.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def close(self) -> None:
        """End the child; later figures are drawn here."""
        with self._lock:
            self._stop()

    def __enter__(self) -> DrawingProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warm_up() -> None:
    """Import matplotlib and draw one text: its fonts are then loaded before a request comes."""
    from ._canvas import new_figure

    fig, ax = new_figure(figsize=(1, 1))
    ax.set_title("0")
    png_bytes(fig)


def serve() -> None:
    """The child's loop: a pickled ``{key: Request}`` in, ``("ok", (pngs, warnings))`` or
    ``("error", traceback)`` out, until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    _warm_up()
    while True:
        try:
            requests = pickle.load(stdin)
        except EOFError:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                reply = ("ok", (draw_here(requests), [str(w.message) for w in caught]))
            except Exception:
                reply = ("error", traceback.format_exc())
        try:
            pickle.dump(reply, stdout, protocol=pickle.HIGHEST_PROTOCOL)
            stdout.flush()
        except BrokenPipeError:
            return
