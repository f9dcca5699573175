"""Wilson and Newcombe intervals against values published with the methods."""

import numpy as np
import pytest

from sim.intervals import (
    newcombe,
    newcombe_paired,
    paired_counts,
    paired_text,
    rate_text,
    wilson,
)


@pytest.mark.parametrize(
    "s,n,low,high",
    [
        # Newcombe (1998), Table I: 81/263, 15/148, 0/20, 1/29 with the Wilson score method
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombes_table(s, n, low, high):
    got = wilson(s, n)
    assert got == pytest.approx((low, high), abs=6e-4)


def test_newcombe_difference_matches_the_paper():
    # Newcombe (1998b), Table II example (a): 56/70 against 48/80 -> 0.0524 to 0.3339
    assert newcombe(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=6e-4)
    # the interval of equal rates contains 0; a lopsided pair does not
    low, high = newcombe(10, 20, 10, 20)
    assert low < 0 < high
    assert newcombe(50, 50, 10, 50)[0] > 0


def test_rate_text_and_bad_counts():
    assert rate_text(45, 50) == "90% [79, 96] (45/50)"
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson(3, 2)


def test_every_wilson_interval_holds_its_own_rate():
    """At 0 and n successes rounding must not leave p outside its interval (error bars of a
    negative length stop a plot)."""
    for n in range(1, 120):
        for k in range(n + 1):
            low, high = wilson(k, n)
            assert low <= k / n <= high, (k, n, low, high)
    assert wilson(0, 50)[0] == 0.0 and wilson(50, 50)[1] == 1.0


def test_paired_interval_reduces_to_the_unpaired_one_without_correlation():
    # a*d == b*c: no correlation between the arms, so pairing tells nothing more
    assert newcombe_paired(10, 10, 15, 15) == pytest.approx(newcombe(20, 50, 25, 50), abs=1e-12)


def test_paired_interval_narrows_when_the_arms_agree_on_hard_seeds():
    first = [True] * 40 + [False] * 10
    second = [True] * 36 + [False] * 14  # fails 4 more seeds, and every seed the first fails
    counts = paired_counts(first, second)
    assert counts == (36, 4, 0, 10)
    low, high = newcombe_paired(*counts)
    ulow, uhigh = newcombe(40, 50, 36, 50)
    assert ulow < low < 0.08 < high < uhigh and high - low < 0.6 * (uhigh - ulow)
    with pytest.raises(ValueError, match="same seeds"):
        paired_counts([True], [True, False])


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    n, trials, hits = 50, 2000, 0
    for _ in range(trials):  # seed difficulty shared by both arms: correlated outcomes
        hard = rng.random(n) < 0.2
        x = np.where(hard, rng.random(n) < 0.3, rng.random(n) < 0.95)
        y = np.where(hard, rng.random(n) < 0.2, rng.random(n) < 0.85)
        low, high = newcombe_paired(*paired_counts(list(x), list(y)))
        hits += low <= (0.2 * 0.3 + 0.8 * 0.95) - (0.2 * 0.2 + 0.8 * 0.85) <= high
    assert 0.93 <= hits / trials <= 0.985


def test_paired_text_gives_the_difference_with_its_paired_interval_in_points():
    low, high = newcombe_paired(36, 4, 0, 10)
    text = paired_text(36, 4, 0, 10)
    assert text == f"+8 points [{100 * low:+.0f}, {100 * high:+.0f}]"
    assert paired_text(0, 0, 5, 5).startswith("-50 points [")
