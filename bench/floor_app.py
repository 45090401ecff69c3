"""The floor of any store with kv's round trips: the in-memory baseline (inmemory_app.py), plus
one store round trip that does nothing wherever the generated store makes one: reading a
session with a seed (hydrate), storing the message (ask) and storing the reply (answer), so
GET makes one and POST two, as kv does.

Each round trip is a script that returns at once, sent through the generated app's own backend
(`app.state.store.backend`, on REDIS_URL), so it pays the client, the connection pool, the
network and the store's scheduling, and none of the store's work. The latency bench measures it
beside kv: kv's distance to it is what the store's work costs; its distance to the in-memory
baseline is what any design with those round trips costs on this machine.

Served by the latency bench as `uvicorn floor_app:app --app-dir bench`, on REDIS_URL; the
generated package is named by BENCH_PACKAGE (default `session_app`).
"""

import importlib
from typing import Any

import inmemory_app

READ = importlib.import_module(f"{inmemory_app.PACKAGE}.sessions.backend").Effect.READ


class FloorStore(inmemory_app.InMemoryStore):
    """InMemoryStore, with a round trip that does nothing where kv's store makes one."""

    def __init__(self, limits: Any, backend: Any) -> None:
        super().__init__(limits)
        self.backend = backend  # /healthz pings the real store

    async def _round_trip(self, session_id: str) -> None:
        await self.backend.run("return 1", [f"floor:{{{session_id}}}"], [], effect=READ)

    async def hydrate(self, session: Any, seed: str) -> Any:
        await self._round_trip(session.session_id)
        return await super().hydrate(session, seed)

    async def ask(self, session: Any, seed: str, *, expected_rev: int, **options: Any) -> None:
        await self._round_trip(session.session_id)
        await super().ask(session, seed, expected_rev=expected_rev, **options)

    async def answer(self, session: Any, seed: str, *, expected_rev: int, **options: Any) -> None:
        await self._round_trip(session.session_id)
        await super().answer(session, seed, expected_rev=expected_rev, **options)


app = inmemory_app.app
app.state.store = FloorStore(
    inmemory_app.generated_store.limits, inmemory_app.generated_store.backend
)
