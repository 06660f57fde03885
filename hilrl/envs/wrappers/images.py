"""Per-camera crop, then resize, of the uint8 camera images.

Cheap by construction (this runs on every frame of every step): the crop is a slice; an
'area' resize by whole factors is an integer block sum, any other 'area' resize two small
matrix products with precomputed box-overlap weights (exact area averaging, as OpenCV's
INTER_AREA for shrinking), and 'nearest' one fancy-index gather with precomputed indices.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.types import IMAGE_PREFIX, Observation


def area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix: row i averages the source pixels under output pixel i's footprint."""
    scale = src / dst
    edges_lo = np.arange(dst) * scale
    edges_hi = edges_lo + scale
    pix = np.arange(src)
    overlap = np.clip(
        np.minimum(edges_hi[:, None], pix[None, :] + 1)
        - np.maximum(edges_lo[:, None], pix[None, :]),
        0.0,
        None,
    )
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def nearest_index(src: int, dst: int) -> np.ndarray:
    """Source index sampled by each output pixel (its centre's nearest source pixel)."""
    return np.minimum(((np.arange(dst) + 0.5) * (src / dst)).astype(np.int64), src - 1)


def area_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse form of :func:`area_weights`: (dst, K) source indices and weights (0-padded)."""
    w = area_weights(src, dst)
    k = int((w > 0).sum(axis=1).max())
    index = np.zeros((dst, k), dtype=np.int64)
    weight = np.zeros((dst, k), dtype=np.float32)
    for i in range(dst):
        nz = np.flatnonzero(w[i])
        index[i, : len(nz)] = nz
        weight[i, : len(nz)] = w[i, nz]
    return index, weight


class Resizer:
    """Resizes (h, w, 3) uint8 images to ``size`` with a plan fixed at construction.

    'area' by whole factors: integer block sums (uint16 adds of strided slices, exact
    rounding); 'area' otherwise: separable box filter as a few weighted gathers per axis
    (each output pixel overlaps at most ceil(scale) + 1 source pixels); 'nearest' (and
    'area' when enlarging): one gather.
    """

    def __init__(self, src: tuple[int, int], size: tuple[int, int], interpolation: str) -> None:
        if interpolation not in ("area", "nearest"):
            raise ValueError(f"interpolation must be 'area' or 'nearest', got {interpolation!r}")
        (h, w), (oh, ow) = src, size
        self.src = (h, w)
        self.size = (oh, ow)
        self.identity = (h, w) == (oh, ow)
        self.block: tuple[int, int] | None = None
        if interpolation == "area" and h % oh == 0 and w % ow == 0 and (h // oh) * (w // ow) < 256:
            self.block = (h // oh, w // ow)
        self.nearest = interpolation == "nearest" or (oh >= h and ow >= w)
        self.rows = nearest_index(h, oh)[:, None]
        self.cols = nearest_index(w, ow)[None, :]
        self.row_taps = area_taps(h, oh)
        self.col_taps = area_taps(w, ow)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.identity:
            return np.ascontiguousarray(img)
        if self.block is not None:
            return self._block(img)
        if self.nearest:
            return img[self.rows, self.cols]
        return self._area(img)

    def _block(self, img: np.ndarray) -> np.ndarray:
        assert self.block is not None
        fh, fw = self.block
        oh, ow = self.size
        rows = np.ascontiguousarray(img).reshape(oh, fh, -1)
        total = rows[:, 0].astype(np.uint16)
        for i in range(1, fh):
            total += rows[:, i]
        cols = total.reshape(oh, ow, fw, 3)
        out = cols[:, :, 0].copy()
        for j in range(1, fw):
            out += cols[:, :, j]
        n = fh * fw
        return ((out + n // 2) // n).astype(np.uint8)

    def _area(self, img: np.ndarray) -> np.ndarray:
        ri, rw = self.row_taps
        ci, cw = self.col_taps
        src = img.astype(np.float32)
        tmp = rw[:, 0, None, None] * src[ri[:, 0]]
        for k in range(1, ri.shape[1]):
            tmp += rw[:, k, None, None] * src[ri[:, k]]
        out = cw[None, :, 0, None] * tmp[:, ci[:, 0]]
        for k in range(1, ci.shape[1]):
            out += cw[None, :, k, None] * tmp[:, ci[:, k]]
        out += 0.5
        return out.astype(np.uint8)  # weights sum to 1: values stay in [0, 255.5)


class ImageCropResize(gym.ObservationWrapper[Observation, np.ndarray, Observation]):
    """Crops each camera by its (top, left, height, width), then resizes all to ``resize``."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        crops: Mapping[str, tuple[int, int, int, int]],
        resize: tuple[int, int] | None = None,
        interpolation: str = "area",
    ) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        out_spaces = dict(space.spaces)
        self.plans: dict[str, tuple[tuple[slice, slice] | None, Resizer | None]] = {}
        for key, sub in space.spaces.items():
            if not key.startswith(IMAGE_PREFIX):
                continue
            assert isinstance(sub, spaces.Box) and sub.shape is not None
            cam = key[len(IMAGE_PREFIX) :]
            h, w = sub.shape[:2]
            crop = crops.get(cam)
            window = None
            if crop is not None:
                top, left, ch, cw = crop
                if top < 0 or left < 0 or ch <= 0 or cw <= 0 or top + ch > h or left + cw > w:
                    raise ValueError(f"crop {crop} of camera '{cam}' leaves its {h}x{w} image")
                window = (slice(top, top + ch), slice(left, left + cw))
                h, w = ch, cw
            resizer = Resizer((h, w), resize, interpolation) if resize is not None else None
            if resizer is not None and resizer.identity:
                resizer = None
            if window is None and resizer is None:
                continue
            self.plans[key] = (window, resizer)
            oh, ow = resize if resize is not None else (h, w)
            out_spaces[key] = spaces.Box(0, 255, (oh, ow, 3), np.uint8)
        unknown = set(crops) - {
            k[len(IMAGE_PREFIX) :] for k in space.spaces if k.startswith(IMAGE_PREFIX)
        }
        if unknown:
            raise ValueError(
                f"crops name cameras {sorted(unknown)} that are not in the observation"
            )
        self.observation_space = spaces.Dict(out_spaces)

    def observation(self, observation: Observation) -> Observation:
        if not self.plans:
            return observation
        out = dict(observation)
        for key, (window, resizer) in self.plans.items():
            img = observation[key]
            if window is not None:
                img = img[window]
            out[key] = resizer(img) if resizer is not None else np.ascontiguousarray(img)
        return out
