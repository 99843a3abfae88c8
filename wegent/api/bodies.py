"""Request bodies through the project's own strict decoder, plugged into Litestar as a DTO.

So every handler gets a typed body whose failures are precise 422 causes (never the
framework's generic 400), unknown fields follow ``?fieldValidation`` (API.md §1), and the
OpenAPI document still shows each body's own schema.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
from litestar.dto import AbstractDTO, DTOConfig, DTOFieldDefinition
from litestar.enums import ScopeType
from litestar.openapi.spec import Reference, Schema
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.typing import FieldDefinition

from wegent.api.answers import warning_headers
from wegent.errors import BadRequest, UnsupportedMediaType
from wegent.k8s import protobuf
from wegent.resources.decode import decode
from wegent.resources.manifests import JSON_MEDIA_TYPES

T = TypeVar("T")
WARNINGS_KEY = "wegent.warnings"
#: The Struct of every ``StrictBody[...]`` by name, for the OpenAPI document
#: (``wegent.api.openapi`` documents them from msgspec's own schema).
BODY_TYPES: dict[str, type[msgspec.Struct]] = {}


class StrictBody(AbstractDTO[T], Generic[T]):
    """``dto=StrictBody[SomeStruct]`` on a handler whose ``data`` is ``SomeStruct``."""

    config = DTOConfig()
    accepted_media_types: ClassVar[frozenset[str]] = JSON_MEDIA_TYPES

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("model_type")
        if isinstance(model, type) and issubclass(model, msgspec.Struct):
            BODY_TYPES.setdefault(model.__name__, model)

    @classmethod
    def generate_field_definitions(
        cls, model_type: type[Any]
    ) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()  # no transfer model: msgspec decodes straight into the Struct

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def is_supported_model_type_field(cls, field_definition: FieldDefinition) -> bool:
        return False  # request bodies only; responses are encoded by the handlers

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        return None

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Reference | Schema:
        schema: Reference | Schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(cls.model_type)
        )
        return schema

    def decode_bytes(self, value: bytes) -> Any:
        self._check_media_type()
        return self._decode(value)

    def decode_builtins(self, value: dict[str, Any]) -> Any:
        return self._decode(value)

    def _check_media_type(self) -> None:
        content_type = self.asgi_connection.headers.get("content-type")
        check_media_type(content_type, self.accepted_media_types)

    def _decode(self, value: object) -> Any:
        connection = self.asgi_connection
        field_validation = connection.query_params.get("fieldValidation", "Warn")
        decoded = decode(value, self.model_type, field_validation=field_validation)
        if decoded.warnings:
            connection.scope.setdefault("state", {})[WARNINGS_KEY] = decoded.warnings
        return decoded.value


class KubernetesBody(StrictBody[T], Generic[T]):
    """A body of one of Kubernetes' built-in types, which client-go sends as protobuf with no
    fallback to JSON (API.md §14): decoded from either into the same Struct, with the same
    strict causes."""

    accepted_media_types: ClassVar[frozenset[str]] = JSON_MEDIA_TYPES | {protobuf.CONTENT_TYPE}

    def decode_bytes(self, value: bytes) -> Any:
        self._check_media_type()
        content_type = self.asgi_connection.headers.get("content-type") or ""
        if not protobuf.is_protobuf(content_type):
            return self._decode(value)
        try:
            return self._decode(protobuf.decode(value))
        except protobuf.ProtobufDecodeError as exc:
            raise BadRequest(f"the body could not be decoded: {exc}") from None


def check_media_type(content_type: str | None, accepted: frozenset[str]) -> None:
    """415 unless the body's media type (JSON when not given) is one of ``accepted``."""
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        raise UnsupportedMediaType(
            f'content type "{media_type}" is not supported; use one of: '
            + ", ".join(sorted(accepted))
        )


_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def add_warnings(app: ASGIApp) -> ASGIApp:
    """ASGI middleware for the framework's routes: the warnings their bodies' decoding left
    in the scope become ``Warning`` headers (the resource API adds its own to its answers)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] in _NO_BODY:
            await app(scope, receive, send)  # no body, so no unknown fields to warn about
            return

        async def send_with_warnings(message: Message) -> None:
            if message["type"] == "http.response.start":
                warnings = scope.get("state", {}).get(WARNINGS_KEY)
                if warnings:
                    message["headers"] = [*message.get("headers", []), *warning_headers(warnings)]
            await send(message)

        await app(scope, receive, send_with_warnings)

    return middleware
