"""Cameras: the fake one, and the PyAV reader with an injected container (no device)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import av
import numpy as np
import pytest
from camera_fakes import FakeCamera

from hilrl.robots.cameras import (
    Camera,
    CameraError,
    V4L2Camera,
    capture_options,
    make_cameras,
)


class FakeContainer:
    """Yields the av.VideoFrames a test puts in ``feed``; None ends the stream."""

    def __init__(self) -> None:
        self.feed: queue.Queue[np.ndarray | None] = queue.Queue()
        self.closed = False

    def decode(self, video: int = 0) -> Iterator[av.VideoFrame]:
        while True:
            image = self.feed.get()
            if image is None:
                return
            yield av.VideoFrame.from_ndarray(image, format="rgb24")

    def close(self) -> None:
        self.closed = True
        self.feed.put(None)


def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[:] = rgb
    return image


def test_fake_camera_frames() -> None:
    cam = FakeCamera("front", 48, 64)
    assert isinstance(cam, Camera)
    with pytest.raises(CameraError, match="not started"):
        cam.read()
    cam.start()
    a, b = cam.read(), cam.read()
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert a[0, 0, 0] == 0 and b[0, 0, 0] == 1  # frames differ
    assert a[0, -1, 1] == 255 and a[0, 0, 1] == 0  # gradient left to right
    bad = FakeCamera("x", 4, 4, make_frame=lambda k: np.zeros((2, 2, 3)))
    bad.start()
    with pytest.raises(CameraError, match="shape"):
        bad.read()


def test_capture_options() -> None:
    assert capture_options(30, (480, 640), "mjpeg") == {
        "framerate": "30",
        "video_size": "640x480",
        "input_format": "mjpeg",
    }
    assert capture_options(None, None, "") == {}


def test_reader_keeps_only_the_newest_frame_resized() -> None:
    container = FakeContainer()
    calls: list[tuple] = []

    def opener(device: str, format: str, options: dict) -> FakeContainer:
        calls.append((device, format, options))
        return container

    cam = V4L2Camera(
        "front", "/dev/video7", 24, 32, opener=opener, capture_size=(48, 64), stop_timeout_s=0.05
    )
    cam.start()
    assert calls == [
        ("/dev/video7", "v4l2", {"framerate": "30", "video_size": "64x48", "input_format": "mjpeg"})
    ]
    left_red = solid(48, 64, (0, 0, 255))
    left_red[:, :32] = (255, 0, 0)
    container.feed.put(left_red)
    frame = cam.read()  # waits for the first frame
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
    np.testing.assert_allclose(frame[:, :15], np.broadcast_to([255, 0, 0], (24, 15, 3)), atol=3)
    np.testing.assert_allclose(frame[:, 17:], np.broadcast_to([0, 0, 255], (24, 15, 3)), atol=3)
    for rgb in [(10, 20, 30), (200, 100, 50)]:
        container.feed.put(solid(48, 64, rgb))
    wait_for(lambda: cam.frames_decoded == 3)
    np.testing.assert_allclose(cam.read()[5, 5], [200, 100, 50], atol=3)
    frame = cam.read()
    frame[:] = 0  # callers get copies
    np.testing.assert_allclose(cam.read()[5, 5], [200, 100, 50], atol=3)
    cam.stop()
    assert container.closed
    cam.stop()


def test_open_failure_names_the_device() -> None:
    def opener(device: str, format: str, options: dict) -> None:
        raise OSError(2, "No such file or directory")

    cam = V4L2Camera("wrist", "/dev/video42", 16, 16, opener=opener)
    with pytest.raises(CameraError) as info:
        cam.start()
    assert "/dev/video42" in str(info.value) and "wrist" in str(info.value)


def test_real_pyav_open_of_a_missing_device_names_it() -> None:
    cam = V4L2Camera("front", "/dev/hilrl-no-such-video", 16, 16)
    with pytest.raises(CameraError, match="/dev/hilrl-no-such-video"):
        cam.start()


def test_stream_end_and_silence_are_errors_naming_the_device() -> None:
    container = FakeContainer()
    cam = V4L2Camera(
        "front", "/dev/video3", 8, 8, opener=lambda *a, **k: container, stop_timeout_s=0.05
    )
    cam.start()
    container.feed.put(None)
    with pytest.raises(CameraError, match=r"/dev/video3.*stream ended"):
        cam.read()
    cam.stop()

    quiet = FakeContainer()
    cam = V4L2Camera(
        "front",
        "/dev/video4",
        8,
        8,
        opener=lambda *a, **k: quiet,
        first_frame_timeout_s=0.05,
        stop_timeout_s=0.05,
    )
    cam.start()
    with pytest.raises(CameraError, match=r"/dev/video4.*no frame within"):
        cam.read()
    cam.stop()


def test_stale_frames_are_refused() -> None:
    now = [0.0]
    container = FakeContainer()
    cam = V4L2Camera(
        "front",
        "/dev/video5",
        8,
        8,
        opener=lambda *a, **k: container,
        clock=lambda: now[0],
        stale_after_s=0.5,
        stop_timeout_s=0.05,
    )
    cam.start()
    container.feed.put(solid(8, 8, (1, 2, 3)))
    cam.read()
    now[0] = 2.0
    with pytest.raises(CameraError, match=r"/dev/video5.*no new frame for 2.0 s"):
        cam.read()
    cam.stop()


def test_make_cameras_needs_a_device_per_name() -> None:
    cams = make_cameras(
        ("front",),
        {"front": "/dev/video0"},
        10,
        12,
        fps=None,
        capture_size=None,
        input_format="",
        av_format="v4l2",
    )
    assert isinstance(cams["front"], V4L2Camera) and cams["front"].options == {}
    with pytest.raises(CameraError, match="'wrist'"):
        make_cameras(
            ("wrist",), {}, 10, 12, fps=None, capture_size=None, input_format="", av_format="v4l2"
        )
