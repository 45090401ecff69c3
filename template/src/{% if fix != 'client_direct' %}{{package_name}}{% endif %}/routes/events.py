"""A session's events as server-sent events, read from the store: a stream on one instance sees
the writes of every other, and resumes from Last-Event-ID on whichever instance it reaches.

Streams do not read the store themselves: the instance's EventHub reads for all of them, so
idle streams hold no Redis connection, and past MAX_STREAMS_PER_INSTANCE a stream is refused
(503 too_many_streams) while every other request is still served.
"""

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from ..sessions.backend import StoreUnavailable
from ..sessions.keyspace import SessionDeleted, SessionUnreadable
from .deps import HubDep, StreamedSession

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

# Redis stream ids: two 64-bit numbers; 19 digits keep each in range.
EVENT_ID_PATTERN = r"^\d{1,19}-\d{1,19}$"


@router.get("/{session_id}/events", response_class=EventSourceResponse)
async def stream_events(
    session: StreamedSession,
    hub: HubDep,
    response: Response,
    last_event_id: Annotated[str | None, Header(pattern=EVENT_ID_PATTERN)] = None,
) -> EventSourceResponse:
    """Without Last-Event-ID the stream replays the session's recent events first. Resuming
    from an event the stream no longer holds, it starts with a `reset` event carrying the
    session's snapshot, then the events after it."""
    # Counted (and refused past the limit) before the response starts.
    listener = hub.listen(
        session.session_id, last_event_id or "0-0", resuming=last_event_id is not None
    )

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            snapshot = await listener.snapshot_if_trimmed()
            if snapshot is not None:
                data = orjson.dumps({"type": "reset", **snapshot.session.model_dump(mode="json")})
                # No id when the snapshot includes no event: the client keeps its own.
                event_id = None if snapshot.event_id == "0-0" else snapshot.event_id
                yield ServerSentEvent(id=event_id, event="reset", data=data.decode())
            async for entry_id, fields in listener.entries():
                event = orjson.loads(fields["data"])
                yield ServerSentEvent(id=entry_id, event=event["type"], data=fields["data"])
                if event["type"] == "deleted":
                    return
        except SessionDeleted:
            yield ServerSentEvent(event="deleted", data='{"type":"deleted"}')
        except (StoreUnavailable, SessionUnreadable):
            # End the stream; the client reconnects with Last-Event-ID and loses nothing (an
            # unreadable session: on an instance that holds the key it was sealed with).
            return
        finally:
            listener.close()

    # The headers the session's dependency set go with the stream, as with any other answer.
    # The listener is also closed when the response ends, should the stream never have begun.
    return EventSourceResponse(
        events(), ping=15, headers=dict(response.headers), background=BackgroundTask(listener.close)
    )
