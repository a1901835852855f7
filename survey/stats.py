"""Rates with their honesty attached: n, a 95% Wilson interval, and a small-sample flag."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
SMALL_SAMPLE = 30


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int
    low: float | None
    high: float | None

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def small_sample(self) -> bool:
        return self.n < SMALL_SAMPLE

    def meets(self, target: float) -> bool | None:
        """None when there is nothing to judge (n = 0)."""
        return None if self.value is None else self.value >= target


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval; it stays inside [0, 1] and is sensible at 0 % and 100 %."""
    if n == 0:
        return None
    if not 0 <= hits <= n:
        raise ValueError(f"hits {hits} outside 0..{n}")
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def rate(hits: int, n: int) -> Rate:
    interval = wilson(hits, n)
    return Rate(hits, n, *(interval or (None, None)))
