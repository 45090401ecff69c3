"""Owners die and are replaced: a crash is reported and resumable, a shutdown loses nothing."""

import threading
import time
from typing import Any

import httpx
import pytest

from .conftest import LEASE_SECONDS, Deployment
from .owner_client import close_of, create, open_socket, post_message, receive, say, texts


@pytest.fixture
def deployment(own_deployment: Deployment) -> Deployment:
    """Each test here kills or stops owners: a deployment of its own."""
    return own_deployment


def wait_for_status(client: httpx.Client, path: str, status: int) -> httpx.Response:
    """Poll until `path` answers `status`; a lapsed lease must show within a few leases."""
    deadline = time.monotonic() + 3 * LEASE_SECONDS + 5
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def on_owner(deployment: Deployment, number: int, count: int) -> list[dict[str, Any]]:
    """`count` new sessions that were placed on realtime instance `number`."""
    placed: list[dict[str, Any]] = []
    while len(placed) < count:
        created = create(deployment.api.next())
        if deployment.owner_number(created["connect"]["url"]) == number:
            placed.append(created)
    return placed


def test_a_killed_owner_is_reported_lost_and_resume_rehomes_the_whole_transcript(
    deployment: Deployment,
) -> None:
    api_a, api_b = deployment.api.clients
    (created,) = on_owner(deployment, 0, 1)
    session_id = created["session_id"]
    assert post_message(api_b, session_id, "one").status_code == 200
    assert post_message(api_a, session_id, "two").status_code == 200

    deployment.realtime.kill(0)
    killed = time.monotonic()

    lost = wait_for_status(api_a, f"/api/sessions/{session_id}", 410)
    # The lease bound: the last heartbeat was at most a third of a lease before the kill, and
    # polling adds at most its 0.2 s interval; a second on top covers both.
    assert time.monotonic() - killed <= LEASE_SECONDS + 1
    assert lost.status_code == 410, lost.text
    assert lost.headers["Content-Type"] == "application/problem+json"
    assert lost.json()["code"] == "session_owner_lost"
    assert f"/api/sessions/{session_id}/resume" in lost.json()["detail"]
    refused = post_message(api_b, session_id, "into the void")
    assert (refused.status_code, refused.json()["code"]) == (410, "session_owner_lost")
    survivor = deployment.realtime.instances[1].url.replace("http://", "ws://")
    with open_socket(created["connect"], f"{survivor}/ws/sessions/{session_id}") as socket:
        assert close_of(socket) == (4410, "session_owner_lost")

    resumed = api_b.post(f"/api/sessions/{session_id}/resume")

    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert deployment.owner_number(body["connect"]["url"]) == 1
    assert [turn["text"] for turn in body["turns"]] == [
        "one",
        'Message 1 received: "one"',
        "two",
        'Message 2 received: "two"',
    ]
    with open_socket(body["connect"]) as socket:
        assert len(receive(socket)["turns"]) == 4
        assert say(socket, "three")[1] == 'Message 3 received: "three"'
    assert len(texts(api_a, session_id)) == 6


