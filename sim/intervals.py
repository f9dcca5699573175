"""Confidence intervals for success rates: what a handful of seeded episodes can and cannot say.

Wilson's score interval for one rate (good at 0 and at n successes, where the normal
approximation collapses), and Newcombe's hybrid score interval for the difference of two
independent rates (method 10 of Newcombe 1998), built from the two Wilson intervals.
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


def rate_text(successes: int, n: int) -> str:
    """'90% [78, 96] (45/50)': the rate with its 95% Wilson interval, in percent."""
    low, high = wilson(successes, n)
    return f"{100 * successes / n:.0f}% [{100 * low:.0f}, {100 * high:.0f}] ({successes}/{n})"
