"""Facts of LeRobot's on-disk format that both directions share: file names and templates.

Kept apart so the reader and the writer agree on them without importing each other.
"""

INFO = "meta/info.json"
VERSIONS = ("v3.0", "v2.1")
INDEX_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
FLOAT_DTYPES = ("float16", "float32", "float64")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
_VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
IMAGE_STATS_FRAMES = 100  # image stats are computed on at most this many frames per episode
