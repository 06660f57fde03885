"""Crop and resize the camera images of a dataset into a new dataset, episode by episode.

The transform is the env's own (:class:`~hilrl.envs.wrappers.images.ImageCropResize`:
slice, then :class:`~hilrl.envs.wrappers.images.Resizer`), so a policy trained on the
cropped dataset sees exactly what an env configured with the printed
``env.images.crops`` / ``env.images.resize`` produces live.

Episode boundaries are kept exactly: frames stream in dataset order and an episode is
saved when its own last frame (``frame_index == length - 1``) has been added, so every
output episode has the length, frames and task of its source episode (the reference
tool shifted each episode's first frame into the previous one). The new dataset is
written to a hidden sibling folder and renamed into place only when complete, so a
failure leaves no half-written dataset behind.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hilrl.config.loader import ConfigError
from hilrl.data.lerobot import DatasetWriter
from hilrl.data.lerobot.features import DEFAULT_FEATURES, IMAGE_NAMES, Feature
from hilrl.envs.wrappers.images import Resizer
from hilrl.types import IMAGE_PREFIX

Crop = tuple[int, int, int, int]
"""(top, left, height, width) in pixels."""

_ROI = re.compile(r"^\s*([^=\s]+)\s*=\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*[,x]\s*(\d+)\s*$")


def parse_roi(text: str) -> tuple[str, Crop]:
    """``'front=10,20,64,80'`` -> ``('front', (10, 20, 64, 80))``."""
    m = _ROI.match(text)
    if m is None:
        raise ConfigError("--roi", text, "expected camera=top,left,height,width (integers)")
    top, left, height, width = (int(g) for g in m.groups()[1:])
    return m.group(1), (top, left, height, width)


def parse_size(text: str, name: str = "--resize") -> tuple[int, int]:
    """``'64,64'`` or ``'64x64'`` -> ``(64, 64)`` (height, width)."""
    m = _SIZE.match(text)
    if m is None or min(int(m.group(1)), int(m.group(2))) <= 0:
        raise ConfigError(name, text, "expected HEIGHT,WIDTH (positive integers)")
    return int(m.group(1)), int(m.group(2))


def camera_key(name: str, cameras: list[str], field_name: str = "--roi") -> str:
    """The feature key of camera ``name`` ('front' or 'observation.images.front')."""
    key = name if name.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + name
    if key not in cameras:
        short = [c[len(IMAGE_PREFIX) :] if c.startswith(IMAGE_PREFIX) else c for c in cameras]
        raise ConfigError(field_name, name, f"no such camera; the dataset has cameras {short}")
    return key


@dataclass(frozen=True)
class CropPlan:
    """Per-camera crops (by feature key), one common resize, and the resize filter."""

    sizes: dict[str, tuple[int, int]]
    """Source (height, width) of every camera feature."""
    crops: dict[str, Crop] = field(default_factory=dict)
    resize: tuple[int, int] | None = None
    interpolation: str = "area"

    def output_size(self, key: str) -> tuple[int, int]:
        if self.resize is not None:
            return self.resize
        crop = self.crops.get(key)
        return (crop[2], crop[3]) if crop is not None else self.sizes[key]

    def transforms(self) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        """One function per camera: (H, W, 3) uint8 source frame -> output frame."""

        out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        for key, (h, w) in self.sizes.items():
            crop = self.crops.get(key)
            rows, cols = slice(0, h), slice(0, w)
            if crop is not None:
                top, left, ch, cw = crop
                rows, cols, h, w = slice(top, top + ch), slice(left, left + cw), ch, cw
            resizer = Resizer((h, w), self.resize, self.interpolation) if self.resize else None

            def apply(
                img: np.ndarray, rows: slice = rows, cols: slice = cols, rs: Any = resizer
            ) -> np.ndarray:
                part = img[rows, cols]
                return rs(part) if rs is not None else np.ascontiguousarray(part)

            out[key] = apply
        return out


def make_plan(
    features: Mapping[str, Feature],
    rois: Mapping[str, Crop],
    resize: tuple[int, int] | None,
    interpolation: str = "area",
) -> CropPlan:
    """Validate ``rois`` (camera name -> crop) against the dataset's cameras and sizes."""
    if interpolation not in ("area", "nearest"):
        raise ConfigError("--interpolation", interpolation, "choose 'area' or 'nearest'")
    cameras = [k for k, f in features.items() if f.is_camera]
    if not cameras:
        raise ConfigError("DATASET", "", "the dataset has no camera features to crop")
    sizes = {k: features[k].hwc[:2] for k in cameras}
    crops: dict[str, Crop] = {}
    for name, crop in rois.items():
        key = camera_key(name, cameras)
        top, left, height, width = crop
        h, w = sizes[key]
        text = f"{name}={top},{left},{height},{width}"
        if top < 0 or left < 0 or height <= 0 or width <= 0:
            raise ConfigError("--roi", text, "offsets must be >= 0 and sizes > 0")
        if top + height > h or left + width > w:
            raise ConfigError(
                "--roi",
                text,
                f"leaves the {h}x{w} (height x width) image of camera '{name}': needs "
                f"top + height <= {h} and left + width <= {w}",
            )
        crops[key] = crop
    if resize is not None and min(resize) <= 0:
        raise ConfigError("--resize", resize, "needs a positive (height, width)")
    return CropPlan(sizes, crops, resize, interpolation)


