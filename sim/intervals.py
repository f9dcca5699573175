"""Confidence intervals for success rates: what a handful of seeded episodes can and cannot say.

Wilson's score interval for one rate (good at 0 and at n successes, where the normal
approximation collapses), and Newcombe's hybrid score intervals for the difference of two
rates built from the two Wilson intervals: of independent rates (method 10 of his paper on
unpaired data) and of paired ones, two arms run on the same seeds (method 10 of his paper on
paired data, which credits the arms' correlation: seeds that are hard for both).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for ``successes`` of ``n``, as fractions."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends: rounding
    high = 1.0 if successes == n else min(1.0, centre + half)  # must not put p outside
    return low, high


def newcombe(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the difference p1 - p2 of two independent rates (Newcombe's method 10)."""
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson(s1, n1, z)
    l2, u2 = wilson(s2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)


def newcombe_paired(
    both: int, first_only: int, second_only: int, neither: int, z: float = Z95
) -> tuple[float, float]:
    """(low, high) of p1 - p2 for two arms on the same seeds, from the counts of seeds where
    both arms succeed, only the first, only the second, and neither (Newcombe's paired
    method 10: the Wilson limits of each rate, combined with their correlation phi)."""
    a, b, c, d = both, first_only, second_only, neither
    n = a + b + c + d
    if n <= 0 or min(a, b, c, d) < 0:
        raise ValueError(f"need counts >= 0 and some seeds, got {(a, b, c, d)}")
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    diff = p1 - p2
    dl2 = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du2 = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, diff - math.sqrt(max(dl2, 0.0))), min(1.0, diff + math.sqrt(max(du2, 0.0)))


def paired_counts(first: list[bool], second: list[bool]) -> tuple[int, int, int, int]:
    """(both, first only, second only, neither) over seeds, for ``newcombe_paired``."""
    if len(first) != len(second):
        raise ValueError(f"paired arms need the same seeds: {len(first)} vs {len(second)}")
    pairs = list(zip(map(bool, first), map(bool, second), strict=True))
    return (
        sum(x and y for x, y in pairs),
        sum(x and not y for x, y in pairs),
        sum(y and not x for x, y in pairs),
        sum(not x and not y for x, y in pairs),
    )


def rate_text(successes: int, n: int) -> str:
    """'90% [78, 96] (45/50)': the rate with its 95% Wilson interval, in percent."""
    low, high = wilson(successes, n)
    return f"{100 * successes / n:.0f}% [{100 * low:.0f}, {100 * high:.0f}] ({successes}/{n})"


def paired_text(both: int, first_only: int, second_only: int, neither: int) -> str:
    """'+30 points [+8, +49]': the paired difference of two arms on the same seeds, with its
    95% interval (``newcombe_paired``), in percentage points."""
    low, high = newcombe_paired(both, first_only, second_only, neither)
    diff = (first_only - second_only) / (both + first_only + second_only + neither)
    return f"{100 * diff:+.0f} points [{100 * low:+.0f}, {100 * high:+.0f}]"
