"""Upstream: one session's connection to the realtime model service, in the OpenAI Realtime
protocol (GA event names), the inputs it takes, and the ways an input can fail.

The adapter interface is `RealtimeProvider` (open a provider session for a stored transcript)
and `RealtimeConnection` (send a client event, iterate server events, close). `OpenAIRealtime`
implements it for OpenAI and for anything that speaks its protocol, the development upstream
included; `Upstream` runs one exchange (an input, the streamed reply, its end) over any of them.
"""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, Field
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ..errors import ClientError
from ..sessions.models import Session, Turn
from ..settings import Settings

# One event of the protocol, as JSON: {"type": "response.create", ...}.
ClientEvent = dict[str, Any]
ServerEvent = dict[str, Any]
# Where the owner sends what streams in while a reply is in progress: deltas, audio.
Relay = Callable[[dict[str, object]], Awaitable[None]]
OutputModality = Literal["text", "audio"]

# A cancel that crossed the reply's end: the reply is whole, and nothing is wrong.
HARMLESS_ERRORS = frozenset({"response_cancel_not_active"})
# Spoken input whose transcription never came: the reply stands, and the turn says so.
UNTRANSCRIBED = "[untranscribed audio]"


class UpstreamUnavailable(ClientError):
    """The upstream service refused, dropped, timed out or sent a frame we cannot read."""

    code = "upstream_unavailable"


class UpstreamSilent(UpstreamUnavailable):
    """The upstream sent nothing for UPSTREAM_TIMEOUT_SECONDS."""


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
    audio: str = ""  # base64 PCM16, as it travels through the inbox and the protocol

    def client_events(self) -> list[ClientEvent]:
        """The input as the protocol takes it, up to the request for a reply."""
        if self.kind == "audio":
            # The owner decides where a turn ends (turn detection is off): commit, then reply.
            said: list[ClientEvent] = [
                {"type": "input_audio_buffer.append", "audio": self.audio},
                {"type": "input_audio_buffer.commit"},
            ]
        else:
            said = [{"type": "conversation.item.create", "item": message_item("user", self.text)}]
        return [*said, {"type": "response.create"}]


class Exchange(BaseModel):
    """One finished exchange: what the upstream heard, and all it said."""

    heard: str  # the input as the upstream understood it (the transcription, for audio)
    text: str  # the reply's text, or the transcript of its audio
    status: str  # "completed", or "cancelled" (barge-in) or "incomplete": the text said so far


def message_item(role: str, text: str) -> ClientEvent:
    content_type = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]}


def opening_events(turns: tuple[Turn, ...], output: OutputModality) -> list[ClientEvent]:
    """A new provider session that continues the stored conversation."""
    # PCM16 mono at 24 kHz, the protocol's default audio format, both ways.
    pcm16 = {"type": "audio/pcm", "rate": 24_000}
    configure = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": [output],
            "audio": {
                "input": {
                    "format": pcm16,
                    # Inputs arrive whole (a message, a posted chunk): no voice activity detection.
                    "turn_detection": None,
                    # The transcript of spoken input is what the stored transcript keeps.
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                },
                "output": {"format": pcm16},
            },
        },
    }
    replay = [
        {"type": "conversation.item.create", "item": message_item(turn.role, turn.text)}
        for turn in turns
    ]
    return [configure, *replay]


class RealtimeConnection(Protocol):
    """One provider session: client events in, server events out."""

    async def send(self, event: ClientEvent) -> None: ...

    def __aiter__(self) -> AsyncIterator[ServerEvent]: ...

    async def close(self) -> None: ...


class RealtimeProvider(Protocol):
    async def open(self, session: Session) -> RealtimeConnection:
        """A new provider session that has heard the session's stored transcript."""
        ...


class OpenAIRealtime:
    """The OpenAI Realtime API over WebSocket, or any service that speaks it."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        model: str,
        output: OutputModality = "text",
        open_within: float = 5.0,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._model = model
        self._output = output
        self._open_within = open_within

    async def open(self, session: Session) -> "OpenAIRealtimeConnection":
        address = f"{self.url}?{urlencode({'model': self._model})}"
        try:
            socket = await connect(
                address,
                additional_headers={"Authorization": f"Bearer {self._api_key}"},
                open_timeout=self._open_within,
                # Audio deltas are large; the provider bounds them, not us.
                max_size=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        connection = OpenAIRealtimeConnection(socket)
        for event in opening_events(session.turns, self._output):
            await connection.send(event)
        return connection


def provider_of(settings: Settings) -> OpenAIRealtime:
    """The upstream as configured: OpenAI, or the development upstream, which takes any key."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "development"
    return OpenAIRealtime(
        settings.upstream_url,
        api_key=key,
        model=settings.upstream_model,
        output=settings.upstream_output,
        open_within=settings.upstream_timeout_seconds,
    )