def test_a_terminated_owner_hands_its_sessions_over_and_loses_no_acknowledged_turn(
    deployment: Deployment,
) -> None:
    sessions = [created["session_id"] for created in on_owner(deployment, 0, 3)]
    (watched,) = on_owner(deployment, 0, 1)
    acknowledged: dict[str, list[str]] = {session_id: [] for session_id in sessions}
    failures: list[str] = []
    stop = threading.Event()

    def keep_talking() -> None:
        number = 0
        while not stop.is_set():
            session_id = sessions[number % len(sessions)]
            text = f"m{number}"
            response = post_message(deployment.api.next(), session_id, text)
            if response.status_code == 200:
                acknowledged[session_id].append(text)
            else:
                failures.append(f"{text}: {response.status_code} {response.text}")
            number += 1

    with open_socket(watched["connect"]) as socket:
        receive(socket)  # ready
        talker = threading.Thread(target=keep_talking)
        talker.start()
        time.sleep(1)
        deployment.realtime.terminate(0)
        time.sleep(1)
        stop.set()
        talker.join(timeout=30)
        code, reason = close_of(socket)

    assert failures == []
    assert sum(len(texts) for texts in acknowledged.values()) > 10
    for session_id, sent in acknowledged.items():
        transcript = texts(deployment.api.clients[0], session_id)
        assert transcript[0::2] == sent, "every acknowledged message is kept, in order"
        numbers = [f'Message {n} received: "{text}"' for n, text in enumerate(sent, 1)]
        assert transcript[1::2] == numbers
    # The open socket is sent to the session's new owner before the process closes it.
    survivor = deployment.realtime.instances[1].url.replace("http://", "ws://")
    assert (code, reason) == (4307, survivor)
    resumed = deployment.api.clients[1].post(f"/api/sessions/{watched['session_id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert deployment.owner_number(resumed.json()["connect"]["url"]) == 1


def test_with_no_owner_alive_creating_a_session_is_503_and_creates_nothing(
    deployment: Deployment,
) -> None:
    deployment.realtime.terminate(0)
    deployment.realtime.terminate(1)

    response = deployment.api.clients[0].post("/api/sessions")

    assert response.status_code == 503
    assert response.json()["code"] == "no_owner_available"
    assert int(response.headers["Retry-After"]) > 0
    assert list(deployment.api.store.scan_iter(f"{deployment.api.prefix}:session:*")) == []


@pytest.mark.parametrize("signal_name", ["kill", "terminate"])
def test_a_lost_session_is_never_recreated_silently(
    deployment: Deployment, signal_name: str
) -> None:
    """With every owner gone, resume says so; it neither invents an owner nor loses turns."""
    (created,) = on_owner(deployment, 0, 1)
    session_id = created["session_id"]
    assert post_message(deployment.api.clients[0], session_id, "keep me").status_code == 200
    getattr(deployment.realtime, signal_name)(0)
    getattr(deployment.realtime, signal_name)(1)
    api = deployment.api.clients[1]
    # Killed owners are known dead only once their leases lapse: until then they look alive.
    deadline = time.monotonic() + 3 * LEASE_SECONDS + 5
    while api.post("/api/sessions").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)

    resumed = api.post(f"/api/sessions/{session_id}/resume")

    assert resumed.status_code == 503, resumed.text
    assert resumed.json()["code"] == "no_owner_available"
    stored = deployment.api.store.hget(deployment.api.keys.session(session_id), "doc")
    assert stored is not None and "keep me" in stored


def test_a_message_whose_owner_died_is_recorded_once_when_retried_after_resume(
    deployment: Deployment,
) -> None:
    api_a, api_b = deployment.api.clients
    (created,) = on_owner(deployment, 0, 1)
    session_id = created["session_id"]
    url = f"/api/sessions/{session_id}/messages"
    key = {"Idempotency-Key": "retry-me-1"}

    deployment.realtime.kill(0)
    # Posted to the dead owner while its lease lasts, or refused once it has lapsed: either way
    # nothing is recorded, and the key is free again.
    lost = api_a.post(url, json={"text": "are you there?"}, headers=key, timeout=30)
    assert (lost.status_code, lost.json()["code"]) == (410, "session_owner_lost"), lost.text
    assert api_b.post(f"/api/sessions/{session_id}/resume").status_code == 200

    retried = api_b.post(url, json={"text": "are you there?"}, headers=key)
    again = api_a.post(url, json={"text": "are you there?"}, headers=key)

    assert retried.status_code == 200, retried.text
    assert retried.json()["reply"] == 'Message 1 received: "are you there?"'
    assert again.json() == retried.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert texts(api_a, session_id) == ["are you there?", retried.json()["reply"]]
