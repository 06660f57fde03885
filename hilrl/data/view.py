"""Look at a dataset: a PNG contact sheet, one mp4 per episode, or a rerun recording.

* :func:`contact_sheet`: one row per episode, evenly spaced frames as tiles (cameras side
  by side), each labelled with episode, frame, reward and whether the operator was
  intervening; the tile border is orange while intervening and green where the reward
  is positive, so a glance shows where the human took over and where the task succeeded.
* :func:`episode_video`: every frame of an episode, cameras side by side, over a strip
  with the frame's numbers (reward, return, action, state) and a timeline of the whole
  episode (intervention bars, reward ticks, a cursor at the current frame).
* :func:`log_rerun`: the same data in rerun (images, scalars on frame timelines), for
  rerun-sdk users; the module is passed in, so nothing imports rerun unless asked.

Drawing uses PIL (no matplotlib per frame: thousands of frames must stay cheap); the
video is H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 Part 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hilrl.data.lerobot.features import ACTION, INTERVENTION, REWARD
from hilrl.types import IMAGE_PREFIX, STATE_KEY

INTERVENTION_RGB = (255, 140, 0)
REWARD_RGB = (40, 200, 80)
PLAIN_RGB = (90, 90, 90)
BACKGROUND_RGB = (24, 24, 28)
TEXT_RGB = (235, 235, 235)
CURSOR_RGB = (255, 255, 255)

SHEET_CAMERA_PX = 128
"""Camera images in the contact sheet are enlarged (whole factors) to about this height."""
VIDEO_CAMERA_PX = 192
"""Camera images in the mp4 are enlarged (whole factors) to about this height."""

SHEET_HEADER_H = 40
"""Contact sheet layout (pixels): title band, gap between tiles, tile border, label band.
Tile (row r, column c) starts at x = PAD + c * (tile_w + PAD), y = HEADER_H + r * (tile_h + PAD)
with its cameras at (x + BORDER, y + BORDER)."""
SHEET_PAD = 6
SHEET_BORDER = 3
SHEET_LABEL_H = 34


@dataclass
class EpisodeFrames:
    """One episode's arrays, as :meth:`LeRobotDatasetReader.episode` returns them."""

    index: int
    data: Mapping[str, np.ndarray]
    task: str = ""

    @property
    def length(self) -> int:
        return len(self.data["frame_index"])

    def column(self, key: str) -> np.ndarray:
        """A per-frame scalar column, zeros when the dataset does not have it."""
        if key in self.data:
            return np.asarray(self.data[key], dtype=np.float64).reshape(self.length, -1)[:, 0]
        return np.zeros(self.length)