def check_storage(plan: CropPlan, image_storage: str) -> None:
    """Video needs even sizes (yuv420p); say which camera and how to fix it."""
    if image_storage != "video":
        return
    for key in plan.sizes:
        h, w = plan.output_size(key)
        if h % 2 or w % 2:
            field_name = "--resize" if plan.resize is not None else "--roi"
            raise ConfigError(
                field_name,
                f"{key[len(IMAGE_PREFIX) :]}: {h}x{w}",
                "video storage needs an even height and width; choose an even crop or "
                "--resize, or --image-storage image",
            )


def output_features(features: Mapping[str, Feature], plan: CropPlan) -> dict[str, dict[str, Any]]:
    """The source's features with every camera at its new size (HWC)."""
    out: dict[str, dict[str, Any]] = {}
    for name, feat in features.items():
        if name in DEFAULT_FEATURES:
            continue
        if feat.is_camera:
            h, w = plan.output_size(name)
            out[name] = {"dtype": "video", "shape": [h, w, 3], "names": list(IMAGE_NAMES)}
        else:
            out[name] = {"dtype": feat.dtype, "shape": list(feat.shape), "names": feat.names}
    return out


@dataclass
class CropResult:
    """What :func:`crop_dataset` wrote."""

    root: Path
    episodes: int
    frames: int
    lengths: list[int]


