"""Step timing for the inversion loops: a progress-bar stand-in that records each step's end.

The inversion modules report progress through ``progress_bar`` (a tqdm factory); installing a
:class:`StepClock` in its place (:func:`install_step_clock`) records when every iteration
finished, so the steady per-step time (the median gap) can be told apart from the first
step's one-off cost (tracing, compilation)::

    clock = install_step_clock()
    csgm(generator, operator, y, iterations=20)
    median, first = clock.gaps()
"""

from __future__ import annotations

import statistics
import time
from typing import Tuple

import numpy as np

__all__ = ["StepClock", "install_step_clock"]


class StepClock:
    """Stands in for the progress bar and records when every iteration finished."""

    def __init__(self):
        self.stamps = []
        self.disable = True
        self.start = time.perf_counter()
        self._iterable = None

    def __call__(self, iterable=None, **kwargs):
        self.stamps = []
        self.start = time.perf_counter()
        self._iterable = iterable
        return self

    def __iter__(self):
        for item in self._iterable:
            yield item
            self.stamps.append(time.perf_counter())

    def update(self, count=1):
        self.stamps.append(time.perf_counter())

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass

    def gaps(self) -> Tuple[float, float]:
        """``(median gap, first gap)`` in seconds; the first includes tracing and set-up.

        Raises:
          ValueError: with fewer than two recorded steps.
        """
        times = [self.start] + self.stamps
        if len(times) < 3:
            raise ValueError("the clock recorded fewer than two steps")
        gaps = np.diff(times)
        return float(statistics.median(gaps[1:])), float(gaps[0])


def install_step_clock() -> StepClock:
    """Replaces the progress bar of the CSGM and IAGAN loops with a new :class:`StepClock`.

    Returns:
      The clock; it keeps the stamps of the latest loop.
    """
    from tfinverse.inversion import csgm, iagan

    clock = StepClock()
    csgm.progress_bar = clock
    iagan.progress_bar = clock
    return clock
