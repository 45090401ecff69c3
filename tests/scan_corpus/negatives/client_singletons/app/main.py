"""Shared clients and process plumbing: one per process by design, never session state."""

import logging
import threading
from collections.abc import Callable

import aiohttp
import redis.asyncio as redis
import requests
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

app = FastAPI()
logger = logging.getLogger(__name__)
engine = create_async_engine("postgresql+asyncpg://localhost/app")
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
store = redis.from_url("redis://localhost")

_http_session: aiohttp.ClientSession | None = None
_sync_session: requests.Session | None = None
_worker_thread: threading.Thread | None = None
_container: dict[type, object] = {}
_callbacks: dict[str, list[Callable[[str], None]]] = {}


def http_session() -> aiohttp.ClientSession:
    global _http_session
    if _http_session is None:
        _http_session = aiohttp.ClientSession()
    return _http_session


def sync_session() -> requests.Session:
    global _sync_session
    if _sync_session is None:
        _sync_session = requests.Session()
    return _sync_session


def start_worker() -> None:
    global _worker_thread
    if _worker_thread is None:
        _worker_thread = threading.Thread(target=lambda: None, daemon=True)
        _worker_thread.start()


def provide(kind: type, instance: object) -> None:
    _container[kind] = instance


def on(event: str, callback: Callable[[str], None]) -> None:
    _callbacks.setdefault(event, []).append(callback)


@app.get("/items/{item_id}")
async def read_item(item_id: str) -> dict[str, str]:
    start_worker()
    provide(type(store), store)
    on("read", logger.info)
    async with SessionLocal() as db:
        await db.execute("select 1")
    async with http_session().get(f"https://example.com/{item_id}") as response:
        body = await response.text()
    sync_session().get("https://example.com")
    logger.info("read %s", item_id)
    return {"item": body}
