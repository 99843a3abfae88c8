"""The corked transport (``wegent.api.transport.Corked``): an answer's head and body leave in
one write; nothing is held past the turn of the event loop, or past a close."""

from __future__ import annotations

import asyncio
from typing import Any

from wegent.api.transport import Corked


class Recorder:
    """The transport under uvicorn, as far as Corked uses it: records what is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sent.append(("write", data))

    def writelines(self, lines: Any) -> None:
        self.sent.append(("writelines", list(lines)))

    def close(self) -> None:
        self.sent.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


async def turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_head_and_its_body_leave_in_one_write() -> None:
    recorder = Recorder()
    corked = Corked(recorder)  # type: ignore[arg-type]
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b"{}")
    assert recorder.sent == [("writelines", [b"HTTP/1.1 200 OK\r\n\r\n", b"{}"])]
    await turn()
    assert len(recorder.sent) == 1  # nothing left to send


async def test_a_lone_write_leaves_at_the_end_of_the_turn() -> None:
    recorder = Recorder()
    corked = Corked(recorder)  # type: ignore[arg-type]
    corked.write(bytearray(b"chunk"))  # copied: the caller may reuse its buffer
    assert recorder.sent == []
    await turn()
    assert recorder.sent == [("write", b"chunk")]
    assert type(recorder.sent[0][1]) is bytes


async def test_closing_sends_what_is_held_first() -> None:
    recorder = Recorder()
    corked = Corked(recorder)  # type: ignore[arg-type]
    corked.write(b"last words")
    corked.close()
    await turn()
    assert recorder.sent == [("write", b"last words"), ("close", None)]


async def test_nothing_is_written_to_a_connection_that_closed_meanwhile() -> None:
    recorder = Recorder()
    corked = Corked(recorder)  # type: ignore[arg-type]
    corked.write(b"head")
    recorder.closing = True  # the client went away within the turn
    await turn()
    corked.write(b"head")
    corked.write(b"body")
    assert recorder.sent == []
