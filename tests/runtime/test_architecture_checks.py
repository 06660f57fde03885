"""hilrl.architecture: the digest and the first shape mismatch that every check reports."""

from __future__ import annotations

from hilrl.architecture import ShapeMismatch, architecture_digest, first_shape_mismatch


def test_digest_ignores_key_order_and_sees_any_change() -> None:
    a = {"tensors": {"w": [2, 3], "b": [3]}, "config": {"hidden": [8]}}
    b = {"config": {"hidden": [8]}, "tensors": {"b": [3], "w": [2, 3]}}
    assert architecture_digest(a) == architecture_digest(b)
    assert architecture_digest(a) != architecture_digest({**a, "config": {"hidden": [9]}})


def test_first_mismatch_names_the_tensor_and_both_sides() -> None:
    saved = {"a": [1], "b": [2, 3], "c": [4]}
    assert first_shape_mismatch(saved, {"a": (1,), "b": (2, 3), "c": (4,)}) is None
    shape = first_shape_mismatch(saved, {"a": [1], "b": [3, 2], "c": [4]})
    assert shape == ShapeMismatch("b", (2, 3), (3, 2)) and not shape.missing
    assert (
        shape.describe() == "parameter 'b' has shape [2, 3] in the checkpoint, [3, 2] in this model"
    )
    extra = first_shape_mismatch(saved, {"a": [1], "b": [2, 3]})
    assert extra == ShapeMismatch("c", (4,), None) and extra.missing
    assert extra.describe("the saved state") == (
        "parameter 'c' exists in the saved state but not in this model"
    )
    lacking = first_shape_mismatch({"a": [1]}, {"a": [1], "z": [5]})
    assert lacking is not None and lacking.missing
    assert (
        lacking.describe(own_in="the policy")
        == "parameter 'z' of the policy is missing from the checkpoint"
    )
