"""The broken baseline: the generated app with sessions in a process-local dict.

Everything but storage is the generated project's own code: `create_app` builds the app, so the
routes, models, hydration dependency and seed codec are identical; only `app.state.store` is
swapped for `InMemoryStore`. That is the bug the template exists to prevent (each instance has
its own dict), so the latency bench serves it from ONE instance, where it still works.

Served by the latency bench as `uvicorn inmemory_app:app --app-dir bench`. The generated package
is named by BENCH_PACKAGE (default `session_app`). `create_app` still demands REDIS_URL and
SESSION_KEYS; the bench points REDIS_URL at a closed port, so any stray use of Redis would fail
loudly rather than quietly make the baseline slower.
"""

import asyncio
import importlib
import itertools
import os
import time
from collections import defaultdict
from typing import Any

import orjson

PACKAGE = os.environ.get("BENCH_PACKAGE", "session_app")
_app_module = importlib.import_module(f"{PACKAGE}.app")
_store_module = importlib.import_module(f"{PACKAGE}.sessions.store")
Stored = _store_module.Stored
SessionDeleted = _store_module.SessionDeleted
WriteConflict = _store_module.WriteConflict

# (entry id, fields) pairs, as SessionStore.read_events returns them.
StreamEntries = list[tuple[str, dict[str, str]]]


class NullBackend:
    """What `/healthz` pings; there is nothing to reach."""

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class InMemoryStore:
    """SessionStore's methods and semantics, on dicts in this process.

    Same rules as the Lua scripts: writes compare-and-set on the revision, a seed hydrates only
    over nothing or an older revision, and a deleted session stays deleted. Sessions are kept as
    the `Stored` objects themselves, with no serialisation, as a naive dict-based app would.
    """

    def __init__(self, limits: Any) -> None:
        self.backend = NullBackend()
        self.limits = limits  # the generated app's session limits, checked as the routes do
        self._sessions: dict[str, Any] = {}  # session id -> Stored
        self._deleted: set[str] = set()
        self._events: defaultdict[str, StreamEntries] = defaultdict(list)
        self._sequence = itertools.count(1)
        self._kept: dict[tuple[str, str], str] = {}

    async def load(self, session_id: str) -> Any:
        if session_id in self._deleted:
            raise SessionDeleted(session_id)
        return self._sessions.get(session_id)

    async def hydrate(self, session: Any, seed: str) -> Any:
        if session.session_id in self._deleted:
            raise SessionDeleted(session.session_id)
        current = self._sessions.get(session.session_id)
        if current is None or current.session.rev < session.rev:
            current = self._sessions[session.session_id] = Stored(session, seed)
        return current

    async def write(
        self, session: Any, seed: str, *, expected_rev: int, events: list[dict[str, object]]
    ) -> None:
        if session.session_id in self._deleted:
            raise SessionDeleted(session.session_id)
        current = self._sessions.get(session.session_id)
        if (current.session.rev if current else 0) != expected_rev:
            raise WriteConflict(session.session_id)
        self._sessions[session.session_id] = Stored(session, seed)
        for event in events:
            self._append(session.session_id, event)

    # The streamed reply (routes/sessions.py, Exchange): the message is stored before the
    # provider is asked, each delta is an event, and the reply is stored with its `turn`.
    async def kept_answer(self, session_id: str, idempotency_key: str) -> str | None:
        return self._kept.get((session_id, idempotency_key))

    async def ask(self, session: Any, seed: str, *, expected_rev: int, **options: Any) -> None:
        await self.write(session, seed, expected_rev=expected_rev, events=[_turn(session)])
        self._keep(session, options.get("pending"))

    async def stream_delta(self, session_id: str, *args: Any, **options: Any) -> None:
        for event in [*args, *options.values()][-1:]:
            if isinstance(event, dict):
                self._append(session_id, event)

    async def answer(self, session: Any, seed: str, *, expected_rev: int, **options: Any) -> None:
        for event in options.get("deltas") or ():
            self._append(session.session_id, event)
        await self.write(session, seed, expected_rev=expected_rev, events=[_turn(session)])
        self._keep(session, options.get("answer"))

    async def abandon(self, session_id: str, lease_token: str) -> None:
        return None

    async def reply_streaming(self, session_id: str) -> bool:
        return False

    def _keep(self, session: Any, answer: Any) -> None:
        if answer is not None:
            self._kept[(session.session_id, answer.key)] = answer.record

    async def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._deleted.add(session_id)
        self._append(session_id, {"type": "deleted"})

    async def read_events(self, session_id: str, after: str, block_ms: int) -> StreamEntries:
        deadline = time.monotonic() + block_ms / 1000
        while True:
            entries = [entry for entry in self._events[session_id] if _after(entry[0], after)]
            if entries or time.monotonic() >= deadline:
                return entries[:100]
            await asyncio.sleep(0.01)

    def _append(self, session_id: str, event: dict[str, object]) -> None:
        # Stream-style ids ("<ms>-<n>") so Last-Event-ID works as it does with Redis.
        entry_id = f"{int(time.time() * 1000)}-{next(self._sequence)}"
        self._events[session_id].append((entry_id, {"data": orjson.dumps(event).decode()}))


def _turn(session: Any) -> dict[str, object]:
    return {"type": "turn", "rev": session.rev, "turn": session.turns[-1].model_dump(mode="json")}


def _after(entry_id: str, after: str) -> bool:
    def key(value: str) -> tuple[int, int]:
        millis, _, number = value.partition("-")
        return int(millis), int(number or 0)

    return key(entry_id) > key(after)


app = _app_module.create_app()
# The store create_app built, never used here (floor_app.py borrows its backend).
generated_store = app.state.store
app.state.store = InMemoryStore(generated_store.limits)
