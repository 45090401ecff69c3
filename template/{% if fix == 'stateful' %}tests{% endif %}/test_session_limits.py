"""A session grows only so far: past MAX_TURNS_PER_SESSION or MAX_SESSION_BYTES an input gets
409 session_full (over HTTP) or a `session_full` error (on the socket, which stays open), and the
transcript already stored stays whole."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .cluster import StoreCluster, new_prefix, running
from .conftest import Deployment, RealtimeCluster, instance_env
from .owner_client import create, open_socket, post_message, receive, say, texts

MAX_TURNS = 6
MAX_BYTES = 16_384


@pytest.fixture(scope="module")
def limited(
    redis_url: str, upstream: str, store: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One owner and two API instances with small limits, under a name no other test uses."""
    prefix = new_prefix()
    env = {
        **instance_env(redis_url, prefix, upstream),
        "MAX_TURNS_PER_SESSION": str(MAX_TURNS),
        "MAX_SESSION_BYTES": str(MAX_BYTES),
    }
    workdir: Path = tmp_path_factory.mktemp("limits")
    owner = RealtimeCluster(env=env, workdir=workdir, store=store, prefix=prefix)
    kind = f"limits-{uuid.uuid4().hex[:8]}"
    api = StoreCluster(env=env, workdir=workdir, kind=kind, store=store, prefix=prefix)
    with running(owner, 1), running(api, 2):
        yield Deployment(api=api, realtime=owner)
        api.empty_store()


def test_a_full_session_refuses_the_next_message_and_keeps_its_transcript(
    limited: Deployment,
) -> None:
    a, b = limited.api.clients
    session_id = create(a)["session_id"]
    for number, client in enumerate((a, b, a), start=1):
        sent = post_message(client, session_id, f"m{number}")
        assert sent.status_code == 200, sent.text

    for client in (a, b):
        refused = post_message(client, session_id, "one more")
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "session_full"

    assert texts(b, session_id)[::2] == ["m1", "m2", "m3"]


def test_the_socket_of_a_full_session_says_so_and_stays_open(limited: Deployment) -> None:
    a, _ = limited.api.clients
    created = create(a)
    with open_socket(created["connect"]) as socket:
        assert receive(socket)["type"] == "ready"
        for number in range(1, 4):
            assert say(socket, f"m{number}")[0] == f"m{number}"
        socket.send('{"text": "one more"}')
        assert receive(socket) == {"type": "error", "code": "session_full"}
        # Still open: the session can be read, and the socket keeps serving it.
        socket.send('{"text": "and another"}')
        assert receive(socket) == {"type": "error", "code": "session_full"}
    assert len(texts(a, created["session_id"])) == MAX_TURNS


def test_a_session_never_grows_past_its_size_limit(limited: Deployment, store: redis.Redis) -> None:
    a, b = limited.api.clients
    session_id = create(a)["session_id"]
    big = "x" * 4_000  # the reply quotes it: each exchange adds about 8 KB
    for client in (a, b):
        sent = post_message(client, session_id, big)
        assert sent.status_code == 200, sent.text

    # Six turns would be allowed; 24 KB is not.
    refused = post_message(a, session_id, big)
    assert refused.status_code == 409
    assert refused.json()["code"] == "session_full"

    assert len(texts(b, session_id)) == 4
    stored = store.hget(limited.api.keys.session(session_id), "doc")
    assert isinstance(stored, str)
    assert len(stored.encode()) <= MAX_BYTES
