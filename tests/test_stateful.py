"""The stateful-server fix: generated, checked, and put through its own suite."""

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    assert_fully_rendered,
    generate,
    passes_its_own_checks_and_suite,
    uv,
)

STATEFUL: dict[str, Any] = {"fix": "stateful"}


def read(project: Path, path: str) -> str:
    return (project / path).read_text()


def test_the_stateful_project_has_its_own_files_and_none_of_the_seed(tmp_path: Path) -> None:
    project = generate(tmp_path / "app", **STATEFUL)
    assert_fully_rendered(project)
    package = project / "src" / "session_app"
    owned = ["dev_upstream.py", "sessions/tokens.py", "sessions/registry.py", "routes/deps.py"]
    owned += [f"realtime/{name}.py" for name in ("__main__", "app", "owner", "live", "sockets")]
    for name in owned:
        assert (package / name).is_file(), name
    for name in ["sessions/seed.py", "sessions/upstash.py", "sessions/minter.py"]:
        assert not (package / name).exists(), name
    dependencies = read(project, "pyproject.toml").split("[dependency-groups]")[0]
    assert '"itsdangerous' in dependencies and '"websockets' in dependencies
    assert "zstandard" not in dependencies and "cryptography" not in dependencies
    assert "seed" not in read(project, "src/session_app/settings.py").lower()


def test_the_stateful_answers_reach_the_generated_code(tmp_path: Path) -> None:
    project = generate(tmp_path / "app", **STATEFUL, realtime_instances=3, lease_seconds=20)
    assert "REALTIME_INSTANCES = 3" in read(project, "src/session_app/dev_services.py")
    assert "default=20, ge=3" in read(project, "src/session_app/settings.py")
    answers = read(project, ".copier-answers.yml")
    assert "fix: stateful" in answers and "lease_seconds: 20" in answers
    assert "seed_encryption" not in answers, "questions of another fix are not asked or stored"


@pytest.mark.parametrize(
    ("answer", "value", "message"),
    [
        ("realtime_instances", 1, "2 to 8 realtime instances"),
        ("realtime_instances", 9, "2 to 8 realtime instances"),
        ("lease_seconds", 2, "3 to 120 seconds"),
        ("lease_seconds", 121, "3 to 120 seconds"),
    ],
)
def test_stateful_validators_explain_bad_answers(
    tmp_path: Path, answer: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "app", **STATEFUL, **{answer: value})


@pytest.mark.matrix
def test_the_stateful_project_passes_its_own_checks_and_suite(
    tmp_path: Path, redis_url: str
) -> None:
    project = generate(tmp_path / "app", **STATEFUL)
    passes_its_own_checks_and_suite(project, redis_url)


@pytest.mark.matrix
def test_the_stateful_project_passes_its_suite_on_a_redis_cluster(
    tmp_path: Path, redis_cluster_url: str
) -> None:
    """The same suite, with REDIS_URL at one node of a Redis Cluster (3 masters, 3 replicas):
    the API and the realtime service find the cluster themselves, every session's keys share
    its hash slot and the owners' keys the fleet's, so every script runs on one node."""
    project = generate(tmp_path / "app", **STATEFUL)
    passes_its_own_checks_and_suite(project, redis_cluster_url)


# Run in the generated project: a session as 0.3.0 stored it (no hash tags, an owner record of
# an owner long gone), then the updated API's answers about it.
LEGACY_SESSION = """
import asyncio, json, os
import httpx, redis
from session_app.app import create_app, open_backend
from session_app.sessions.keys import KeyLayout
from session_app.sessions.models import Session
from session_app.sessions.registry import OwnerRegistry
from session_app.settings import Settings

async def main() -> None:
    settings = Settings(_env_file=None)
    keys, store = KeyLayout(settings.key_prefix), redis.Redis.from_url(os.environ["REDIS_URL"])
    session = Session.new().with_exchange("before", "answered before")
    sid, old = session.session_id, settings.key_prefix
    doc = session.model_dump_json()
    store.hset(f"{old}:session:{sid}", mapping={"rev": session.rev, "doc": doc})
    store.xadd(f"{old}:events:{sid}", {"data": json.dumps({"type": "turn", "rev": session.rev})})
    store.set(f"{old}:session-owner:{sid}", "owner-of-0.3.0")
    owners = OwnerRegistry(open_backend(settings), prefix=old, session_ttl_seconds=3600)
    await owners.register("owner-new", "ws://127.0.0.1:9", 60)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        sent = await api.post(f"/api/sessions/{sid}/messages", json={"text": "after"})
        resumed = await api.post(f"/api/sessions/{sid}/resume")
        read = await api.get(f"/api/sessions/{sid}")
    print(json.dumps({
        "sent": [sent.status_code, sent.json().get("code")],
        "resumed": [resumed.status_code, resumed.json().get("connect", {}).get("url", "")],
        "read": [read.status_code, [turn["text"] for turn in read.json().get("turns", [])]],
        "events": [store.xlen(keys.events(sid)), store.exists(f"{old}:events:{sid}")],
    }))

asyncio.run(main())
"""


def test_a_stateful_session_stored_before_the_hash_tags_is_resumed_after_the_update(
    tmp_path: Path, redis_url: str
) -> None:
    """0.4.0 gives the stateful keys hash tags. A session 0.3.0 stored (on a single Redis) is
    found under its old names; its old owner record is not carried over, so its first message
    says the owner was lost (410, never 404), and resume places it with its whole transcript."""
    project = generate(tmp_path / "app", **STATEFUL)
    uv(project, "sync", "--quiet")
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    output = uv(
        project,
        "run",
        "python",
        "-c",
        LEGACY_SESSION,
        APP_ENV="development",
        REDIS_URL=redis_url,
        KEY_PREFIX=f"legacy-{secrets.token_hex(6)}",
        SESSION_KEYS=key,
    )
    outcome = json.loads(output.strip().splitlines()[-1])
    assert outcome["sent"] == [410, "session_owner_lost"], outcome
    assert outcome["resumed"][0] == 200 and outcome["resumed"][1].startswith("ws://127.0.0.1:9/")
    assert outcome["read"] == [200, ["before", "answered before"]], outcome
    assert outcome["events"] == [1, 0], "the events moved to their new name"
