"""JSON merge patch (RFC 7386), the body of a merge-patch PATCH (API.md §6)."""

from __future__ import annotations

from typing import Any

from wegent.errors import BadRequest


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 §2 ``MergePatch(Target, Patch)``. The result shares no dict or list with either
    input. A patch nested too deeply to recurse over is a BadRequest."""
    try:
        return _merge(target, patch)
    except RecursionError:
        raise BadRequest("the merge patch is nested too deeply") from None


def _merge(target: object, patch: object) -> object:
    """The RFC's pseudo-code, keeping the target's key order (patched keys stay in place,
    new keys come last, in the patch's order)."""
    if not isinstance(patch, dict):
        return _copy(patch)  # not an object: replaces the target
    source: dict[Any, Any] = target if isinstance(target, dict) else {}
    result: dict[Any, Any] = {}
    for name, value in source.items():
        if name not in patch:
            result[name] = _copy(value)
        elif patch[name] is not None:  # null deletes the member
            result[name] = _merge(value, patch[name])
    for name, value in patch.items():
        if name not in source and value is not None:
            result[name] = _merge(None, value)  # absent: merged into an empty object
    return result


def _copy(value: object) -> object:
    """A copy of a JSON value's containers (the leaves are immutable)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