class OpenAIRealtimeConnection:
    """A provider session over one WebSocket; iterating it reads server events until it ends."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket

    async def send(self, event: ClientEvent) -> None:
        try:
            await self._socket.send(orjson.dumps(event).decode())
        except (OSError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc

    def __aiter__(self) -> "OpenAIRealtimeConnection":
        return self

    async def __anext__(self) -> ServerEvent:
        # recv() may be cancelled (a timeout) and called again: no frame is lost in between.
        try:
            frame = await self._socket.recv()
        except (OSError, WebSocketException) as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        try:
            event = orjson.loads(frame)
        except orjson.JSONDecodeError:
            raise UpstreamUnavailable("unexpected frame: not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise UpstreamUnavailable("unexpected frame: not a server event")
        return event

    async def close(self) -> None:
        await self._socket.close()


class Upstream:
    """One session's provider connection, used one exchange at a time."""

    def __init__(self, connection: RealtimeConnection, *, silent_within: float) -> None:
        self._connection = connection
        self._events = aiter(connection)
        self._silent_within = silent_within
        self._responding = False

    @classmethod
    async def open(
        cls, provider: RealtimeProvider, session: Session, *, silent_within: float
    ) -> "Upstream":
        try:
            async with asyncio.timeout(silent_within):
                connection = await provider.open(session)
        except TimeoutError:
            raise UpstreamUnavailable(f"not open within {silent_within:g} s") from None
        return cls(connection, silent_within=silent_within)

    async def exchange(self, item: Input, relay: Relay, *, longest: int) -> Exchange:
        """Send one input, relay the reply as it streams, and return it once it is done.

        A reply longer than `longest` characters could never be stored: it is refused as it
        grows, so a runaway upstream cannot hold the session, or the owner's memory, forever.
        """
        heard: str | None = item.text if item.kind == "text" else None
        heard_item = ""  # the committed audio's item, whose transcription `heard` waits for
        said: list[str] = []
        length = 0
        status: str | None = None
        self._responding = True
        try:
            for event in item.client_events():
                await self._connection.send(event)
            # Spoken input is transcribed beside the reply: the exchange ends with both.
            while status is None or heard is None:
                try:
                    event = await self._next()
                except UpstreamSilent:
                    if status is None:
                        raise
                    heard = UNTRANSCRIBED  # the reply is whole; only the transcription is late
                    break
                kind = event["type"]
                if kind in ("response.output_text.delta", "response.output_audio_transcript.delta"):
                    delta = str(event["delta"])
                    length += len(delta)
                    if length > longest:
                        raise UpstreamUnavailable(f"a reply longer than {longest} characters")
                    said.append(delta)
                    await relay({"type": "delta", "text": delta})
                elif kind == "response.output_audio.delta":
                    await relay({"type": "audio", "audio": event["delta"]})
                elif kind == "input_audio_buffer.committed":
                    heard_item = str(event["item_id"])
                elif kind == "conversation.item.input_audio_transcription.completed":
                    if event.get("item_id") == heard_item:
                        heard = str(event["transcript"])
                elif kind == "conversation.item.input_audio_transcription.failed":
                    if event.get("item_id") == heard_item:
                        heard = "[inaudible]"
                elif kind == "response.done":
                    self._responding = False
                    status = str(event["response"].get("status"))
                    if status == "failed":
                        raise UpstreamUnavailable(f"the reply failed: {failure_of(event)}")
                elif kind == "error" and event["error"].get("code") not in HARMLESS_ERRORS:
                    raise UpstreamUnavailable(f"upstream error: {event['error'].get('message')}")
        except (KeyError, TypeError, AttributeError) as exc:
            raise UpstreamUnavailable(f"unexpected frame: no {exc}") from None
        finally:
            self._responding = False
        return Exchange(heard=heard, text="".join(said), status=status)

    async def cancel(self) -> None:
        """Barge-in: stop the reply in progress; its exchange ends with what was said so far."""
        if self._responding:
            await self._connection.send(
                {"type": "response.cancel", "event_id": f"cancel_{secrets.token_hex(6)}"}
            )

    async def _next(self) -> ServerEvent:
        # Bounded: a hung upstream must not hold the session's lock, and its inputs, forever.
        try:
            async with asyncio.timeout(self._silent_within):
                return await anext(self._events)
        except TimeoutError:
            raise UpstreamSilent(f"silent for {self._silent_within:g} s") from None
        except StopAsyncIteration:
            raise UpstreamUnavailable("the upstream ended the session") from None

    async def close_quietly(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already; we are done with it
            await self._connection.close()


def failure_of(done: ServerEvent) -> str:
    details = done["response"].get("status_details") or {}
    error = details.get("error") or {}
    return str(error.get("message") or error.get("code") or "no reason given")
