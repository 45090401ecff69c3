"""A session's events as server-sent events, read from the store: a stream on one instance sees
the writes of every other, and resumes from Last-Event-ID on whichever instance it reaches."""

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from ..sessions.backend import StoreUnavailable
from .deps import StoreDep, StreamedSession

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

# Redis stream ids: two 64-bit numbers; 19 digits keep each in range.
EVENT_ID_PATTERN = r"^\d{1,19}-\d{1,19}$"


@router.get("/{session_id}/events", response_class=EventSourceResponse)
async def stream_events(
    session: StreamedSession,
    store: StoreDep,
    response: Response,
    last_event_id: Annotated[str | None, Header(pattern=EVENT_ID_PATTERN)] = None,
) -> EventSourceResponse:
    """Without Last-Event-ID the stream replays the session's recent events first."""
    session_id = session.session_id

    async def events() -> AsyncIterator[ServerSentEvent]:
        after = last_event_id or "0-0"
        while True:
            try:
                entries = await store.read_events(session_id, after, block_ms=2_000)
            except StoreUnavailable:
                # End the stream; the client reconnects with Last-Event-ID and loses nothing.
                return
            for entry_id, fields in entries:
                after = entry_id
                event = orjson.loads(fields["data"])
                yield ServerSentEvent(id=entry_id, event=event["type"], data=fields["data"])
                if event["type"] == "deleted":
                    return

    # The headers the session's dependency set go with the stream, as with any other answer.
    return EventSourceResponse(events(), ping=15, headers=dict(response.headers))
