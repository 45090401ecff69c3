"""A session grows only so far: past MAX_TURNS_PER_SESSION or MAX_SESSION_BYTES a message gets
409 session_full on every instance, and the transcript already stored stays whole."""

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .cluster import StoreCluster, new_prefix, running
from .conftest import SEED_HEADER, instance_env

MAX_TURNS = 6
MAX_BYTES = 16_384
# The least SEED_MAX_BYTES allows: a message of random text outgrows it.
SEED_MAX_BYTES = 1_024


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
        "SEED_MAX_BYTES": str(SEED_MAX_BYTES),
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

    read = b.get(f"/api/sessions/{session_id}").json()
    assert len(read["turns"]) == 4
    # What the limit bounds: the session as JSON (the store keeps it as its smaller seed).
    session = {name: read[name] for name in ("session_id", "rev", "turns")}
    assert len(json.dumps(session, separators=(",", ":")).encode()) <= MAX_BYTES


def test_a_session_past_the_seed_size_cap_is_stored_as_json_and_served_without_a_seed(
    limited: StoreCluster, store: redis.Redis
) -> None:
    """A session whose seed would exceed SEED_MAX_BYTES gets none: the store keeps it as its
    JSON document instead, and every instance serves it to clients that send no seed."""
    a, b = limited.clients
    created = a.post("/api/sessions").json()
    session_id = created["session_id"]
    key = limited.keys.session(session_id)
    assert set(store.hgetall(key)) == {"rev", "seed", "tag"}
    # 1,200 random bytes as 1,600 characters: no compression brings a seed of them under 1 KB.
    text = secrets.token_urlsafe(1_200)

    sent = a.post(
        f"/api/sessions/{session_id}/messages",
        json={"text": text},
        headers={SEED_HEADER: created["seed"]},
    )

    assert sent.status_code == 200, sent.text
    assert sent.json()["seed"] is None
    assert SEED_HEADER not in sent.headers
    stored = store.hgetall(key)
    assert "seed" not in stored
    assert "tag" not in stored
    assert json.loads(stored["doc"])["turns"][0]["text"] == text
    read = b.get(f"/api/sessions/{session_id}")
    assert read.status_code == 200, read.text
    assert read.json()["seed"] is None
    assert read.json()["turns"][0]["text"] == text
    again = b.post(f"/api/sessions/{session_id}/messages", json={"text": "short"})
    assert again.status_code == 200, again.text
    assert again.json()["rev"] == 5


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
