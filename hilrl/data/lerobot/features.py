"""Feature specifications (``info.json`` ``features``) and their parquet columns.

A feature is LeRobot's ``{"dtype", "shape", "names"[, "info"]}`` record. Numeric features
of shape ``(1,)`` are plain parquet scalars, shape ``(n,)`` a fixed-size list (what
Hugging Face ``datasets`` writes for ``Value`` / ``Sequence(length=n)``), ``image`` a
``struct<bytes: binary, path: string>`` holding PNG bytes, and ``video`` has no column: its
frames live in mp4 files.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError

from hilrl.data.lerobot.errors import DatasetError, FeatureError

NUMERIC_DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
CAMERA_DTYPES = ("video", "image")

DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
"""Columns every LeRobot dataset has; the writer fills them, frames must not carry them."""

IMAGE_NAMES = ["height", "width", "channels"]

# hilrl's own columns (see hilrl/types.py and the HIL-SERL recipe). LeRobot's replay-buffer
# export stores every complementary_info entry as float32 shape (1,) (``guess_feature_info``
# in lerobot/rl/buffer.py), so the intervention flag is float32 0/1 here too.
STATE = "observation.state"
ACTION = "action"
REWARD = "next.reward"
DONE = "next.done"
TRUNCATED = "next.truncated"
INTERVENTION = "complementary_info.is_intervention"
PENALTY = "complementary_info.discrete_penalty"
IMAGE_PREFIX = "observation.images."


@dataclass(frozen=True)
class Feature:
    """One validated entry of ``info.json``'s ``features``."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    names: Any = None
    info: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def is_camera(self) -> bool:
        return self.dtype in CAMERA_DTYPES

    @property
    def is_video(self) -> bool:
        return self.dtype == "video"

    @property
    def is_scalar(self) -> bool:
        return self.shape == (1,)

    @property
    def hwc(self) -> tuple[int, int, int]:
        """Image shape as (height, width, channels), whichever order ``shape`` uses.

        LeRobot records HWC with names ``[height, width, channels]``; its HIL-SERL recorder
        wrote CHW shapes with names ``[channels, height, width]``: both occur in the wild.
        """
        h, w, c = self.shape
        if isinstance(self.names, list) and self.names and self.names[0] in ("channels", "channel"):
            c, h, w = self.shape
        return h, w, c

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "names": self.names}
        if self.info is not None:
            out["info"] = self.info
        return out

    @classmethod
    def from_json(cls, name: str, spec: Any, source: str) -> Feature:
        """Parse one ``features`` entry of a dataset's info.json (errors name ``source``)."""
        if not isinstance(spec, Mapping):
            raise DatasetError(source, f"feature '{name}' is not an object")
        dtype = spec.get("dtype")
        shape = spec.get("shape")
        if not isinstance(dtype, str):
            raise DatasetError(source, f"feature '{name}' has no string 'dtype'")
        if (
            not isinstance(shape, list | tuple)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise DatasetError(source, f"feature '{name}' has an invalid shape {shape!r}")
        if dtype in CAMERA_DTYPES and len(shape) != 3:
            raise DatasetError(
                source, f"camera feature '{name}' must have a 3-D shape, got {shape}"
            )
        info = spec.get("info")
        return cls(
            name, dtype, tuple(shape), spec.get("names"), info if isinstance(info, dict) else None
        )


def user_features(
    features: Mapping[str, Mapping[str, Any]], image_storage: str
) -> dict[str, Feature]:
    """Validate the features a user hands to the writer and add the default columns.

    Camera features may be declared with dtype ``video`` or ``image``; ``image_storage``
    decides how they are stored. Numeric features must be 1-D.
    """
    if image_storage not in CAMERA_DTYPES:
        raise FeatureError("image_storage", image_storage, f"must be one of {CAMERA_DTYPES}")
    out: dict[str, Feature] = {}
    for name, spec in features.items():
        if name in DEFAULT_FEATURES:
            raise FeatureError(name, spec, "is filled in by the writer; do not declare it")
        if "/" in name or not name:
            raise FeatureError(name, spec, "names must be non-empty and contain no '/'")
        if not isinstance(spec, Mapping):
            raise FeatureError(name, spec, "must be a mapping with dtype, shape, names")
        dtype = spec.get("dtype")
        shape = spec.get("shape")
        if not isinstance(shape, list | tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise FeatureError(name, spec, "shape must be a list of positive ints")
        shape_t = tuple(int(d) for d in shape)
        names = spec.get("names")
        if dtype in CAMERA_DTYPES:
            if len(shape_t) != 3 or shape_t[2] != 3:
                raise FeatureError(name, spec, "camera shape must be (height, width, 3), RGB HWC")
            if image_storage == "video" and (shape_t[0] % 2 or shape_t[1] % 2):
                raise FeatureError(name, spec, "video height and width must be even (yuv420p)")
            out[name] = Feature(name, image_storage, shape_t, names or list(IMAGE_NAMES))
        elif dtype in NUMERIC_DTYPES:
            if len(shape_t) != 1:
                raise FeatureError(name, spec, "numeric features must be 1-D, e.g. [n]")
            if isinstance(names, list) and len(names) != shape_t[0]:
                raise FeatureError(name, spec, f"{len(names)} names for shape {shape_t}")
            out[name] = Feature(name, str(dtype), shape_t, names)
        else:
            raise FeatureError(name, spec, f"dtype must be one of {NUMERIC_DTYPES + CAMERA_DTYPES}")
    for name, spec in DEFAULT_FEATURES.items():
        out[name] = Feature(name, spec["dtype"], tuple(spec["shape"]), None)
    return out


def hilrl_features(
    state_dim: int,
    action_dim: int,
    cameras: Mapping[str, tuple[int, int]],
    state_names: list[str] | None = None,
    action_names: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The feature set hilrl records: state, cameras, action, reward, flags, penalty.

    ``cameras`` maps a camera name to its (height, width); images are RGB uint8 HWC.
    """
    feats: dict[str, dict[str, Any]] = {
        STATE: {"dtype": "float32", "shape": [state_dim], "names": state_names},
    }
    for cam, (h, w) in sorted(cameras.items()):
        feats[IMAGE_PREFIX + cam] = {"dtype": "video", "shape": [h, w, 3], "names": IMAGE_NAMES}
    feats[ACTION] = {"dtype": "float32", "shape": [action_dim], "names": action_names}
    feats[REWARD] = {"dtype": "float32", "shape": [1], "names": None}
    feats[DONE] = {"dtype": "bool", "shape": [1], "names": None}
    feats[TRUNCATED] = {"dtype": "bool", "shape": [1], "names": None}
    feats[INTERVENTION] = {"dtype": "float32", "shape": [1], "names": None}
    feats[PENALTY] = {"dtype": "float32", "shape": [1], "names": None}
    return feats


def arrow_type(feature: Feature) -> pa.DataType:
    """The parquet column type LeRobot (via Hugging Face ``datasets``) uses for a feature."""
    if feature.dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    value = pa.from_numpy_dtype(np.dtype(feature.dtype))
    if feature.is_scalar:
        return value
    return pa.list_(value, feature.shape[0])


def hf_feature(feature: Feature) -> dict[str, Any]:
    """The ``datasets`` feature description stored in the parquet schema metadata.

    With it, ``datasets.load_dataset("parquet", ...)`` decodes image columns as images.
    """
    if feature.dtype == "image":
        return {"_type": "Image"}
    value = {"dtype": feature.dtype, "_type": "Value"}
    if feature.is_scalar:
        return value
    return {"feature": value, "length": feature.shape[0], "_type": "Sequence"}


def to_arrow(feature: Feature, values: Any) -> pa.Array:
    """Build the column of one episode from stacked values (or PNG byte strings)."""
    if feature.dtype == "image":
        n = len(values)
        paths = [f"frame-{i:06d}.png" for i in range(n)]
        return pa.StructArray.from_arrays(
            [pa.array(values, pa.binary()), pa.array(paths, pa.string())], names=["bytes", "path"]
        )
    arr = np.ascontiguousarray(values, dtype=np.dtype(feature.dtype))
    if feature.is_scalar:
        return pa.array(arr.reshape(-1))
    flat = pa.array(arr.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, feature.shape[0])


def column_to_numpy(
    column: pa.ChunkedArray | pa.Array, feature: Feature, source: str
) -> np.ndarray:
    """Convert a parquet column to ``(n, *shape)`` numpy, checking it against the feature.

    Scalar features (shape ``(1,)``) come back as ``(n,)``.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count:
        raise DatasetError(source, f"column '{feature.name}' has {arr.null_count} null values")
    np_dtype = np.dtype(feature.dtype)
    t = arr.type
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        width = feature.shape[0] if len(feature.shape) == 1 else None
        if feature.is_scalar:
            width = 1
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if width is None or (len(lengths) and not np.all(lengths == width)):
            got = sorted({int(x) for x in lengths})[:5]
            raise DatasetError(
                source,
                f"column '{feature.name}' holds lists of length {got}, "
                f"but info.json says shape {list(feature.shape)}",
            )
        flat = pc.list_flatten(arr)
        if pa.types.is_list(flat.type) or pa.types.is_struct(flat.type):
            raise DatasetError(source, f"column '{feature.name}' is nested deeper than its shape")
        values = flat.to_numpy(zero_copy_only=False).astype(np_dtype, copy=False)
        out = values.reshape(len(arr), width)
        return out.reshape(-1) if feature.is_scalar else out
    if pa.types.is_struct(t) or pa.types.is_binary(t) or pa.types.is_string(t):
        raise DatasetError(source, f"column '{feature.name}' has type {t}, not numeric")
    if not feature.is_scalar:
        raise DatasetError(
            source,
            f"column '{feature.name}' holds scalars, but info.json says shape {list(feature.shape)}",
        )
    return arr.to_numpy(zero_copy_only=False).astype(np_dtype, copy=False)


def png_encode(image: np.ndarray) -> bytes:
    """PNG bytes of an HWC uint8 image (compression level 1: LeRobot's image writer's)."""

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_decode(data: bytes, feature: Feature, source: str) -> np.ndarray:
    """Decode PNG (or any PIL-readable) bytes to HWC uint8 and check the shape."""

    try:
        with Image.open(io.BytesIO(data)) as im:
            img = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(
            source, f"column '{feature.name}' holds an unreadable image ({exc})"
        ) from exc
    if img.shape != feature.hwc:
        raise DatasetError(
            source,
            f"column '{feature.name}' image has shape {img.shape}, info.json says {feature.hwc} (HWC)",
        )
    return img
