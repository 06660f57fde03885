"""Comparing network architectures: one digest and one shape comparison for every check.

A checkpoint records its tensors' names and shapes (and a digest of them plus the settings
that shape the networks); loading compares them with the model at hand, the actor's
handshake compares digests. :func:`first_shape_mismatch` names the first tensor that
differs, so that every refusal says which parameter is wrong and how.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Shapes = Mapping[str, Iterable[int]]
"""Tensor name -> shape."""


def architecture_digest(blob: Mapping[str, Any]) -> str:
    """SHA-256 of ``blob`` as canonical JSON (sorted keys): equal descriptions, equal digests."""
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ShapeMismatch:
    """The first tensor whose name or shape differs between a saved and a live model."""

    name: str
    saved: tuple[int, ...] | None
    """Its shape where it was saved; None: the saved model lacks it."""
    own: tuple[int, ...] | None
    """Its shape in the model at hand; None: this model lacks it."""

    @property
    def missing(self) -> bool:
        """One side lacks the tensor (rather than holding it with another shape)."""
        return self.saved is None or self.own is None

    def describe(self, saved_in: str = "the checkpoint", own_in: str = "this model") -> str:
        if self.own is None:
            return f"parameter '{self.name}' exists in {saved_in} but not in {own_in}"
        if self.saved is None:
            return f"parameter '{self.name}' of {own_in} is missing from {saved_in}"
        return (
            f"parameter '{self.name}' has shape {list(self.saved)} in {saved_in}, "
            f"{list(self.own)} in {own_in}"
        )


def first_shape_mismatch(saved: Shapes, own: Shapes) -> ShapeMismatch | None:
    """The first tensor (by name) that one side lacks or holds with another shape; None: equal."""
    a = {k: tuple(int(n) for n in v) for k, v in saved.items()}
    b = {k: tuple(int(n) for n in v) for k, v in own.items()}
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            return ShapeMismatch(name, a.get(name), b.get(name))
    return None
