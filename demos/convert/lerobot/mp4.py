"""Writing a camera's frames as one H.264 mp4, the way LeRobot 0.4 encodes its videos.

Kept apart so the writer deals in frames and rows, and PyAV is imported only when encoding.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .layout import VIDEO_PATH


def _video_rel(key: str) -> str:
    return VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)


def _codec() -> str:
    """libx264 where PyAV has it (its wheels do); MPEG-4 Part 2 otherwise."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _codec_name() -> str:
    return {"libx264": "h264"}.get(_codec(), _codec())


class _Mp4:
    """One growing mp4; frame n has pts n / fps, so episodes follow one another."""

    def __init__(self, path: Path, rate: Fraction, hw: tuple[int, int]):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.rate, self.n, self.open = rate, 0, True
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(_codec(), rate=rate)
        self.stream.height, self.stream.width = hw
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = 1 / rate
        if _codec() == "libx264":  # GOP 2 as LeRobot: cheap random access when training
            self.stream.options = {"crf": "20", "g": "2", "bf": "0"}

    def write(self, frames: np.ndarray) -> None:
        import av

        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts, vf.time_base = self.n, 1 / self.rate
            self.container.mux(self.stream.encode(vf))
            self.n += 1

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                self.container.mux(self.stream.encode())
            finally:
                self.container.close()
