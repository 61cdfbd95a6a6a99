"""Paired measurements: A and B taken in turn, reported as medians and their ratio."""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One figure: samples of A and of B from the same run, and the target of A / B."""

    key: str
    label: str
    a: list[float]
    b: list[float]
    target: float | None
    unit: str = "ms"
    # What A and B are, for the table's reader and results.json.
    a_is: str = ""
    b_is: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def a_median(self) -> float:
        """Median of A."""
        return statistics.median(self.a)

    @property
    def b_median(self) -> float:
        """Median of B."""
        return statistics.median(self.b)

    @property
    def ratio(self) -> float:
        """A's median over B's."""
        return self.a_median / self.b_median

    @property
    def paired_ratio(self) -> float:
        """Median of A / B over adjacent pairs: drift cancels within each pair."""
        return statistics.median(a / b for a, b in zip(self.a, self.b, strict=True))

    @property
    def passed(self) -> bool | None:
        """Whether the ratio meets its target; None when there is no target."""
        return None if self.target is None else self.ratio <= self.target

    def summary(self) -> dict[str, Any]:
        """Medians, quartiles and counts, for results.json."""
        return {
            "label": self.label,
            "a": self.a_is,
            "b": self.b_is,
            "unit": self.unit,
            "a_median": self.a_median,
            "b_median": self.b_median,
            "a_quartiles": _quartiles(self.a),
            "b_quartiles": _quartiles(self.b),
            "samples": len(self.a),
            "a_minus_b": self.a_median - self.b_median,
            "ratio": self.ratio,
            "paired_ratio": self.paired_ratio,
            "target": self.target,
            "passed": self.passed,
            **self.extra,
        }


def _quartiles(samples: list[float]) -> list[float]:
    if len(samples) < 2:
        return [samples[0], samples[0]] if samples else []
    first, _, third = statistics.quantiles(samples, n=4)
    return [first, third]


def interleave(
    a: Callable[[], object],
    b: Callable[[], object],
    *,
    repetitions: int,
    warmup: int,
    seed: int = 2026,
) -> tuple[list[float], list[float]]:
    """Time ``a`` and ``b`` in pairs, each pair in a random order; ms each.

    Pairs share the drift of a noisy machine. The order is random, not ABBA,
    because work one side leaves behind (the async route's results, processed by
    the stack a few calls later) would land on the same side every time under a
    fixed pattern.
    """
    for _ in range(warmup):
        a()
        b()
    # Garbage from setup would otherwise be collected inside a timed call.
    gc.collect()

    order = random.Random(seed)
    times_a: list[float] = []
    times_b: list[float] = []
    pairs = ((a, times_a), (b, times_b))
    for _ in range(repetitions):
        for run, times in pairs if order.random() < 0.5 else pairs[::-1]:
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
    return times_a, times_b
