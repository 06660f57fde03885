"""A camera without a device, for the robot tests (deterministic frames)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hilrl.robots.cameras import CameraError


class FakeCamera:
    """A camera without a device: frame ``k`` is ``make_frame(k)`` or a plain test pattern.

    The default pattern fills the image with ``k % 256`` in the red channel and a fixed
    horizontal gradient in green, so tests can tell frames and orientation apart.
    """

    def __init__(
        self,
        name: str,
        height: int = 96,
        width: int = 128,
        make_frame: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        self.name = name
        self.height = height
        self.width = width
        self._make = make_frame
        self.started = False
        self.reads = 0

    def start(self) -> None:
        self.started = True

    def read(self) -> np.ndarray:
        if not self.started:
            raise CameraError(f"camera {self.name!r} (fake) is not started")
        k = self.reads
        self.reads += 1
        if self._make is not None:
            frame = np.asarray(self._make(k), dtype=np.uint8)
            if frame.shape != (self.height, self.width, 3):
                raise CameraError(
                    f"camera {self.name!r} (fake): frame shape {frame.shape} is not "
                    f"({self.height}, {self.width}, 3)"
                )
            return frame.copy()
        frame = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        frame[..., 0] = k % 256
        frame[..., 1] = np.linspace(0, 255, self.width, dtype=np.uint8)[None, :]
        return frame

    def stop(self) -> None:
        self.started = False
