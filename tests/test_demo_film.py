"""The demo report's films: which goal frame each rollout step was conditioned on, the three
panels side by side, and an H.264 file that decodes back to the same number of frames."""

import numpy as np

from demos.video import read_video
from sim.demo_film import LABEL_H, compose_film, goal_frame_indices, write_h264


def test_goal_frames_follow_the_relay_switches():
    # subgoals at demo frames 10, 25, 39; the relay moved on at rollout steps 4 and 9
    at = goal_frame_indices(12, 40, [10, 25, 39], [4, 9])
    assert at.tolist() == [10] * 4 + [25] * 5 + [39] * 3
    assert goal_frame_indices(3, 40, [10, 25, 39], [0, 1, 2, 5]).tolist() == [25, 39, 39]
    assert goal_frame_indices(5, 40, None, []).tolist() == [39] * 5  # final-goal policy


def test_films_show_demo_rollout_and_goal_frame_and_play_back(tmp_path):
    demo = np.stack([np.full((16, 16, 3), t, np.uint8) for t in range(40)])  # frame t is grey t
    rollout = np.full((12, 16, 16, 3), 200, np.uint8)
    film = compose_film(demo, rollout, [10, 25, 39], [4, 9], "uvd")
    assert film.shape == (12, 16 + LABEL_H, 48, 3)
    goal_panel = film[:, LABEL_H:, 32:]
    assert goal_panel[3].max() == 10 and goal_panel[4].max() == 25 and goal_panel[11].max() == 39
    assert film[5, LABEL_H:, :16].max() == 5  # the task demo plays at its own pace
    path = write_h264(tmp_path / "film.mp4", film, fps=20)
    frames = read_video(path)
    assert len(frames) == 12 and frames.shape[1:3] == (30, 48)
