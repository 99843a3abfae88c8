"""The HTTP protocol ``wegent serve`` runs: uvicorn's httptools protocol with limits on the
request head that its parser does not have (API.md §13), writing each answer in one piece.

httptools keeps a header line in memory until it ends, so one 32 MiB line, or a dozen
unfinished ones on a dozen connections, took hundreds of MiB. Here a request head is at most
``MAX_HEADER_BYTES`` (request line and headers) and ``MAX_HEADER_FIELDS`` fields: past either,
the answer is 431 and the connection closes. While the head is still arriving, bytes are
counted as they are received, so an unfinished line cannot grow past the limit either.

Its transport is :class:`Corked`: uvicorn writes an answer's head and body apart, and they
leave together. ``wegent serve`` runs uvicorn with this protocol (its ``http`` setting);
everything else is uvicorn's httptools protocol unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from wegent.api.errors import status_body
from wegent.errors import RequestHeaderFieldsTooLarge

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100
# A head is refused as it arrives once this much has come without it ending: the limit, plus one
# read of the socket (which may also hold the start of the body).
_RECEIVED_BOUND = MAX_HEADER_BYTES + 256 * 1024
_TOO_LARGE = status_body(
    RequestHeaderFieldsTooLarge(
        f"the request head is too large: at most {MAX_HEADER_BYTES} bytes "
        f"and {MAX_HEADER_FIELDS} header fields"
    )
)


class HeadersTooLarge(Exception):
    """Raised in a parser callback to stop parsing; answered with 431."""


class Corked:
    """A connection's transport whose writes are sent together: uvicorn writes an answer's
    head and its body apart, two system calls and two packets, and the client wakes for each.
    A write is held until the next write (then both go in one ``writelines``) or the end of
    this turn of the event loop, whichever comes first; closing sends what is held first."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data) if type(data) is not bytes else data
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            if not self._transport.is_closing():
                self._transport.writelines((held, data))

    def flush(self) -> None:
        """Send what is held; dropped if the connection has closed meanwhile (nobody to read
        it, and uvloop refuses writes to a closed transport)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def set_protocol(self, protocol: Any) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring, on a
    :class:`Corked` transport."""

    _head_bytes = 0
    _head_fields = 0
    _head_received = 0
    _in_head = True
    _too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Corked(transport))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        self._head_bytes = self._head_fields = self._head_received = 0
        self._in_head = True
        super().on_message_begin()

    # Called for every header of every request: counted inline, no helper call.
    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        self._head_fields += 1
        if self._head_bytes > MAX_HEADER_BYTES or self._head_fields > MAX_HEADER_FIELDS:
            self._too_large = True
            raise HeadersTooLarge
        HttpToolsProtocol.on_header(self, name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        # The request line is counted once it is whole (until then the received bytes bound it).
        if self._head_bytes + len(self.url) > MAX_HEADER_BYTES:
            self._too_large = True
            raise HeadersTooLarge
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_received += len(data)
            if self._head_received > _RECEIVED_BOUND:
                self._too_large = True
                self.send_400_response("request head too large")
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers a parser failure with this; a head over the limits gets its 431."""
        if not self._too_large:
            super().send_400_response(msg)
            return
        head = [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + _TOO_LARGE)
        self.transport.close()
