"""UVD decomposition, baselines and relabelling on inputs whose answer is known by construction."""

from functools import partial

import numpy as np
import pytest

from decomposer import METHODS, boundary_scores, decompose, get_method, goal_indices
from decomposer.baselines import changepoint, equal, final, near_future, oracle, random
from decomposer.uvd import decompose_curves, smooth_dense, smooth_rbf, smooth_savgol


def piecewise(ends, dim=16, noise=0.0, seed=0):
    """Frames that move in a straight line from goal k to goal k+1, arriving at frame ends[k].

    The goals are orthonormal directions (randomly rotated into ``dim``), so over the segment
    that reaches goal k the distance to goal k+1 is sqrt((1-s)^2 + s^2 + 1): largest at both
    ends. Going backwards from goal k+1 the distance therefore peaks exactly at ends[k-1].
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][: len(ends) + 1]
    x = np.empty((ends[-1] + 1, dim))
    x[0], start = basis[0], 0
    for k, end in enumerate(ends):
        s = (np.arange(start + 1, end + 1) - start)[:, None] / (end - start)
        x[start + 1 : end + 1] = basis[k] + (basis[k + 1] - basis[k]) * s
        start = end
    return x + noise * rng.normal(size=x.shape)


def random_walk(T, dim=8, seed=0):
    return np.random.default_rng(seed).normal(size=(T, dim)).cumsum(axis=0)


# ---------------------------------------------------------------- decompose


@pytest.mark.parametrize(
    "ends,noise,tol",
    [
        ([60, 130, 190, 259], 0.0, 1),
        ([40, 80, 150, 199], 0.01, 2),
        # long segments climb only ~0.004 per frame towards the peak, against per-frame
        # noise ~0.02: the smoothed peak wanders a few frames
        ([100, 137, 300, 341, 420], 0.02, 5),
    ],
)
def test_decompose_finds_segment_ends(ends, noise, tol):
    got = decompose(piecewise(ends, noise=noise, seed=len(ends)))
    assert len(got) == len(ends)
    assert got[-1] == ends[-1]
    assert np.abs(np.array(got) - ends).max() <= tol, got


def test_decompose_savgol_finds_long_segment_ends_early():
    # a quadratic fitted over 85 frames to an asymmetric kink (rising at 0.71, falling at 1.41
    # per segment length) peaks on the shallow side: 5-10 frames early, never late
    ends = [200, 400, 650, 849]
    got = decompose(piecewise(ends, noise=0.01), smoother="savgol")
    assert len(got) == len(ends) and got[-1] == ends[-1]
    early = np.array(ends) - got
    assert (early >= 0).all() and early.max() <= 12, got


def test_decompose_unsmoothed_is_exact_without_noise():
    ends = [30, 75, 110, 150]
    assert decompose(piecewise(ends), smoother="none") == ends


def test_min_interval_skips_short_segments():
    # the 12-frame segment ends too close to the next subgoal: its end at 60 cannot be chosen,
    # and before 60 the curve to frame 72 has no interior peak, so 72 is the only subgoal left
    got = decompose(piecewise([60, 72, 140]), min_interval=18)
    assert len(got) == 2 and abs(got[0] - 72) <= 2 and got[-1] == 140


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("min_interval", [0, 5, 18])
def test_decompose_output_invariants(seed, min_interval):
    e = random_walk(400, seed=seed)
    got = decompose(e, min_interval=min_interval)
    assert got[-1] == len(e) - 1
    assert all(isinstance(i, int) for i in got)
    gaps = np.diff([0, *got])
    assert (gaps > min_interval).all(), got
    # the random walk has plenty of peaks: with a small interval several subgoals appear
    if min_interval <= 5:
        assert len(got) > 3


@pytest.mark.parametrize("T", [1, 2, 18, 38])
def test_short_input_gives_final_frame_only(T):
    # a peak needs min_interval frames on both sides of it and frame 0 and T-1 beyond those
    assert decompose(random_walk(T), min_interval=18) == [T - 1]


def test_first_length_that_can_split():
    e = piecewise([19, 38], dim=4)  # T = 39 = 2 * 18 + 3: exactly one admissible frame, 19
    assert decompose(e, min_interval=18, smoother="none") == [19, 38]


def test_constant_embedding_gives_final_frame_only():
    assert decompose(np.full((300, 5), 0.7)) == [299]
    assert decompose(np.zeros((300, 5), np.float32), smoother="savgol") == [299]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embedding_names_the_frame(bad):
    e = random_walk(100)
    e[37, 3] = bad
    e[80, 0] = bad
    with pytest.raises(ValueError, match="frame 37 "):
        decompose(e)


@pytest.mark.parametrize("shape", [(0, 4), (10,), (3, 4, 5), ()])
def test_bad_shapes_raise(shape):
    with pytest.raises(ValueError, match="2-D|no frames"):
        decompose(np.zeros(shape))


@pytest.mark.parametrize(
    "kw", [{"min_interval": -1}, {"min_interval": 2.5}, {"gamma": 0.0}, {"smoother": "gauss"}]
)
def test_bad_parameters_raise(kw):
    with pytest.raises(ValueError):
        decompose(random_walk(100), **kw)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.float32])
def test_other_dtypes_work(dtype):
    e = (piecewise([50, 100, 149]) * 100).round().astype(dtype)
    assert decompose(e, smoother="none") == [50, 100, 149]


# ---------------------------------------------------------------- banded == dense


@pytest.mark.parametrize("gamma", [0.08, 0.5, 0.005])
@pytest.mark.parametrize("T", [1, 2, 7, 60, 1500])
def test_banded_smoother_matches_dense_on_random_curves(T, gamma):
    d = np.random.default_rng(T).normal(size=T) * 10
    np.testing.assert_allclose(smooth_rbf(d, gamma), smooth_dense(d, gamma), rtol=0, atol=1e-9)


def test_banded_smoother_matches_dense_on_distance_curves():
    e = piecewise([120, 300, 420, 599], noise=0.05)
    for g in (599, 420, 300):
        d = np.linalg.norm(e[: g + 1] - e[g], axis=1)
        np.testing.assert_allclose(smooth_rbf(d, 0.08), smooth_dense(d, 0.08), rtol=0, atol=1e-9)


def test_dense_smoother_is_row_normalised_kernel_regression():
    # independent check of the reference itself on a hand-sized case: constants stay constant,
    # and frame 0 of [0, 1, 0] is weighted by exp(-g*0), exp(-g*1), exp(-g*4)
    np.testing.assert_allclose(smooth_dense(np.full(9, 3.0), 0.3), 3.0)
    w = np.exp(-0.3 * np.array([0.0, 1.0, 4.0]))
    assert smooth_dense(np.array([0.0, 1.0, 0.0]), 0.3)[0] == pytest.approx(w[1] / w.sum())


def savgol_by_local_fits(d, window=85, order=2):
    """Savitzky-Golay from its definition: at each frame, a least-squares polynomial over the
    window around it (the ends repeated past the edges, as UVD's ``mode="nearest"``), read at
    its centre. Independent of scipy's filter coefficients."""
    h = window // 2
    padded = np.concatenate([np.full(h, d[0]), d, np.full(h, d[-1])])
    x = np.arange(-h, h + 1)
    return np.array(
        [np.polyval(np.polyfit(x, padded[i : i + window], order), 0.0) for i in range(len(d))]
    )


@pytest.mark.parametrize("T", [1, 2, 30, 84, 85, 86, 300])
def test_savgol_is_the_full_window_with_nearest_edges(T):
    # UVD smooths every curve with window 85 whatever its length; clipping the window to a
    # short curve (or scipy's default "interp" edges) gives other values near the ends
    d = np.random.default_rng(T).normal(size=T).cumsum()
    np.testing.assert_allclose(smooth_savgol(d), savgol_by_local_fits(d), rtol=0, atol=1e-8)


@pytest.mark.parametrize("seed", range(8))
def test_savgol_decomposition_equals_the_reference_on_short_and_long_demos(seed):
    # short demos (every prefix curve shorter than the window) and long ones, where the
    # windowed backward search must still see the curve's own values
    T = [70, 120, 160, 400][seed % 4]
    e = random_walk(T, dim=8, seed=seed)
    ref = decompose_curves(e, min_interval=6, smoother=savgol_by_local_fits)
    assert decompose(e, min_interval=6, smoother="savgol") == ref.subgoals


def test_a_long_rest_is_flat_up_to_rounding_after_smoothing():
    # why decompose_curves' docstring exempts plateaus from "UVD's algorithm step for step":
    # inside a rest longer than the kernel the smoothed distances differ only by rounding, so
    # its strict peaks are rounding artefacts that another order of operations moves
    e = np.concatenate([random_walk(40, seed=1), np.repeat(random_walk(40, seed=1)[-1:], 120, 0)])
    e = np.concatenate([e, random_walk(40, seed=2) + e[-1]])
    d = np.linalg.norm(e - e[-1], axis=1)
    inner = smooth_dense(d, 0.08)[40 + 30 : 160 - 30]
    assert np.ptp(inner) <= 1e-12 * np.abs(inner).max()


@pytest.mark.parametrize("seed", range(3))
def test_windowed_search_equals_full_prefix_dense_reference(seed):
    e = random_walk(700, dim=32, seed=seed)
    ref = decompose_curves(e, min_interval=10, smoother=partial(smooth_dense, gamma=0.08))
    assert decompose(e, min_interval=10) == ref.subgoals


@pytest.mark.parametrize("smoother,late", [("none", 0), ("rbf", 5), ("savgol", 30)])
def test_search_window_grows_to_reach_a_far_peak(smoother, late):
    # one peak 1970 frames before the end: the backward search has to widen several times.
    # The curve falls 70x more slowly after the peak than it rises before it, so smoothing
    # moves the peak late (towards the shallow side): a few frames for the RBF (sigma 2.5),
    # tens for savgol's 85-frame window.
    e = piecewise([30, 2000])
    got = decompose(e, smoother=smoother)
    assert got == decompose_curves(e, smoother=smoother).subgoals
    assert len(got) == 2 and 0 <= got[0] - 30 <= late and got[1] == 2000


@pytest.mark.parametrize("smoother", ["rbf", "savgol", "none"])
def test_decompose_curves_agrees_and_marks_the_chosen_peaks(smoother):
    e = random_walk(600, seed=7)
    dec = decompose_curves(e, min_interval=12, smoother=smoother)
    assert dec.subgoals == decompose(e, min_interval=12, smoother=smoother)
    assert len(dec.curves) == len(dec.peaks) == len(dec.subgoals)
    for k, g in enumerate(dec.subgoals):
        assert dec.curves[k].shape == (g + 1,)
        if k:
            assert dec.subgoals[k - 1] in dec.peaks[k]


# ---------------------------------------------------------------- baselines


E100 = np.zeros((101, 3))


def test_final_is_last_frame():
    assert final(E100) == [100]


def test_equal_spacing():
    assert equal(E100, n_subgoals=4) == [25, 50, 75, 100]
    assert equal(np.zeros((3, 2)), n_subgoals=5) == [1, 2]  # fewer frames than subgoals
    assert equal(np.zeros((1, 2))) == [0]


def test_near_future_every_k_steps():
    assert near_future(np.zeros((23, 2)), every=5) == [5, 10, 15, 20, 22]
    assert near_future(np.zeros((21, 2)), every=5) == [5, 10, 15, 20]


def test_random_is_seeded_and_sized():
    a, b = random(E100, seed=3), random(E100, seed=3)
    assert a == b and a[-1] == 100 and a == sorted(set(a))
    assert 3 <= len(a) <= 6
    assert len(random(E100, n_subgoals=8, seed=1)) == 8
    assert len({tuple(random(E100, n_subgoals=5, seed=s)) for s in range(10)}) > 1


def test_oracle_from_stage_labels():
    stage = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    assert oracle(np.zeros((8, 2)), stage=stage) == [2, 4, 7]
    with pytest.raises(ValueError, match="shape"):
        oracle(np.zeros((9, 2)), stage=stage)


def test_changepoint_finds_mean_shifts():
    rng = np.random.default_rng(0)
    levels = np.repeat(np.eye(4)[[0, 1, 2, 3]] * 3, [50, 40, 60, 50], axis=0)
    e = levels + 0.1 * rng.normal(size=levels.shape)
    assert changepoint(e, n_bkps=3, min_size=10) == [49, 89, 149, 199]
    assert changepoint(e, min_size=10) == [49, 89, 149, 199]  # default penalty
    assert changepoint(e[:15], min_size=10) == [14]  # too short to split


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_returns_ascending_ending_at_last(name):
    e = random_walk(150, seed=2)
    kw = {"stage": np.arange(150) * 3 // 150} if name == "oracle" else {}
    got = get_method(name)(e, **kw)
    assert got[-1] == 149 and got == sorted(set(got)) and got[0] >= 0


def test_get_method_lists_valid_names():
    with pytest.raises(ValueError, match="changepoint.*equal.*final.*near_future.*oracle"):
        get_method("uvd2")


def test_baselines_check_their_input():
    with pytest.raises(ValueError, match="frame 4"):
        equal(np.vstack([np.zeros((4, 2)), [[np.nan, 0]]]))
    with pytest.raises(ValueError, match="n_subgoals"):
        equal(E100, n_subgoals=0)


# ---------------------------------------------------------------- relabelling and scores


def test_goal_indices_hand_example():
    got = goal_indices([2, 5, 9], 10)
    assert got.dtype == np.int64
    assert got.tolist() == [2, 2, 2, 5, 5, 5, 9, 9, 9, 9]
    assert goal_indices([0, 3], 4).tolist() == [0, 3, 3, 3]


@pytest.mark.parametrize("bad", [[2, 5, 8], [5, 2, 9], [2, 2, 9], [-1, 9], [], [1.5, 9]])
def test_goal_indices_rejects_bad_subgoals(bad):
    with pytest.raises(ValueError):
        goal_indices(bad, 10)


def test_boundary_scores_hand_example():
    # true boundaries: frames 10 and 14 (last frames of stages 0 and 1); predicted 13 and 18.
    # Greedy nearest-first would pair 13-14 and leave 18 unmatched; the one-to-one optimum
    # within 0.4 s pairs 13-10 (+0.3 s) and 18-14 (+0.4 s).
    stage = np.array([0] * 11 + [1] * 4 + [2] * 10)
    s = boundary_scores([13, 18, 24], stage, fps=10, tolerance_s=0.4)
    assert (s["n_pred"], s["n_true"], s["n_matched"]) == (2, 2, 2)
    assert s["precision"] == 1.0 and s["recall"] == 1.0
    assert s["mean_offset_s"] == pytest.approx(0.35)

    s = boundary_scores([7, 12, 22, 24], stage, fps=10, tolerance_s=0.2)
    # 12 pairs with 10 (+0.2 s) or 14 (-0.2 s); 7 and 22 are too far from both
    assert (s["n_matched"], s["precision"], s["recall"]) == (1, 1 / 3, 1 / 2)
    assert s["mean_abs_offset_s"] == pytest.approx(0.2)


def test_boundary_scores_final_goal_only():
    s = boundary_scores([24], np.array([0] * 11 + [1] * 14), fps=10)
    assert (s["precision"], s["recall"], s["n_true"]) == (1.0, 0.0, 1)
    assert np.isnan(s["mean_offset_s"])


# ---------------------------------------------------------------- a demo folder


def test_uvd_on_synthetic_folder_state_embeddings(tmp_path):
    """The 'state' backbone idea: end-effector positions as embeddings.

    What the method does here (looked at on 40 episodes before fixing the bounds): precision 1.0
    and recall about 0.65 within 0.5 s; on these 4 episodes (seed 0) all 8 boundaries are found,
    3-5 frames early. A boundary is missed when the stage before it moves toward the next
    waypoint: the distance to the next subgoal then keeps falling across the boundary, so there
    is no peak. The early bias comes from eef_pos's z, which steps at each boundary: smoothing
    bends the curve down a couple of sigma (2.5 frames each) before the step.
    """
    from demos.synthetic import make_folder

    folder = make_folder(tmp_path / "demo", 4, T=100, size=(32, 32))
    fps = folder.info.fps
    min_interval = round(0.5 * fps)  # stages here last 0.6-2.5 s: UVD's 18 frames is ~1.4 s
    n = np.zeros(3)
    offsets = []
    for ep in folder.episode_ids:
        low = folder.read_lowdim(ep)
        sub = decompose(low["eef_pos"], min_interval=min_interval)
        s = boundary_scores(sub, low["stage"], fps, tolerance_s=0.5)
        n += (s["n_matched"], s["n_pred"], s["n_true"])
        if s["n_matched"]:
            offsets.append(s["mean_offset_s"])
    precision, recall = n[0] / n[1], n[0] / n[2]
    print(f"UVD on eef_pos: precision {precision:.2f} recall {recall:.2f} offset {offsets}")
    assert recall >= 0.5 and precision >= 0.8
    assert -0.5 <= np.mean(offsets) <= 0.0  # early, never late on average
