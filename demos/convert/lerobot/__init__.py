"""LeRobot datasets on disk <-> demo folders.

``import_lerobot`` reads codebase v3.0 (many episodes share one Parquet and one mp4 per camera,
located through meta/episodes) and v2.1 (one Parquet and one mp4 per episode).
``export_lerobot`` writes v3.0 laid out as LeRobot 0.4 writes it, so LeRobot loads it as is.
Both build the result in a staging folder beside ``out``: a failure leaves nothing at ``out``.

The modules, each importing only those listed before it: ``layout`` (file names and templates),
``files`` (JSON and Parquet I/O with errors naming the file), ``features`` (LeRobot features <->
demo keys, meta/info.json), ``stats``, ``mp4`` (the video encoder), ``read`` (import), ``write``
(export).
"""

from .layout import (
    DATA_PATH,
    EPISODES_PATH,
    FLOAT_DTYPES,
    IMAGE_STATS_FRAMES,
    INDEX_KEYS,
    INFO,
    QUANTILES,
    VERSIONS,
    VIDEO_PATH,
)
from .read import import_lerobot
from .write import export_lerobot, policy_groups, scene_keys

__all__ = [
    "DATA_PATH",
    "EPISODES_PATH",
    "FLOAT_DTYPES",
    "IMAGE_STATS_FRAMES",
    "INDEX_KEYS",
    "INFO",
    "QUANTILES",
    "VERSIONS",
    "VIDEO_PATH",
    "export_lerobot",
    "import_lerobot",
    "policy_groups",
    "scene_keys",
]
