"""A session grows only so far: past MAX_TURNS_PER_SESSION or MAX_SESSION_BYTES a message gets
409 session_full on every instance, and the transcript already stored stays whole."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .cluster import StoreCluster, new_prefix, running
from .conftest import instance_env

MAX_TURNS = 6
MAX_BYTES = 16_384


@pytest.fixture(scope="module")
def limited(
    redis_url: str, store: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreCluster]:
    """Two instances with small limits, under a name no other test uses."""
    prefix = new_prefix()
    env = {
        **instance_env(redis_url, prefix),
        "MAX_TURNS_PER_SESSION": str(MAX_TURNS),
        "MAX_SESSION_BYTES": str(MAX_BYTES),
    }
    workdir: Path = tmp_path_factory.mktemp("limits")
    kind = f"limits-{uuid.uuid4().hex[:8]}"
    cluster = StoreCluster(env=env, workdir=workdir, kind=kind, store=store, prefix=prefix)
    with running(cluster, 2) as started:
        yield started
        started.empty_store()


def test_a_full_session_refuses_the_next_message_and_keeps_its_transcript(
    limited: StoreCluster,
) -> None:
    a, b = limited.clients
    session_id = a.post("/api/sessions").json()["session_id"]
    for number, client in enumerate((a, b, a), start=1):
        sent = client.post(f"/api/sessions/{session_id}/messages", json={"text": f"m{number}"})
        assert sent.status_code == 200, sent.text

    for client in (a, b):
        refused = client.post(f"/api/sessions/{session_id}/messages", json={"text": "one more"})
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "session_full"
        assert f"at most {MAX_TURNS};" in refused.json()["detail"]

    kept = b.get(f"/api/sessions/{session_id}").json()
    assert kept["rev"] == 7
    assert [turn["text"] for turn in kept["turns"]][::2] == ["m1", "m2", "m3"]


def test_a_session_never_grows_past_its_size_limit(
    limited: StoreCluster, store: redis.Redis
) -> None:
    a, b = limited.clients
    session_id = a.post("/api/sessions").json()["session_id"]
    big = "x" * 4_000  # the reply quotes it: each exchange adds about 8 KB
    for client in (a, b):
        sent = client.post(f"/api/sessions/{session_id}/messages", json={"text": big})
        assert sent.status_code == 200, sent.text

    # Six turns would be allowed; 24 KB is not.
    refused = a.post(f"/api/sessions/{session_id}/messages", json={"text": big})
    assert refused.status_code == 409
    assert refused.json()["code"] == "session_full"
    assert f"at most {MAX_BYTES} bytes" in refused.json()["detail"]

    assert len(b.get(f"/api/sessions/{session_id}").json()["turns"]) == 4
    stored = store.hget(limited.keys.session(session_id), "doc")
    assert isinstance(stored, str)
    assert len(stored.encode()) <= MAX_BYTES


def test_a_reply_that_would_overfill_the_session_leaves_its_message_interrupted(
    limited: StoreCluster,
) -> None:
    """The message fits, its reply does not: 409 at once, the message kept and marked
    `interrupted` on every instance, without waiting for the reply's lease to lapse."""
    a, b = limited.clients
    session_id = a.post("/api/sessions").json()["session_id"]
    text = "x" * 3_000  # a message and its reply take about 6 KB of MAX_BYTES
    for _ in range(2):
        sent = a.post(f"/api/sessions/{session_id}/messages", json={"text": text})
        assert sent.status_code == 200, sent.text

    overfull = a.post(f"/api/sessions/{session_id}/messages", json={"text": text})

    assert overfull.status_code == 409
    assert overfull.json()["code"] == "session_full"
    kept = b.get(f"/api/sessions/{session_id}").json()
    assert [turn["role"] for turn in kept["turns"]] == ["user", "assistant"] * 2 + ["user"]
    assert kept["reply_status"] == "interrupted"
