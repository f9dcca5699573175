"""Wilson and Newcombe intervals against values published with the methods."""

import pytest

from sim.intervals import newcombe, rate_text, wilson


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
