"""What the tests do as a browser or a script would: create, connect to the owner, talk."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol


def create(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/api/sessions")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@contextmanager
def open_socket(connect_info: dict[str, Any], url: str = "") -> Iterator[ClientConnection]:
    """The session's socket, at its connect URL or at `url`, its token presented as the API
    said: among the subprotocols, never in the URL."""
    protocols = [Subprotocol(protocol) for protocol in connect_info["protocols"]]
    with connect(url or connect_info["url"], subprotocols=protocols, open_timeout=10) as socket:
        yield socket


def with_token(connect_info: dict[str, Any], token: str) -> dict[str, Any]:
    """`connect_info` presenting another token (a bad one, in tests of refusals)."""
    return {**connect_info, "protocols": [connect_info["protocol"], f"token.{token}"]}


def receive(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=10))
    return message


def turns(socket: ClientConnection, count: int) -> list[str]:
    """The texts of the next `count` turns on the socket, each after its exchange's reply,
    which its deltas streamed first."""
    texts: list[str] = []
    replied = 0
    streamed = ""
    while len(texts) < count:
        event = receive(socket)
        if event["type"] == "delta":
            streamed += event["text"]
            continue
        if event["type"] == "audio":
            continue
        if event["type"] == "reply":
            assert event["text"] == streamed, "the deltas add up to the whole reply"
            streamed = ""
            replied += 1
            continue
        assert event["type"] == "turn", event
        assert replied * 2 > len(texts), "the reply comes before the turns that record it"
        texts.append(event["turn"]["text"])
    return texts


def say(socket: ClientConnection, text: str) -> list[str]:
    """Send a message on the socket; the texts of the two turns it comes back as."""
    socket.send(json.dumps({"text": text}))
    return turns(socket, 2)


def close_of(socket: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close the socket; its close code and reason."""
    try:
        while True:
            socket.recv(timeout=10)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")


def post_message(client: httpx.Client, session_id: str, text: str) -> httpx.Response:
    return client.post(f"/api/sessions/{session_id}/messages", json={"text": text})


def texts(client: httpx.Client, session_id: str) -> list[str]:
    response = client.get(f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    return [turn["text"] for turn in response.json()["turns"]]
