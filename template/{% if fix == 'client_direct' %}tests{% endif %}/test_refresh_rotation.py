"""Refresh tokens rotate, across instances: each works once, a replayed one revokes its whole
chain, and a chain ends REFRESH_CHAIN_MAX_SECONDS after the session began."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .cluster import Cluster, running
from .conftest import ApiCluster


def create(client: httpx.Client) -> dict[str, str]:
    response = client.post("/api/sessions")
    assert response.status_code == 201, response.text
    session = response.json()
    return {"session_id": session["session_id"], "refresh": session["refresh"]["token"]}


def refresh(client: httpx.Client, session_id: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return client.post(f"/api/sessions/{session_id}/token", headers=headers)


def refused_with(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    code: str = response.json()["code"]
    return code


def test_a_refresh_token_works_once_and_a_replay_revokes_the_chain(cluster: ApiCluster) -> None:
    a, b, c = cluster.clients
    session = create(a)
    session_id, first = session["session_id"], session["refresh"]

    renewed = refresh(b, session_id, first)
    assert renewed.status_code == 200, renewed.text
    second = renewed.json()["refresh"]["token"]
    assert second != first

    # The first token again, on another instance: spent, so someone holds a copy.
    assert refused_with(refresh(c, session_id, first)) == "refresh_token_reused"
    # The whole chain is revoked: the newest token, never used, is refused too.
    assert refused_with(refresh(a, session_id, second)) == "refresh_token_reused"


def test_a_long_chain_of_refreshes_goes_round_the_instances(cluster: ApiCluster) -> None:
    session = create(cluster.next())
    token = session["refresh"]
    for _ in range(6):
        renewed = refresh(cluster.next(), session["session_id"], token)
        assert renewed.status_code == 200, renewed.text
        token = renewed.json()["refresh"]["token"]


def refresh_at_once(clients: list[httpx.Client], session: dict[str, str]) -> list[httpx.Response]:
    """The same refresh sent by each client at the same moment, from a thread each."""
    start = threading.Barrier(len(clients))
    answers: list[httpx.Response] = []

    def send(client: httpx.Client) -> None:
        start.wait()
        answers.append(refresh(client, session["session_id"], session["refresh"]))

    racers = [threading.Thread(target=send, args=(client,)) for client in clients]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(20)
    return answers


def test_two_instances_refreshing_with_one_token_at_once_one_wins(cluster: ApiCluster) -> None:
    for _ in range(5):
        session = create(cluster.next())
        answers = refresh_at_once(cluster.clients[:2], session)
        won = [answer for answer in answers if answer.status_code == 200]
        lost = [answer for answer in answers if answer.status_code != 200]
        assert len(won) == 1 and len(lost) == 1, [answer.text for answer in answers]
        assert refused_with(lost[0]) == "refresh_token_reused"
        # The loser's replay revoked the chain, the winner's new token included.
        newest = won[0].json()["refresh"]["token"]
        assert refused_with(refresh(cluster.next(), session["session_id"], newest)) == (
            "refresh_token_reused"
        )


@pytest.fixture
def short_chains(app_env: dict[str, str], tmp_path: Path) -> Iterator[list[httpx.Client]]:
    """Two instances whose sessions can be refreshed for 2 seconds after they begin."""
    env = {**app_env, "REFRESH_CHAIN_MAX_SECONDS": "2"}
    with running(Cluster(env=env, workdir=tmp_path), 2) as cluster:
        yield cluster.clients


def test_a_chain_ends_at_its_maximum_lifetime(short_chains: list[httpx.Client]) -> None:
    a, b = short_chains
    began = time.time()
    response = a.post("/api/sessions")
    assert response.status_code == 201, response.text
    session = response.json()
    assert began + 1 <= session["refresh"]["chain_expires_at"] <= time.time() + 2
    renewed = refresh(b, session["session_id"], session["refresh"]["token"])
    assert renewed.status_code == 200, renewed.text
    # The refresh did not extend the chain.
    assert renewed.json()["refresh"]["chain_expires_at"] <= session["refresh"]["chain_expires_at"]

    time.sleep(max(0.0, began + 2.2 - time.time()))
    token = renewed.json()["refresh"]["token"]
    late = refresh(a, session["session_id"], token)
    assert refused_with(late) == "refresh_chain_expired"
