"""The patch types a PATCH takes (API.md §6, §14), by media type, as the Kubernetes API server
takes them for a custom resource:

- ``application/merge-patch+json`` (and ``application/json``, the same): RFC 7386;
- ``application/json-patch+json``: RFC 6902, applied by the ``jsonpatch`` library; a failed
  ``test`` or a path that is not there is 422, a document that is not a patch 400;
- strategic merge patch: 415, as for every custom resource; server-side apply
  (``application/apply-patch+yaml``): 415 with a message naming client-side apply.

A patch is a function from the object (as a client would send it) to the patched object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from wegent.errors import BadRequest, Cause, Invalid, UnsupportedMediaType
from wegent.resources.decode import parse_json
from wegent.resources.merge_patch import merge_patch

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
ACCEPTED = (JSON_PATCH, MERGE, "application/json")

Patch = Callable[[dict[str, Any]], object]


def patch_of(content_type: str | None, body: bytes) -> Patch:
    """The patch a body means under its media type (JSON merge patch when none is given)."""
    media_type = (content_type or MERGE).split(";", 1)[0].strip().lower()
    if media_type in (MERGE, "application/json"):
        document = parse_json(body)
        return lambda target: merge_patch(target, document)
    if media_type == JSON_PATCH:
        return _json_patch(parse_json(body))
    if media_type == APPLY:
        raise UnsupportedMediaType(
            "server-side apply (application/apply-patch+yaml) is not supported by this server; "
            "use client-side apply: kubectl apply without --server-side"
        )
    raise UnsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(ACCEPTED)
    )


def _json_patch(document: object) -> Patch:
    if not isinstance(document, list) or not all(isinstance(op, dict) for op in document):
        raise BadRequest("a JSON patch (RFC 6902) is an array of operation objects")
    try:
        patch = jsonpatch.JsonPatch(document)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException) as exc:
        raise BadRequest(f"invalid JSON patch: {exc}") from None

    def apply(target: dict[str, Any]) -> object:
        try:
            return patch.apply(target)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise _unapplied("FieldValueInvalid", f"test failed: {exc}") from None
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
            raise _unapplied("FieldValueNotFound", f"cannot apply: {exc}") from None
        except (jsonpatch.InvalidJsonPatch, TypeError, ValueError) as exc:
            raise BadRequest(f"invalid JSON patch: {exc}") from None

    return apply


def _unapplied(reason: str, message: str) -> Invalid:
    return Invalid(
        f"the JSON patch could not be applied: {message}", causes=[Cause(reason, message)]
    )
