"""The organisation department's spot check of 扶贫日志 (indicators.md: "at least 30 % a year"), drawn reproducibly.

Pure standard library. A draw depends only on what the population holds, the rate and the seed, never on the
order the database returned the rows in, the machine or the Python version:

- the population is sorted by its key (for the work log: 干部编号, then the month, compared as text);
- `random.Random(seed)` (an integer seed) gives every item, in that order, one number from `random()`: the one
  part of the random module whose sequence Python promises to keep across versions;
- the k items with the smallest numbers are the sample, k = ceil(rate × N), returned in the population's order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Iterable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from itertools import pairwise
from typing import TypeVar

__all__ = ["MIN_RATE", "SamplingError", "draw", "parse_rate", "parse_seed", "sample_size"]

T = TypeVar("T")

# The seed document asks the organisation department to check at least 30 % of the logs each year.
MIN_RATE = Fraction(3, 10)


class SamplingError(ValueError):
    """A rate outside (0, 1], a seed that is not a whole number, or two population items with the same key."""


def parse_rate(text: str) -> Fraction:
    """A share in (0, 1], typed as 0.3, .3, 1 or 30%; exact (0.3 is 3/10, so ceil(0.3 × 10) is 3, not 4)."""
    cleaned = text.strip()
    percent = cleaned.endswith(("%", "％"))
    try:
        value = Decimal(cleaned[:-1].strip() if percent else cleaned)
    except InvalidOperation:
        raise SamplingError(f"rate {text!r} is not a number") from None
    if not value.is_finite():
        raise SamplingError(f"rate {text!r} is not a number")
    rate = Fraction(value) / (100 if percent else 1)
    check_rate(rate)
    return rate


def check_rate(rate: Fraction | Decimal | float | int) -> Fraction:
    exact = _exact(rate)
    if not 0 < exact <= 1:
        raise SamplingError(f"rate {float(exact):g} is outside (0, 1]")
    return exact


def parse_seed(text: str) -> int:
    """A seed is a whole number ≥ 0 (an integer seed seeds the same way in every Python version)."""
    cleaned = text.strip()
    if not cleaned.isdigit() or not cleaned.isascii():
        raise SamplingError(f"seed {text!r} is not a whole number ≥ 0")
    return int(cleaned)


def _exact(rate: Fraction | Decimal | float | int) -> Fraction:
    # a float's shortest repr is what the user meant: Fraction(0.3) would be 5404319552844595/18014398509481984
    return Fraction(repr(rate)) if isinstance(rate, float) else Fraction(rate)


def sample_size(rate: Fraction | Decimal | float | int, population: int) -> int:
    """ceil(rate × N), exactly; at least one item of a non-empty population."""
    if population < 0:
        raise ValueError("population size must be ≥ 0")
    return math.ceil(check_rate(rate) * population)


def draw(
    population: Iterable[T],
    rate: Fraction | Decimal | float | int,
    seed: int,
    key: Callable[[T], Hashable],
) -> list[T]:
    """ceil(rate × N) items of the population, the same for the same contents, rate and seed.

    `key` orders the population and must tell every item apart (otherwise the input order would decide).
    The sample comes back in key order.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SamplingError(f"seed {seed!r} is not a whole number")
    ordered = sorted(population, key=key)  # type: ignore[arg-type]
    keys = [key(item) for item in ordered]
    for before, after in pairwise(keys):
        if before == after:
            raise SamplingError(f"two population items share the key {before!r}")
    k = sample_size(rate, len(ordered))
    rng = random.Random(seed)
    tickets = [rng.random() for _ in ordered]
    chosen = sorted(range(len(ordered)), key=lambda i: (tickets[i], i))[:k]
    return [ordered[i] for i in sorted(chosen)]
