"""``hilrl view``: contact sheet and per-episode mp4 (content checked), rerun, bad input."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from dataset_cli_helpers import write_synthetic
from PIL import Image

from hilrl.cli.main import main
from hilrl.data import view
from hilrl.data.lerobot import LeRobotDatasetReader

LENGTHS = (4, 6)
HW = (32, 48)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("view") / "ds"
    write_synthetic(root, LENGTHS, hw=HW, image_storage="image")
    return root


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_files_backend_writes_sheet_and_one_mp4_per_episode(
    dataset: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "v"
    rc = main(["view", str(dataset), "--out", str(out), "--columns", "3", "--backend", "files"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "      1       6" in printed  # episode 1, 6 frames in the summary table
    reader = LeRobotDatasetReader(dataset)
    eps = [reader.episode(e) for e in range(2)]

    # contact sheet: 2 rows x 3 tiles; each tile shows its frame, enlarged 4x (32 -> 128 px)
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    f = round(view.SHEET_CAMERA_PX / HW[0])
    pw, ph = 2 * HW[1] * f + 2, HW[0] * f  # two cameras and the 2 px gap
    tile_w = pw + 2 * view.SHEET_BORDER
    tile_h = ph + 2 * view.SHEET_BORDER + view.SHEET_LABEL_H
    assert sheet.shape == (
        view.SHEET_HEADER_H + 2 * (tile_h + view.SHEET_PAD) + view.SHEET_PAD,
        view.SHEET_PAD + 3 * (tile_w + view.SHEET_PAD),
        3,
    )
    for row, ep in enumerate(eps):
        for col, t in enumerate(view.sheet_frames(LENGTHS[row], 3)):
            x = view.SHEET_PAD + col * (tile_w + view.SHEET_PAD) + view.SHEET_BORDER
            y = view.SHEET_HEADER_H + row * (tile_h + view.SHEET_PAD) + view.SHEET_BORDER
            front = view.upscale(ep["observation.images.front"][t], f)
            np.testing.assert_array_equal(sheet[y : y + ph, x : x + HW[1] * f], front)
            # the border says whether the operator intervened at that frame
            border = tuple(sheet[y - 1, x - 1])
            flag = ep["complementary_info.is_intervention"][t] > 0.5
            assert border == (view.INTERVENTION_RGB if flag else view.PLAIN_RGB), (row, t)

    # one mp4 per episode with every frame, cameras at the top
    for e, ep in enumerate(eps):
        frames = decode(out / f"episode_{e:03d}.mp4")
        assert len(frames) == LENGTHS[e]
        vf = round(view.VIDEO_CAMERA_PX / HW[0])
        assert frames[0].shape[1] == max(480, 2 * HW[1] * vf + 2) + (
            max(480, 2 * HW[1] * vf + 2) % 2
        )
        assert frames[0].shape[0] % 2 == 0 and frames[0].shape[0] > HW[0] * vf
        for t, frame in enumerate(frames):
            want = view.upscale(ep["observation.images.wrist"][t], vf).astype(np.float64)
            x0 = HW[1] * vf + 2
            got = frame[: HW[0] * vf, x0 : x0 + HW[1] * vf].astype(np.float64)
            others = [
                np.abs(view.upscale(ep["observation.images.wrist"][u], vf) - got).mean()
                for u in range(LENGTHS[e])
            ]
            assert int(np.argmin(others)) == t  # frame t shows the dataset's frame t
            assert np.abs(want - got).mean() < 40  # random pixels: lossy but recognisable


def test_episode_selection_and_no_video(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "v"
    assert (
        main(
            [
                "view",
                str(dataset),
                "--out",
                str(out),
                "--episodes",
                "1",
                "--no-video",
                "--backend",
                "files",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png"]


def test_rerun_backend_logs_every_frame(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[tuple[str, Any]] = []
    calls: dict[str, Any] = {}

    fake = types.SimpleNamespace(
        init=lambda app, spawn=False: calls.setdefault("init", (app, spawn)),
        save=lambda path: calls.setdefault("save", path),
        set_time=lambda timeline, sequence: logged.append((f"time:{timeline}", sequence)),
        log=lambda path, value: logged.append((path, value)),
        Image=lambda img: ("image", img.shape),
        Scalars=lambda v: ("scalar", v),
    )
    monkeypatch.setitem(sys.modules, "rerun", fake)
    out = tmp_path / "v"
    assert main(["view", str(dataset), "--out", str(out)]) == 0
    n = sum(LENGTHS)
    images = [v for p, v in logged if p.startswith("cameras/")]
    assert len(images) == 2 * n and images[0] == ("image", (*HW, 3))
    assert sum(p == "reward" for p, _ in logged) == n
    assert [v for p, v in logged if p == "time:index"] == list(range(n))
    assert calls["save"] == str(out / "ds.rrd")


def test_rerun_requested_but_missing(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setitem(sys.modules, "rerun", None)
    assert main(["view", str(dataset), "--out", str(tmp_path / "v"), "--backend", "rerun"]) == 2
    assert "rerun-sdk" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(("arg", "message"), [("2", "episode 2 is out of range"), ("x", "0,2,5-7")])
def test_bad_episode_list(
    dataset: Path, tmp_path: Path, capsys: Any, arg: str, message: str
) -> None:
    assert main(["view", str(dataset), "--out", str(tmp_path / "v"), "--episodes", arg]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_missing_dataset(tmp_path: Path, capsys: Any) -> None:
    assert main(["view", str(tmp_path / "nope"), "--out", str(tmp_path / "v")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_damaged_data_file_is_one_line_and_exit_code_2(
    dataset: Path, tmp_path: Path, capsys: Any
) -> None:
    """The metadata reads, the frames do not: the error surfaces mid-command, still one line."""
    broken = tmp_path / "ds"
    shutil.copytree(dataset, broken)
    data = broken / "data/chunk-000/file-000.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    args = ["view", str(broken), "--out", str(tmp_path / "v"), "--backend", "files"]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("hilrl view: ") and str(data) in line and "parquet" in line
    assert not (tmp_path / "v").exists()


def test_info_json_of_another_version_is_named_not_file_not_found(
    dataset: Path, tmp_path: Path, capsys: Any
) -> None:
    broken = tmp_path / "ds"
    shutil.copytree(dataset, broken)
    info_path = broken / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v2.1"
    info_path.write_text(json.dumps(info))
    assert main(["view", str(broken), "--out", str(tmp_path / "v"), "--backend", "files"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"hilrl view: {info_path}: ")
    assert "'v2.1'" in line and "v3.0" in line and "not found" not in line
