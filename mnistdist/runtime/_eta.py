"""How long a piece of work has left: its planned steps, their relative costs, and the rate its
finished steps ran at.

A search plans its steps before it starts (:meth:`Eta.plan`): each has a
*kind* (``neighbors``, ``scores``) and a cost in units of that kind's work
(distance terms, votes). As steps finish, :class:`Eta` fits each kind's
time to its units, a line through the finished steps (a fixed cost a step,
which dominates small steps, plus a cost a unit); the time left is then the
current step's remainder plus the planned steps' times by that line (a kind
not measured yet runs at the others' average rate). Within a step the remainder comes from the
fraction of its tasks done, as the scheduler counts them: time so far x
(1 - done) / done. Like the scaling forecast (:mod:`._forecast`), it counts
only what was measured on this cluster; unlike it, it is known while the
work runs.

:func:`estimating` makes an :class:`Eta` the current one in its block (a
context variable: threads of their own, :class:`Background` work, have
none), and the progress lines of :mod:`._compute` say its elapsed and
remaining time.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
import time
from collections.abc import Iterator


@dataclasses.dataclass
class _Step:
    kind: str
    units: float
    seconds: float | None = None  # once finished
    skipped: bool = False


class Eta:
    """The planned steps of a piece of work, timed as they run.

    Steps are named; :meth:`step` times one (a step never planned is timed
    but adds no cost), :meth:`skip` drops one that will not run (its results
    were found elsewhere). Thread-safe: progress bars read it from their own
    threads.
    """

    def __init__(self) -> None:
        self._steps: dict[str, _Step] = {}
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._current: tuple[str, float] | None = None  # name, start

    def plan(self, name: str, kind: str, units: float) -> None:
        """Add a step to come: ``units`` of ``kind``'s work (any positive scale, kept per kind)."""
        with self._lock:
            self._steps[name] = _Step(kind, max(float(units), 0.0))

    def drop(self, prefix: str) -> None:
        """Forget the planned steps, not yet run, whose names start with ``prefix``: a plan
        made more exact replaces its estimate."""
        with self._lock:
            running = self._current[0] if self._current else None
            for name in [n for n in self._steps if n.startswith(prefix) and n != running]:
                if self._steps[name].seconds is None:
                    del self._steps[name]

    def skip(self, name: str) -> None:
        """A planned step that will not run."""
        with self._lock:
            if name in self._steps:
                self._steps[name].skipped = True

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as the step ``name``."""
        start = time.perf_counter()
        with self._lock:
            self._current = (name, start)
        try:
            yield
        finally:
            with self._lock:
                self._current = None
                if name in self._steps:
                    self._steps[name].seconds = time.perf_counter() - start

    def elapsed(self) -> float:
        """Seconds since the work began."""
        return time.perf_counter() - self._t0

    def _kind_line(self, kind: str):
        """``units -> seconds`` by a line through ``kind``'s finished steps (a fixed cost a
        step, and a cost a unit), None past :data:`EXTRAPOLATION` times the largest of
        them; None where none has finished."""
        same = [
            s
            for s in self._steps.values()
            if s.kind == kind and s.seconds is not None and not s.skipped and s.units > 0
        ]
        if not same:
            return None
        line = _line([s.units for s in same], [s.seconds for s in same])
        return _within(line, max(s.units for s in same))

    def _cost(self, kind: str, current, in_step: float, fraction):
        """``units -> seconds`` for ``kind``: its line (:meth:`_kind_line`), else the running
        step's rate, else every finished step's, else the running step's; None before
        anything is measured."""
        line = self._kind_line(kind)
        if line is not None:
            return line
        running = current is not None and bool(fraction) and current.units > 0
        if running and current.kind == kind:
            rate = in_step / (fraction * current.units)
            return _within(lambda units: units * rate, current.units)
        done = [s for s in self._steps.values() if s.seconds is not None and not s.skipped]
        measured = [s for s in done if s.units > 0]
        if measured:
            rate = sum(s.seconds for s in measured) / sum(s.units for s in measured)
            return lambda units: units * rate
        if running:  # nothing finished yet: the running step's pace stands for every kind
            rate = in_step / (fraction * current.units)
            return lambda units: units * rate
        return None

    def _line_left(self, current: _Step, in_step: float) -> float:
        """What the running step has left by its kind's line (0 where there is none): a
        step's tasks are not alike, and heavy ones that come last (a search's chains, after
        its many quick copies) put the share of tasks done far ahead of the work done."""
        line = self._kind_line(current.kind)
        seconds = None if line is None else line(current.units)
        return 0.0 if seconds is None else max(0.0, seconds - in_step)

    def remaining(self, fraction: float | None = None) -> float | None:
        """Seconds the work has left, or None before anything could be measured.

        ``fraction`` is the share of the running step's tasks done (0 to 1), where known.
        """
        with self._lock:
            now = time.perf_counter()
            name, start = self._current if self._current else (None, now)
            current = self._steps.get(name) if name is not None else None
            in_step = now - start
            if current is not None and fraction == 1:
                # Its tasks all done, it prices the steps to come as the finished step it is
                # about to be: else the line that says it is done is one step behind.
                current.seconds = in_step
                try:
                    return self._planned_left(name, current, in_step, fraction)
                finally:
                    current.seconds = None
            left = 0.0
            if name is not None and fraction is not None and 0 < fraction <= 1:
                left = in_step * (1 - fraction) / fraction
                if current is not None:
                    left = max(left, self._line_left(current, in_step))
            elif current is not None:
                cost = self._cost(current.kind, current, in_step, None)
                seconds = None if cost is None else cost(current.units)
                if seconds is None:
                    return None
                left = max(0.0, seconds - in_step)
            planned = self._planned_left(name, current, in_step, fraction)
            return None if planned is None else left + planned

    def _planned_left(self, name, current, in_step: float, fraction) -> float | None:
        """The planned steps' seconds, but the running one's; None where one cannot be priced."""
        left = 0.0
        for other_name, step in self._steps.items():
            if step.skipped or step.seconds is not None or other_name == name:
                continue
            cost = self._cost(step.kind, current, in_step, fraction)
            seconds = None if cost is None else cost(step.units)
            if seconds is None:
                return None
            left += seconds
        return left


#: How far past the largest step of a kind measured its line may price another: a line fitted on
#: small steps, which their fixed costs rule, says little of one a hundred times larger (from
#: halving's first round, its last round of a two-minute search was priced at hours).
EXTRAPOLATION = 100


def _within(cost, largest: float):
    """``cost`` for steps up to :data:`EXTRAPOLATION` x ``largest`` units, None for larger."""
    return lambda units: cost(units) if units <= EXTRAPOLATION * largest else None


def _line(units: list[float], seconds: list[float]):
    """The least-squares line ``seconds = fixed + rate * units``, neither part negative."""
    n, mean_u, mean_s = len(units), sum(units) / len(units), sum(seconds) / len(seconds)
    spread = sum((u - mean_u) ** 2 for u in units)
    rate = sum(seconds) / sum(units)
    fixed = 0.0
    if n > 1 and spread > 0:
        slope = sum((u - mean_u) * (s - mean_s) for u, s in zip(units, seconds, strict=True))
        slope /= spread
        if slope >= 0 and mean_s - slope * mean_u >= 0:
            rate, fixed = slope, mean_s - slope * mean_u
    return lambda amount: fixed + rate * amount


_current: contextvars.ContextVar[Eta | None] = contextvars.ContextVar("mnistdist_eta", default=None)


@contextlib.contextmanager
def estimating(eta: Eta | None = None) -> Iterator[Eta]:
    """Make ``eta`` (a new :class:`Eta` by default) the current one in the block.

    Inside another's block, the outer one stays current and is yielded: a
    search run by another (halving's rounds) adds its steps to the outer plan.
    """
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    eta = Eta() if eta is None else eta
    token = _current.set(eta)
    try:
        yield eta
    finally:
        _current.reset(token)


def current_eta() -> Eta | None:
    """The :class:`Eta` of the block this runs in, if any."""
    return _current.get()


def duration(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), as a person reads a time left."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
