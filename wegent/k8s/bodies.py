"""Request bodies of Kubernetes' own types (API.md §14), in JSON or in Kubernetes protobuf.

client-go sends built-in types (``DeleteOptions``, ``Namespace``, the reviews) as protobuf and
does not retry in JSON, so each of these bodies is read from either media type into the same
dict, then converted to a Struct; a body that does not fit is a 400, as the API server answers
a body it cannot decode.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec

from wegent.errors import BadRequest, UnsupportedMediaType
from wegent.k8s import protobuf
from wegent.resources.decode import parse_json
from wegent.resources.manifests import JSON_MEDIA_TYPES

T = TypeVar("T")
MEDIA_TYPES = JSON_MEDIA_TYPES | {protobuf.CONTENT_TYPE}


def read(content_type: str | None, body: bytes, type_: type[T], what: str) -> T:
    """``body`` (JSON unless the content type says protobuf) as ``type_``; unknown fields are
    ignored, as the API server ignores them in these types."""
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f'content type "{media_type}" is not supported; use one of: '
            + ", ".join(sorted(MEDIA_TYPES))
        )
    if media_type == protobuf.CONTENT_TYPE:
        try:
            value: object = protobuf.decode(body)
        except protobuf.UnsupportedKindError as exc:
            raise BadRequest(f"a {what} was expected, not {exc.api_version} {exc.kind}") from None
        except protobuf.ProtobufDecodeError as exc:
            raise BadRequest(f"the {what} could not be decoded: {exc}") from None
    else:
        value = parse_json(body)
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"the {what} could not be decoded: {exc}") from None


class Preconditions(msgspec.Struct, omit_defaults=True):
    """What must still hold of the object for the delete to go ahead (409 otherwise)."""

    uid: str | None = None
    resourceVersion: str | None = None


class DeleteOptions(msgspec.Struct, omit_defaults=True):
    """``meta/v1`` ``DeleteOptions`` as kubectl sends it (``kind`` and ``apiVersion`` optional).
    ``propagationPolicy``, ``orphanDependents`` and ``gracePeriodSeconds`` are accepted: every
    delete here is the soft delete of API.md §6."""

    apiVersion: str | None = None
    kind: Literal["DeleteOptions"] | None = None
    gracePeriodSeconds: int | None = None
    preconditions: Preconditions | None = None
    orphanDependents: bool | None = None
    propagationPolicy: Literal["Orphan", "Background", "Foreground"] | None = None
    dryRun: list[Literal["All"]] = []

    @property
    def dry_run(self) -> bool:
        return bool(self.dryRun)


NO_OPTIONS = DeleteOptions()


def delete_options(content_type: str | None, body: bytes) -> DeleteOptions:
    """A DELETE's options: none when it has no body."""
    if not body:
        return NO_OPTIONS
    return read(content_type, body, DeleteOptions, "DeleteOptions")


def schema() -> dict[str, Any]:
    """The JSON schema of DeleteOptions, for the OpenAPI documents."""
    return msgspec.json.schema(DeleteOptions)
