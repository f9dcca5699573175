"""The demo folder (format version 1): read, write atomically, validate, convert."""

from .episode import Episode
from .errors import DemoFolderError, Problem
from .folder import DemoFolder
from .schema import FORMAT_VERSION, DatasetInfo
from .validate import Report, validate
from .video import VideoError, iter_frames, read_video, write_video

__all__ = [
    "FORMAT_VERSION",
    "DatasetInfo",
    "DemoFolder",
    "DemoFolderError",
    "Episode",
    "Problem",
    "Report",
    "VideoError",
    "iter_frames",
    "read_video",
    "validate",
    "write_video",
]
