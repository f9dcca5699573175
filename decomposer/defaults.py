"""UVD's decomposition defaults, in one place that imports nothing: 18 frames between subgoals
(above ``decompose`` it is seconds: 18 frames at robosuite's 20 fps) and the RBF bandwidth."""

DEFAULT_MIN_INTERVAL, DEFAULT_GAMMA = 18, 0.08
DEFAULT_MIN_INTERVAL_S = DEFAULT_MIN_INTERVAL / 20
