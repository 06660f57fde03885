"""``hilrl crop-roi``: exact per-episode crops, the printed config, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from dataset_cli_helpers import tree_snapshot, write_synthetic

from hilrl.cli.main import main
from hilrl.config.loader import load_config
from hilrl.config.root import RootConfig
from hilrl.data.crop import CropPlan, env_images
from hilrl.data.lerobot import LeRobotDatasetReader

LENGTHS = (3, 7, 5)
HW = (48, 64)


def block_mean(img: np.ndarray, fh: int, fw: int) -> np.ndarray:
    """Oracle 'area' resize by whole factors: mean of each block, rounded half up."""
    h, w, c = img.shape
    blocks = img.astype(np.int64).reshape(h // fh, fh, w // fw, fw, c)
    n = fh * fw
    return ((blocks.sum(axis=(1, 3)) + n // 2) // n).astype(np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[dict[str, Any]]]]:
    """Lossless (PNG) source, episodes of different lengths, every frame different."""
    root = tmp_path_factory.mktemp("crop") / "src"
    return root, write_synthetic(root, LENGTHS, hw=HW)


def snippet(out: str) -> dict[str, Any]:
    text = out.split("new dataset:\n", 1)[1]
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_crop_and_resize_keep_every_episode_and_frame(
    source: Any, tmp_path: Path, capsys: Any
) -> None:
    src, episodes = source
    out = tmp_path / "out"
    rc = main(
        [
            "crop-roi",
            str(src),
            "--out",
            str(out),
            "--roi",
            "front=8,16,24,32",
            "--resize",
            "12,16",
            "--no-progress",
        ]
    )
    assert rc == 0
    reader = LeRobotDatasetReader(out)
    assert reader.episode_lengths == dict(enumerate(LENGTHS))
    assert reader.features["observation.images.front"].shape == (12, 16, 3)
    assert reader.features["observation.images.wrist"].shape == (12, 16, 3)
    assert reader.features["observation.images.front"].dtype == "image"  # as the source
    assert [reader.episode_info(e).tasks for e in range(3)] == [
        ("task 0",),
        ("task 1",),
        ("task 0",),
    ]
    for e, frames in enumerate(episodes):
        got = reader.episode(e)
        np.testing.assert_array_equal(got["frame_index"], np.arange(LENGTHS[e]))
        for t, frame in enumerate(frames):
            front = frame["observation.images.front"][8:32, 16:48]
            np.testing.assert_array_equal(
                got["observation.images.front"][t], block_mean(front, 2, 2)
            )
            wrist = frame["observation.images.wrist"]
            np.testing.assert_array_equal(
                got["observation.images.wrist"][t], block_mean(wrist, 4, 4)
            )
            np.testing.assert_array_equal(got["observation.state"][t], frame["observation.state"])
            np.testing.assert_array_equal(got["action"][t], frame["action"])
            assert got["next.done"][t] == frame["next.done"]
            assert got["next.truncated"][t] == frame["next.truncated"]
            assert (
                got["complementary_info.is_intervention"][t]
                == frame["complementary_info.is_intervention"]
            )
    cfg = snippet(capsys.readouterr().out)
    assert cfg["env"]["images"]["crops"] == {"front": [8, 16, 24, 32]}
    assert cfg["env"]["images"]["resize"] == [12, 16]
    # the snippet is a valid config for a robot rendering the source's image size
    path = tmp_path / "crop.yaml"
    path.write_text(yaml.safe_dump(cfg))
    root = load_config(
        RootConfig,
        path,
        [f"--env.robot.camera_height={HW[0]}", f"--env.robot.camera_width={HW[1]}"],
    )
    assert root.env.images.crops == {"front": (8, 16, 24, 32)}


def test_crop_only_is_an_exact_slice(source: Any, tmp_path: Path) -> None:
    src, episodes = source
    out = tmp_path / "out"
    args = ["crop-roi", str(src), "--out", str(out), "--no-progress"]
    assert (
        main([*args, "--roi", "wrist=5,7,20,30", "--roi", "observation.images.front=0,0,48,2"]) == 0
    )
    reader = LeRobotDatasetReader(out)
    assert reader.episode_lengths == dict(enumerate(LENGTHS))
    for e in (0, 2):
        got = reader.episode(e)
        for t, frame in enumerate(episodes[e]):
            np.testing.assert_array_equal(
                got["observation.images.wrist"][t], frame["observation.images.wrist"][5:25, 7:37]
            )
            np.testing.assert_array_equal(
                got["observation.images.front"][t], frame["observation.images.front"][:, :2]
            )


def test_video_dataset_keeps_episode_boundaries(tmp_path: Path) -> None:
    """Through lossy video, each output frame still matches its own source frame best."""
    src = tmp_path / "src"
    write_synthetic(src, (4, 6, 3), hw=(32, 32), cameras=("front",), image_storage="video")
    out = tmp_path / "out"
    assert (
        main(["crop-roi", str(src), "--out", str(out), "--roi", "front=4,4,24,24", "--no-progress"])
        == 0
    )
    a, b = LeRobotDatasetReader(src), LeRobotDatasetReader(out)
    assert b.features["observation.images.front"].dtype == "video"
    assert b.episode_lengths == a.episode_lengths
    src_frames = np.concatenate([a.episode(e)["observation.images.front"] for e in range(3)])
    out_frames = np.concatenate([b.episode(e)["observation.images.front"] for e in range(3)])
    crops = src_frames[:, 4:28, 4:28].astype(np.float64)
    for i, frame in enumerate(out_frames.astype(np.float64)):
        errors = np.abs(crops - frame).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == i


def test_crops_compose_with_the_recording_env() -> None:
    plan = CropPlan(
        {"observation.images.front": (60, 60)},
        {"observation.images.front": (1, 2, 30, 40)},
        (16, 16),
    )
    crops, resize, note = env_images(
        plan, {"crops": {"front": [2, 2, 60, 60], "wrist": [0, 0, 8, 8]}}
    )
    assert crops == {"front": (3, 4, 30, 40), "wrist": (0, 0, 8, 8)} and resize == (16, 16)
    assert note is None
    _, _, note = env_images(plan, {"crops": {}, "resize": [60, 60]})
    assert note is not None and "resize" in note


@pytest.mark.parametrize(
    ("roi", "message"),
    [
        ("front=40,0,10,10", "leaves the 48x64"),
        ("top=0,0,8,8", "no such camera"),
        ("front=0,0,8", "camera=top,left,height,width"),
        ("front=0,0,0,8", "sizes > 0"),
    ],
)
def test_bad_roi_is_refused_and_nothing_written(
    source: Any, tmp_path: Path, capsys: Any, roi: str, message: str
) -> None:
    src, _ = source
    snap = tree_snapshot(src)
    out = tmp_path / "out"
    assert main(["crop-roi", str(src), "--out", str(out), "--roi", roi]) == 2
    err = capsys.readouterr().err
    assert message in err and "--roi" in err
    assert not out.exists() and not list(tmp_path.iterdir())
    assert tree_snapshot(src) == snap


def test_odd_video_size_is_refused(source: Any, tmp_path: Path, capsys: Any) -> None:
    src, _ = source
    out = tmp_path / "out"
    rc = main(
        [
            "crop-roi",
            str(src),
            "--out",
            str(out),
            "--roi",
            "front=0,0,9,9",
            "--image-storage",
            "video",
        ]
    )
    assert rc == 2 and "even" in capsys.readouterr().err
    assert not out.exists()


def test_existing_output_and_missing_source_are_refused(
    source: Any, tmp_path: Path, capsys: Any
) -> None:
    src, _ = source
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["crop-roi", str(src), "--out", str(out), "--roi", "front=0,0,8,8"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (
        main(
            [
                "crop-roi",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "o2"),
                "--roi",
                "front=0,0,8,8",
            ]
        )
        == 2
    )
    assert "dataset folder not found" in capsys.readouterr().err


def test_headless_without_roi_says_how(
    source: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src, _ = source
    assert main(["crop-roi", str(src), "--out", str(tmp_path / "o")]) == 2
    assert "--roi camera=top,left,height,width" in capsys.readouterr().err


def test_interactive_pick_uses_select_roi(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a display, cv2.selectROI picks the rectangle (on an enlarged image)."""
    import sys
    import types

    picks = iter([(16 * 8, 8 * 8, 32 * 8, 24 * 8), (0, 0, 0, 0)])  # x, y, w, h at 8x; then skip
    shown: list[tuple[int, ...]] = []

    def select_roi(title: str, img: np.ndarray, crosshair: bool, center: bool) -> tuple[int, ...]:
        shown.append(img.shape)
        return next(picks)

    fake = types.SimpleNamespace(selectROI=select_roi, destroyWindow=lambda title: None)
    monkeypatch.setitem(sys.modules, "cv2", fake)
    monkeypatch.setenv("DISPLAY", ":99")
    src, episodes = source
    out = tmp_path / "out"
    assert main(["crop-roi", str(src), "--out", str(out), "--no-progress"]) == 0
    assert shown == [(HW[0] * 8, HW[1] * 8, 3)] * 2
    got = LeRobotDatasetReader(out).episode(1)
    np.testing.assert_array_equal(
        got["observation.images.front"][0], episodes[1][0]["observation.images.front"][8:32, 16:48]
    )
    assert got["observation.images.wrist"].shape[1:] == (*HW, 3)  # skipped: uncropped
