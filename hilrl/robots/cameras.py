"""USB cameras for real robots: the newest frame, resized, without blocking the control loop.

A :class:`V4L2Camera` opens the device with PyAV (``av.open('/dev/video0', format='v4l2',
options={...})``; on macOS ``format='avfoundation'`` with a device index such as ``'0'``)
and decodes on a background thread that keeps only the latest frame, converted to RGB and
resized to the configured size. :meth:`Camera.read` returns a copy of that frame at once,
so a slow camera never stretches a control tick; it raises :class:`CameraError` (naming the
device) when the first frame does not come, when frames stop, or when decoding failed.

"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

FIRST_FRAME_TIMEOUT_S = 5.0
STALE_AFTER_S = 1.0


class CameraError(RuntimeError):
    """A camera could not be opened or stopped delivering frames; names the device."""


@runtime_checkable
class Camera(Protocol):
    name: str

    def start(self) -> None: ...

    def read(self) -> np.ndarray:
        """The newest frame: uint8 (height, width, 3) RGB, a fresh array."""
        ...

    def stop(self) -> None: ...


Opener = Callable[..., Any]
"""``av.open``-like: ``(device, format=..., options=...) -> container``."""


def capture_options(
    fps: int | None, capture_size: tuple[int, int] | None, input_format: str
) -> dict[str, str]:
    """The demuxer options for a capture device (all optional; empty: its defaults)."""
    options: dict[str, str] = {}
    if fps:
        options["framerate"] = str(fps)
    if capture_size is not None:
        height, width = capture_size
        options["video_size"] = f"{width}x{height}"
    if input_format:
        options["input_format"] = input_format
    return options


class V4L2Camera:
    """A capture device read by PyAV on a background thread (see the module docstring)."""

    def __init__(
        self,
        name: str,
        device: str,
        height: int,
        width: int,
        *,
        fps: int | None = 30,
        capture_size: tuple[int, int] | None = None,
        input_format: str = "mjpeg",
        av_format: str = "v4l2",
        first_frame_timeout_s: float = FIRST_FRAME_TIMEOUT_S,
        stale_after_s: float = STALE_AFTER_S,
        stop_timeout_s: float = 2.0,
        opener: Opener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if height <= 0 or width <= 0:
            raise ValueError(
                f"camera {name} ({device}): size must be positive, got {height}x{width}"
            )
        self.name = name
        self.device = device
        self.height = height
        self.width = width
        self.av_format = av_format
        self.options = capture_options(fps, capture_size, input_format)
        self.first_frame_timeout_s = first_frame_timeout_s
        self.stale_after_s = stale_after_s
        self.stop_timeout_s = stop_timeout_s
        self._opener = opener
        self._clock = clock
        self._container: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._new_frame = threading.Condition()
        self._frame: np.ndarray | None = None
        self._frame_time = 0.0
        self._error: BaseException | None = None
        self.frames_decoded = 0

    def __repr__(self) -> str:
        return f"V4L2Camera({self.name!r}, {self.device!r}, {self.height}x{self.width})"

    def start(self) -> None:
        """Open the device (errors name it) and start the decoding thread."""
        if self._thread is not None:
            return
        opener = self._opener
        if opener is None:
            import av  # start-up: PyAV (FFmpeg) loads only when a real camera opens

            opener = av.open
        try:
            self._container = opener(self.device, format=self.av_format, options=self.options)
        except Exception as exc:
            raise CameraError(
                f"camera {self.name!r}: cannot open {self.device} (format {self.av_format}, "
                f"options {self.options}): {exc}. Is it plugged in and not used by another "
                "program? 'v4l2-ctl --list-devices' lists the devices (docs/real_robot.md)."
            ) from exc
        self._stop.clear()
        self._error = None
        self._frame = None
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def read(self) -> np.ndarray:
        if self._thread is None:
            raise CameraError(f"camera {self.name!r} ({self.device}) is not started")
        with self._new_frame:
            if self._frame is None and self._error is None:
                self._new_frame.wait_for(
                    lambda: self._frame is not None or self._error is not None,
                    timeout=self.first_frame_timeout_s,
                )
            frame, stamp, error = self._frame, self._frame_time, self._error
        if error is not None:
            raise CameraError(f"camera {self.name!r} ({self.device}) stopped: {error}") from error
        if frame is None:
            raise CameraError(
                f"camera {self.name!r} ({self.device}) gave no frame within "
                f"{self.first_frame_timeout_s:.1f} s"
            )
        age = self._clock() - stamp
        if age > self.stale_after_s:
            raise CameraError(
                f"camera {self.name!r} ({self.device}) sent no new frame for {age:.1f} s"
            )
        return frame.copy()

    def stop(self) -> None:
        """Stop the thread and close the device. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.stop_timeout_s)  # it sees the flag at the next frame
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()

    def _frames(self) -> Iterator[Any]:
        return iter(self._container.decode(video=0))

    def _run(self) -> None:
        try:
            for frame in self._frames():
                if self._stop.is_set():
                    break
                image = frame.to_ndarray(
                    format="rgb24", width=self.width, height=self.height, interpolation="AREA"
                )
                with self._new_frame:
                    self._frame = image
                    self._frame_time = self._clock()
                    self.frames_decoded += 1
                    self._new_frame.notify_all()
            else:
                if not self._stop.is_set():
                    raise CameraError("the stream ended")
        except BaseException as exc:
            with self._new_frame:
                self._error = exc
                self._new_frame.notify_all()


def make_cameras(
    names: tuple[str, ...],
    devices: Mapping[str, str],
    height: int,
    width: int,
    *,
    fps: int | None,
    capture_size: tuple[int, int] | None,
    input_format: str,
    av_format: str,
) -> dict[str, Camera]:
    """A :class:`V4L2Camera` per name, in order; a name without a device is an error."""
    cameras: dict[str, Camera] = {}
    for name in names:
        if name not in devices:
            raise CameraError(f"camera {name!r} has no device in robot.camera_devices")
        cameras[name] = V4L2Camera(
            name,
            devices[name],
            height,
            width,
            fps=fps,
            capture_size=capture_size,
            input_format=input_format,
            av_format=av_format,
        )
    return cameras