def camera_keys(keys: Sequence[str]) -> list[str]:
    return sorted(k for k in keys if k.startswith(IMAGE_PREFIX))


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge by a whole factor (pixel repeat: sharp, exact)."""
    if factor == 1:
        return img
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def side_by_side(images: Sequence[np.ndarray], factor: int, gap: int = 2) -> np.ndarray:
    """Camera images left to right, enlarged by ``factor``, bottoms padded to one height."""
    big = [upscale(np.asarray(im, dtype=np.uint8), factor) for im in images]
    height = max(im.shape[0] for im in big)
    parts: list[np.ndarray] = []
    for i, im in enumerate(big):
        if i:
            parts.append(np.full((height, gap, 3), BACKGROUND_RGB, dtype=np.uint8))
        pad = np.full((height - im.shape[0], im.shape[1], 3), BACKGROUND_RGB, dtype=np.uint8)
        parts.append(np.concatenate([im, pad], axis=0))
    return np.concatenate(parts, axis=1)


def _factor(height: int, target: int) -> int:
    return max(1, round(target / max(height, 1)))


def _even(n: int) -> int:
    return n + (n % 2)


# ---------------------------------------------------------------------------- contact sheet
def sheet_frames(length: int, columns: int) -> list[int]:
    """Up to ``columns`` evenly spaced frame indices, first and last included."""
    if length <= 0:
        return []
    picks = np.linspace(0, length - 1, num=min(columns, length)).round().astype(int)
    return sorted({int(i) for i in picks})


def contact_sheet(
    episodes: Sequence[EpisodeFrames], columns: int, out_path: str | Path, title: str = ""
) -> tuple[int, int]:
    """Write the contact sheet PNG; returns its (width, height)."""

    if not episodes:
        raise ValueError("contact_sheet: no episodes")
    cams = camera_keys(list(episodes[0].data))
    if not cams:
        raise ValueError("contact_sheet: the dataset has no cameras")
    h0 = max(int(episodes[0].data[k].shape[1]) for k in cams)
    factor = _factor(h0, SHEET_CAMERA_PX)
    sample = side_by_side([episodes[0].data[k][0] for k in cams], factor)
    ph, pw = sample.shape[:2]
    border, label_h, pad = SHEET_BORDER, SHEET_LABEL_H, SHEET_PAD
    tile_w, tile_h = pw + 2 * border, ph + 2 * border + label_h
    header_h = SHEET_HEADER_H
    width = pad + columns * (tile_w + pad)
    height = header_h + len(episodes) * (tile_h + pad) + pad
    sheet = Image.new("RGB", (width, height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(sheet)
    font, small = _font(13), _font(11)
    names = ", ".join(k[len(IMAGE_PREFIX) :] for k in cams)
    draw.text((pad, 4), title or "dataset", fill=TEXT_RGB, font=font)
    draw.text(
        (pad, 21),
        f"cameras: {names}    border: orange = operator intervening, green = reward > 0",
        fill=TEXT_RGB,
        font=small,
    )
    for row, ep in enumerate(episodes):
        rewards = ep.column(REWARD)
        flags = ep.column(INTERVENTION) > 0.5
        y = header_h + row * (tile_h + pad)
        for col, t in enumerate(sheet_frames(ep.length, columns)):
            x = pad + col * (tile_w + pad)
            colour = INTERVENTION_RGB if flags[t] else REWARD_RGB if rewards[t] > 0 else PLAIN_RGB
            draw.rectangle([x, y, x + tile_w - 1, y + ph + 2 * border - 1], fill=colour)
            panel = side_by_side([ep.data[k][t] for k in cams], factor)
            sheet.paste(Image.fromarray(panel), (x + border, y + border))
            ty = y + ph + 2 * border + 2
            draw.text(
                (x + 2, ty), f"ep {ep.index}  f {t}/{ep.length - 1}", fill=TEXT_RGB, font=small
            )
            reward_text = f"r {rewards[t]:+.2f}  "
            draw.text(
                (x + 2, ty + 15),
                reward_text,
                fill=REWARD_RGB if rewards[t] > 0 else TEXT_RGB,
                font=small,
            )
            draw.text(
                (x + 2 + draw.textlength(reward_text, font=small), ty + 15),
                "OPERATOR" if flags[t] else "policy",
                fill=INTERVENTION_RGB if flags[t] else TEXT_RGB,
                font=small,
            )
    sheet.save(out_path, format="PNG", optimize=True)
    return width, height


# ---------------------------------------------------------------------------- video
def _encoder() -> str:
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # av.codec.codec.UnknownCodecError and friends
            continue
    raise RuntimeError("PyAV's FFmpeg has neither libx264 nor mpeg4 to write the mp4")


def _fmt_vec(v: np.ndarray, limit: int = 8) -> str:
    vals = " ".join(f"{x:+.2f}" for x in np.asarray(v).reshape(-1)[:limit])
    more = " ..." if np.asarray(v).size > limit else ""
    return f"[{vals}{more}]"


class _Strip:
    """Draws the info strip under the cameras for each frame of one episode."""

    def __init__(self, ep: EpisodeFrames, width: int, fps: int) -> None:
        self.ep, self.width, self.fps = ep, width, fps
        self.rewards = ep.column(REWARD)
        self.flags = ep.column(INTERVENTION) > 0.5
        self.returns = np.cumsum(self.rewards)
        self.font = _font(12)
        self.text_h = 62
        self.plot_h = 22
        self.height = self.text_h + self.plot_h + 6
        self.base = self._timeline()

    def _timeline(self) -> np.ndarray:
        """The episode timeline (without cursor): intervention bars, reward ticks."""

        img = Image.new("RGB", (self.width, self.plot_h), (45, 45, 52))
        draw = ImageDraw.Draw(img)
        n = self.ep.length
        for t in range(n):
            x0 = int(t * self.width / n)
            x1 = max(x0, int((t + 1) * self.width / n) - 1)
            if self.flags[t]:
                draw.rectangle([x0, 0, x1, self.plot_h // 2 - 1], fill=INTERVENTION_RGB)
            if self.rewards[t] > 0:
                draw.rectangle([x0, self.plot_h // 2, x1, self.plot_h - 1], fill=REWARD_RGB)
        return np.asarray(img)

    def render(self, t: int) -> np.ndarray:
        img = Image.new("RGB", (self.width, self.height), BACKGROUND_RGB)
        draw = ImageDraw.Draw(img)
        ep = self.ep
        who = "OPERATOR intervening" if self.flags[t] else "policy / idle"
        draw.text(
            (4, 2),
            f"episode {ep.index}  frame {t}/{ep.length - 1}  t {t / self.fps:.2f} s  {ep.task}",
            fill=TEXT_RGB,
            font=self.font,
        )
        draw.text(
            (4, 17),
            f"reward {self.rewards[t]:+.2f}  return {self.returns[t]:+.2f}  {who}",
            fill=INTERVENTION_RGB if self.flags[t] else TEXT_RGB,
            font=self.font,
        )
        if ACTION in ep.data:
            draw.text(
                (4, 32), f"action {_fmt_vec(ep.data[ACTION][t])}", fill=TEXT_RGB, font=self.font
            )
        if STATE_KEY in ep.data:
            draw.text(
                (4, 47), f"state  {_fmt_vec(ep.data[STATE_KEY][t])}", fill=TEXT_RGB, font=self.font
            )
        plot = self.base.copy()
        x = min(self.width - 1, int((t + 0.5) * self.width / ep.length))
        plot[:, max(0, x - 1) : x + 1] = CURSOR_RGB
        img.paste(Image.fromarray(plot), (0, self.text_h + 3))
        return np.asarray(img)


def episode_video(ep: EpisodeFrames, fps: int, out_path: str | Path) -> tuple[int, int, int]:
    """Write the episode's mp4; returns (frames, width, height)."""

    cams = camera_keys(list(ep.data))
    panels_h = max((int(ep.data[k].shape[1]) for k in cams), default=0)
    factor = _factor(panels_h, VIDEO_CAMERA_PX) if cams else 1
    first = side_by_side([ep.data[k][0] for k in cams], factor) if cams else None
    width = _even(max(first.shape[1] if first is not None else 0, 480))
    strip = _Strip(ep, width, fps)
    cam_h = first.shape[0] if first is not None else 0
    height = _even(cam_h + strip.height)
    encoder = _encoder()
    with av.open(str(out_path), "w") as container:
        stream: Any = container.add_stream(encoder, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if encoder == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        else:
            stream.bit_rate = 4_000_000
        for t in range(ep.length):
            canvas = np.empty((height, width, 3), dtype=np.uint8)
            canvas[:] = BACKGROUND_RGB
            if cams:
                panel = side_by_side([ep.data[k][t] for k in cams], factor)
                canvas[: panel.shape[0], : panel.shape[1]] = panel
            canvas[cam_h : cam_h + strip.height] = strip.render(t)
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return ep.length, width, height


# ---------------------------------------------------------------------------- rerun
def log_rerun(
    rr: Any,
    episodes: Sequence[EpisodeFrames],
    *,
    app_id: str = "hilrl_view",
    save_path: str | Path | None = None,
    spawn: bool = False,
) -> int:
    """Log the episodes to rerun (``rr`` is the imported ``rerun`` module); returns frames.

    Timelines: ``index`` (frames in dataset order) and ``frame_index`` (within the
    episode). Entities: ``cameras/<name>`` images, ``reward``, ``intervention``,
    ``episode`` and ``action/<i>`` / ``state/<i>`` scalars. Works with the rerun APIs
    before and after 0.23 (``set_time`` / ``Scalars`` vs ``set_time_sequence`` / ``Scalar``).
    """
    rr.init(app_id, spawn=spawn)
    if save_path is not None:
        rr.save(str(save_path))
    scalar = getattr(rr, "Scalars", None) or rr.Scalar

    def set_time(timeline: str, value: int) -> None:
        if hasattr(rr, "set_time"):
            rr.set_time(timeline, sequence=value)
        else:
            rr.set_time_sequence(timeline, value)

    count = 0
    for ep in episodes:
        cams = camera_keys(list(ep.data))
        rewards, flags = ep.column(REWARD), ep.column(INTERVENTION)
        for t in range(ep.length):
            set_time("index", count)
            set_time("frame_index", t)
            for k in cams:
                rr.log(f"cameras/{k[len(IMAGE_PREFIX) :]}", rr.Image(ep.data[k][t]))
            rr.log("reward", scalar(float(rewards[t])))
            rr.log("intervention", scalar(float(flags[t])))
            rr.log("episode", scalar(float(ep.index)))
            for name, key in (("action", ACTION), ("state", STATE_KEY)):
                if key in ep.data:
                    for i, v in enumerate(np.asarray(ep.data[key][t]).reshape(-1)):
                        rr.log(f"{name}/{i}", scalar(float(v)))
            count += 1
    return count
