"""Lookups that fill something in on a miss without making up a session."""

import asyncio
from fastapi import FastAPI

app = FastAPI()
_answers_in_flight: dict[str, asyncio.Future[str]] = {}
CATALOGUE: dict[str, dict[str, list[str]]] = {"books": {}}


def load_user(user_id: str, session: dict[str, str] | None = None) -> dict[str, str]:
    if session is None:
        session = {}
    session["user"] = user_id
    return session


@app.get("/rooms/{room_id}/members")
async def members(room_id: str) -> dict[str, list[str]]:
    by_room: dict[str, list[str]] = {}
    for member in ["a:1", "b:2"]:
        room, _, name = member.partition(":")
        if room not in by_room:
            by_room[room] = []
        by_room[room].append(name)
    return {"members": by_room.get(room_id, [])}


@app.get("/users/{user_id}")
async def user(user_id: str) -> dict[str, str]:
    return load_user(user_id)


@app.get("/answers")
async def answer(question: str) -> str:
    if question not in _answers_in_flight:
        _answers_in_flight[question] = asyncio.get_running_loop().create_future()
    return await _answers_in_flight[question]


@app.get("/catalogue/{shelf}/{session_id}")
async def shelf(shelf: str, session_id: str) -> list[str]:
    books = CATALOGUE["books"]
    if shelf not in books:
        books[shelf] = []
    return books[shelf]