def crop_dataset(
    reader: Any,
    out_root: str | Path,
    plan: CropPlan,
    *,
    video_codec: str = "auto",
    image_storage: str | None = None,
    chunk_size: int = 512,
    on_episode: Callable[[int, int], None] | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> CropResult:
    """Write ``reader``'s dataset to ``out_root`` with ``plan`` applied to every camera.

    ``image_storage`` None keeps the source's (video when any camera is a video).
    ``out_root`` must not exist (or be an empty folder). ``on_episode(index, length)``
    is called after each saved episode; ``extra_files`` (path relative to the root ->
    text) are written into the new dataset before it is moved into place.
    """

    out_root = Path(out_root)
    if out_root.exists() and (not out_root.is_dir() or any(out_root.iterdir())):
        raise ConfigError("--out", str(out_root), "already exists and is not empty")
    if out_root.resolve() == Path(reader.root).resolve():
        raise ConfigError("--out", str(out_root), "must differ from the source dataset")
    storage = image_storage or ("video" if reader.video_keys else "image")
    check_storage(plan, storage)
    feats = output_features(reader.features, plan)
    keep = [k for k in feats if not reader.features[k].is_camera]
    cams = [k for k in feats if reader.features[k].is_camera]
    transforms = plan.transforms()
    lengths = reader.episode_lengths
    tasks = {ep.index: (ep.tasks[0] if ep.tasks else "unknown") for ep in reader.episodes}
    tmp = out_root.parent / f".{out_root.name}.crop-partial"
    shutil.rmtree(tmp, ignore_errors=True)
    out_root.parent.mkdir(parents=True, exist_ok=True)
    written: list[int] = []
    try:
        writer = DatasetWriter(
            tmp,
            fps=reader.fps,
            features=feats,
            robot_type=reader.info.get("robot_type"),
            video_codec=video_codec,
            image_storage=storage,
        )
        with writer:
            for chunk in reader.iter_chunks(chunk_size=chunk_size):
                ep_idx = chunk["episode_index"]
                frame_idx = chunk["frame_index"]
                for i in range(len(ep_idx)):
                    frame: dict[str, Any] = {k: chunk[k][i] for k in keep}
                    for k in cams:
                        frame[k] = transforms[k](chunk[k][i])
                    writer.add_frame(frame)
                    ep = int(ep_idx[i])
                    if int(frame_idx[i]) == lengths[ep] - 1:
                        if writer.episode_frames != lengths[ep]:
                            raise RuntimeError(
                                f"episode {ep}: {writer.episode_frames} frames buffered, "
                                f"{lengths[ep]} expected"
                            )
                        writer.save_episode(tasks[ep])
                        written.append(lengths[ep])
                        if on_episode is not None:
                            on_episode(ep, lengths[ep])
        for rel, text in (extra_files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        if out_root.exists():
            out_root.rmdir()  # an empty folder (checked above)
        tmp.rename(out_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CropResult(out_root, len(written), sum(written), written)


# ---------------------------------------------------------------------------- config
def env_images(
    plan: CropPlan, recorded: Mapping[str, Any] | None
) -> tuple[dict[str, Crop], tuple[int, int] | None, str | None]:
    """``env.images`` crops / resize that reproduce ``plan`` on live camera frames.

    The dataset's images may already be cropped / resized by the env they were
    recorded with (``recorded`` = that env's ``images`` section). Crops compose by
    adding offsets; after a recorded resize, a new crop or resize has no exact
    equivalent on the raw frames: the third value then says so (else None).
    """
    short = {k: k[len(IMAGE_PREFIX) :] for k in plan.sizes}
    new = {short[k]: c for k, c in plan.crops.items()}
    old: dict[str, Crop] = {}
    old_resize = None
    if recorded:
        old = {
            k: (int(v[0]), int(v[1]), int(v[2]), int(v[3]))
            for k, v in (recorded.get("crops") or {}).items()
        }
        r = recorded.get("resize")
        old_resize = (int(r[0]), int(r[1])) if r else None
    if old_resize is not None and (new or plan.resize is not None):
        return (
            new,
            plan.resize,
            f"the dataset was recorded with env.images.resize={list(old_resize)}; these values "
            "are relative to the dataset's images and have no exact equivalent on the raw "
            "camera frames",
        )
    crops = dict(old)
    for cam, (top, left, h, w) in new.items():
        if cam in old:
            crops[cam] = (old[cam][0] + top, old[cam][1] + left, h, w)
        else:
            crops[cam] = (top, left, h, w)
    return crops, plan.resize, None


def config_snippet(
    crops: Mapping[str, Crop],
    resize: tuple[int, int] | None,
    interpolation: str,
    note: str | None = None,
) -> str:
    """The YAML ``env.images`` section for a config file."""
    lines = []
    if note:
        lines.append(f"# note: {note}")
    lines += ["env:", "  images:"]
    if crops:
        lines.append("    crops:")
        for cam in sorted(crops):
            top, left, h, w = crops[cam]
            lines.append(f"      {cam}: [{top}, {left}, {h}, {w}]  # top, left, height, width")
    else:
        lines.append("    crops: {}")
    lines.append(f"    resize: [{resize[0]}, {resize[1]}]" if resize else "    resize: null")
    lines.append(f"    interpolation: {interpolation}")
    return "\n".join(lines) + "\n"
