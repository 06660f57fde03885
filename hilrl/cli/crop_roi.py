"""``hilrl crop-roi``: crop and resize a dataset's cameras into a new dataset.

Rectangles come from ``--roi camera=top,left,height,width`` (repeatable) or, when none
is given and a display exists, from an OpenCV window per camera (``cv2.selectROI`` on
the first frame). The work is done by :mod:`hilrl.data.crop`; this module picks the
rectangles, reports what it wrote and prints the ``env.images`` YAML that applies the
same crop to live camera frames.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hilrl.config.loader import ConfigError

PICK_DISPLAY_PX = 512
"""Small camera images are enlarged (by a whole factor) to about this size for picking."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", help="the source dataset folder")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder of the new dataset (must not exist)"
    )
    parser.add_argument(
        "--roi",
        action="append",
        default=[],
        metavar="CAM=T,L,H,W",
        help="crop of one camera: top,left,height,width in pixels (repeat per camera); "
        "without any, pick them in a window when a display exists",
    )
    parser.add_argument(
        "--resize", default=None, metavar="H,W", help="resize every camera to H x W after cropping"
    )
    parser.add_argument(
        "--interpolation",
        choices=("area", "nearest"),
        default="area",
        help="resize filter (default area: the env's default)",
    )
    parser.add_argument(
        "--codec", default="auto", help="video encoder of the new dataset (default auto)"
    )
    parser.add_argument(
        "--image-storage",
        choices=("video", "image"),
        default=None,
        help="camera storage of the new dataset (default: as in the source)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def run(args: argparse.Namespace) -> int:
    # start-up: pyarrow and PyAV load when the verb runs, not for its --help
    from hilrl.data.crop import (
        config_snippet,
        crop_dataset,
        env_images,
        make_plan,
        parse_roi,
        parse_size,
    )
    from hilrl.data.lerobot import DatasetError, LeRobotDatasetReader
    from hilrl.runtime.record import RECORD_META, read_record_meta

    src = Path(args.dataset)
    out = Path(args.out)
    rois = dict(parse_roi(text) for text in args.roi)
    resize = parse_size(args.resize) if args.resize is not None else None
    try:
        reader = LeRobotDatasetReader(src)
    except DatasetError as exc:
        print(f"hilrl crop-roi: {exc}", file=sys.stderr)
        return 2
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError("--out", str(out), "already exists and is not empty")
    if not reader.num_episodes:
        raise ConfigError("DATASET", str(src), "has no episodes")
    if not rois:
        cv2 = _display_cv2()
        if cv2 is not None:
            rois = pick_rois(reader, cv2)
        elif resize is None:
            raise ConfigError(
                "--roi",
                None,
                f"no display to pick a rectangle in ({_why_no_picker()}); pass "
                "--roi camera=top,left,height,width (and/or --resize H,W)",
            )
    plan = make_plan(reader.features, rois, resize, args.interpolation)
    meta = read_record_meta(src)
    recorded_env = meta.get("env") if isinstance(meta.get("env"), dict) else None
    recorded_images = recorded_env.get("images") if recorded_env else None
    crops, env_resize, note = env_images(plan, recorded_images)
    extra: dict[str, str] = {}
    if meta:
        if recorded_env is not None and note is None:
            images = dict(recorded_images or {})
            images.update(
                crops={k: list(v) for k, v in crops.items()},
                resize=list(env_resize) if env_resize else None,
                interpolation=args.interpolation,
            )
            meta = {**meta, "env": {**recorded_env, "images": images}}
        extra[RECORD_META] = json.dumps(meta, indent=2) + "\n"

    bar = tqdm(
        total=reader.num_episodes,
        desc="crop-roi",
        unit="ep",
        file=sys.stderr,
        disable=not args.progress,
    )
    try:
        result = crop_dataset(
            reader,
            out,
            plan,
            video_codec=args.codec,
            image_storage=args.image_storage,
            on_episode=lambda _i, _n: bar.update(1),
            extra_files=extra,
        )
    except DatasetError as exc:
        print(f"hilrl crop-roi: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    for key, (h, w) in plan.sizes.items():
        crop = plan.crops.get(key)
        oh, ow = plan.output_size(key)
        what = (
            f"crop top={crop[0]} left={crop[1]} height={crop[2]} width={crop[3]}"
            if crop
            else "no crop"
        )
        print(f"crop-roi: {key}: {h}x{w} -> {what} -> {oh}x{ow}")
    print(
        f"crop-roi: wrote {result.episodes} episodes ({result.frames} frames) to {result.root}\n"
        "crop-roi: put this in the env config so live observations match the new dataset:"
    )
    print(config_snippet(crops, env_resize, args.interpolation, note), end="")
    return 0


def _why_no_picker() -> str:
    if not _has_display():
        return "DISPLAY is not set"
    return "OpenCV (cv2) is not installed"


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _display_cv2() -> Any | None:
    """OpenCV, when it is installed and a display exists (imported only here)."""
    if not _has_display():
        return None
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


def pick_rois(reader: Any, cv2: Any) -> dict[str, tuple[int, int, int, int]]:
    """Let the user drag a rectangle on the first frame of each camera (Esc / c: no crop)."""
    cams = reader.camera_keys
    first = next(iter(reader.iter_chunks(chunk_size=1, keys=cams)))
    rois: dict[str, tuple[int, int, int, int]] = {}
    for key in cams:
        img = np.asarray(first[key][0])
        h, w = img.shape[:2]
        scale = max(1, PICK_DISPLAY_PX // max(h, w))
        big = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)[:, :, ::-1].copy()
        name = key.rsplit(".", 1)[-1]
        title = f"crop {name}: drag a rectangle, Enter/Space accepts, c skips"
        x, y, bw, bh = (int(v) for v in cv2.selectROI(title, big, True, False))
        cv2.destroyWindow(title)
        if bw <= 0 or bh <= 0:
            continue
        top, left = min(h - 1, round(y / scale)), min(w - 1, round(x / scale))
        height = max(1, min(h - top, round(bh / scale)))
        width = max(1, min(w - left, round(bw / scale)))
        rois[name] = (top, left, height, width)
    return rois
