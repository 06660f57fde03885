"""Episode videos for evaluation: camera frames side by side, streamed into an mp4.

H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 Part 2 (every FFmpeg build has
that encoder). Frames are padded to even sizes because yuv420p needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

ENCODERS = ("libx264", "mpeg4")


def pick_encoder() -> str:
    """The first of :data:`ENCODERS` this PyAV build can write."""

    for name in ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # UnknownCodecError and friends differ across PyAV versions
            continue
        return name
    raise RuntimeError(f"PyAV's FFmpeg has none of the encoders {ENCODERS} to write an mp4")


def tile(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Camera frames (uint8 HxWx3) side by side, top-aligned, padded to even size."""
    if not frames:
        raise ValueError("no frames to tile")
    height = max(int(f.shape[0]) for f in frames)
    width = sum(int(f.shape[1]) for f in frames)
    canvas = np.zeros((height + height % 2, width + width % 2, 3), dtype=np.uint8)
    x = 0
    for f in frames:
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"video frames must be uint8 (H, W, 3), got {f.dtype} {f.shape}")
        canvas[: f.shape[0], x : x + f.shape[1]] = f
        x += int(f.shape[1])
    return canvas


class Mp4Writer:
    """Streams RGB frames into one mp4; the size is fixed by the first frame."""

    def __init__(self, path: str | Path, fps: float, encoder: str | None = None) -> None:
        self.path = Path(path)
        self.fps = max(1, round(fps))
        self.encoder = encoder or pick_encoder()
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None

    def add(self, frame: np.ndarray) -> None:
        frame = tile([frame]) if frame.shape[0] % 2 or frame.shape[1] % 2 else frame
        h, w = int(frame.shape[0]), int(frame.shape[1])
        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.path), "w", format="mp4")
            stream = self._container.add_stream(self.encoder, rate=self.fps)
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuv420p"
            if self.encoder == "libx264":
                stream.options = {"crf": "20", "preset": "veryfast"}
            else:
                stream.bit_rate = 2_000_000
            self._stream = stream
            self._size = (h, w)
        elif (h, w) != self._size:
            raise ValueError(f"frame size {(h, w)} differs from the video's {self._size}")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> int:
        """Flush and close; returns the number of frames written (0: no file)."""
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
        return self.frames

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
