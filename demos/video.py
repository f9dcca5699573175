"""mp4 in and out: OpenCV writes and reads; PyAV reads what OpenCV cannot (AV1)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

# OpenCV's bundled FFmpeg prints a line per frame it cannot decode (AV1): keep stderr readable.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
import cv2  # noqa: E402

from .errors import DemoFolderError  # noqa: E402

FOURCC = "mp4v"  # the MPEG-4 encoder ships in every opencv-python wheel; H.264 does not


class VideoError(DemoFolderError):
    """A video that cannot be written or decoded."""


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write RGB uint8 frames (H, W, 3) to ``path``; return the number written."""
    path = Path(path)
    writer = None
    n = 0
    shape = None
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise VideoError(
                    f"frame {n} must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}",
                    path.name,
                )
            if writer is None:
                shape = frame.shape
                fourcc = cv2.VideoWriter_fourcc(*FOURCC)
                writer = cv2.VideoWriter(str(path), fourcc, float(fps), (shape[1], shape[0]))
                if not writer.isOpened():
                    raise VideoError(f"OpenCV cannot open a {FOURCC} writer", str(path))
            elif frame.shape != shape:
                raise VideoError(f"frame {n} has shape {frame.shape}, frame 0 {shape}", path.name)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            n += 1
    finally:
        if writer is not None:
            writer.release()
    return n


def _iter_opencv(path: Path) -> Iterator[np.ndarray] | None:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return None
    ok, first = cap.read()
    if not ok:
        cap.release()
        return None

    def gen() -> Iterator[np.ndarray]:
        try:
            frame = first
            while True:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = cap.read()
                if not ok:
                    return
        finally:
            cap.release()

    return gen()


def _iter_pyav(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise VideoError(f"cannot be opened as a video ({_reason(e)})", str(path)) from None
    try:
        if not container.streams.video:
            raise VideoError("has no video stream (truncated, or not a video)", str(path))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise VideoError(f"decoding failed ({_reason(e)})", str(path)) from None
    finally:
        container.close()


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames one by one (bounded memory), OpenCV first, then PyAV."""
    path = Path(path)
    if not path.is_file():
        raise VideoError("missing", str(path))
    frames = _iter_opencv(path)
    if frames is None:
        frames = _iter_pyav(path)
    yield from frames


def read_video(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video as uint8 (T, H, W, 3), RGB."""
    frames = list(iter_frames(path))
    if not frames:
        raise VideoError("holds no decodable frame", str(path))
    return np.stack(frames)


def read_video_pts(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Frames and their presentation times in seconds (PyAV), for files holding many episodes."""
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise VideoError(f"cannot be opened as a video ({_reason(e)})", str(path)) from None
    frames, times = [], []
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.pts * stream.time_base))
        except av.FFmpegError as e:
            raise VideoError(
                f"decoding failed after {len(frames)} frames ({_reason(e)})", str(path)
            ) from None
    if not frames:
        raise VideoError("holds no decodable frame", str(path))
    return np.stack(frames), np.asarray(times)


def _reason(e: Exception) -> str:
    """FFmpeg's words without the file name, which the error names already."""
    return getattr(e, "strerror", None) or str(e)


def resize_center_crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3) to ``size`` = (h, w), keeping the aspect ratio by a central crop."""
    h, w = size
    fh, fw = frame.shape[:2]
    if (fh, fw) == (h, w):
        return frame
    scale = max(h / fh, w / fw)
    nh, nw = max(h, round(fh * scale)), max(w, round(fw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (nw, nh), interpolation=interp)
    top, left = (nh - h) // 2, (nw - w) // 2
    return resized[top : top + h, left : left + w]
