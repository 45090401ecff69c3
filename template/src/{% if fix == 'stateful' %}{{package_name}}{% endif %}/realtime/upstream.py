"""Upstream: one session's connection to the upstream realtime service, the inputs it takes,
and the ways an input can fail."""

import asyncio
import base64
import contextlib
from typing import Literal

import orjson
from pydantic import BaseModel, Field, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ..errors import ClientError
from ..sessions.models import Session


class UpstreamUnavailable(ClientError):
    """The upstream service refused, dropped, timed out or sent a frame we cannot read."""

    code = "upstream_unavailable"


class MessageInvalid(ClientError):
    """An input that is not a message this service takes."""

    code = "message_invalid"


class AudioTooLarge(ClientError):
    code = "audio_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"An audio chunk may hold at most {limit} bytes; send longer audio in chunks."
        )


class AudioEmpty(ClientError):
    code = "audio_empty"

    def __init__(self) -> None:
        super().__init__("The request body held no audio.")


class Input(BaseModel):
    """One input for a session, from its browser socket or from an API instance's inbox post."""

    kind: Literal["text", "audio", "close"]
    request_id: str = ""
    idempotency_key: str = ""  # the HTTP request's Idempotency-Key, if it sent one
    text: str = Field(default="", max_length=4_000)
    audio: str = ""  # base64, as it travels through the inbox

    def upstream_frame(self) -> str | bytes:
        if self.kind == "audio":
            return base64.b64decode(self.audio)
        return orjson.dumps({"type": "input.text", "text": self.text}).decode()


class UpstreamReply(BaseModel):
    heard: str  # the input as the upstream understood it (the transcription, for audio)
    text: str


class Upstream:
    """One session's connection to the upstream realtime service."""

    def __init__(self, connection: ClientConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout

    @classmethod
    async def open(cls, url: str, session: Session, *, answer_within: float) -> "Upstream":
        try:
            connection = await connect(url, open_timeout=answer_within)
            history = [{"role": turn.role, "text": turn.text} for turn in session.turns]
            # The new connection continues the conversation: the upstream gets the transcript.
            start = {"type": "session.start", "history": history}
            await connection.send(orjson.dumps(start).decode())
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        return cls(connection, answer_within)

    async def exchange(self, item: Input) -> UpstreamReply:
        try:
            # Bounded: a hung upstream must not hold the session's lock, and its inputs, forever.
            async with asyncio.timeout(self._timeout):
                await self._connection.send(item.upstream_frame())
                return UpstreamReply.model_validate_json(await self._connection.recv())
        except TimeoutError:
            raise UpstreamUnavailable(f"no answer within {self._timeout:g} s") from None
        except ValidationError as exc:
            raise UpstreamUnavailable(f"unexpected frame: {exc.errors()[0]['msg']}") from None
        except (OSError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc

    async def close_quietly(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already; we are done with it
            await self._connection.close()
