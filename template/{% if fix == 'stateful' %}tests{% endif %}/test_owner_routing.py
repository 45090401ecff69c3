"""The user's stories: sessions placed on owners, reached from any API instance."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .cluster import EventReader
from .conftest import Deployment
from .owner_client import (
    close_of,
    create,
    open_socket,
    post_message,
    receive,
    say,
    texts,
    turns,
)


def test_create_on_api_a_then_talk_to_the_owner_over_its_websocket(
    deployment: Deployment,
) -> None:
    created = create(deployment.api.clients[0])
    owner = deployment.owner_number(created["connect"]["url"])

    with open_socket(created["connect"]) as socket:
        ready = receive(socket)
        turns = say(socket, "Hello")

    assert ready["type"] == "ready"
    assert ready["instance"] == deployment.realtime.instances[owner].name
    assert ready["turns"] == []
    assert turns == ["Hello", 'Message 1 received: "Hello"']
    assert created["connect"]["expires_at"] > 0


def test_audio_and_messages_through_api_b_reach_the_owner_and_stream_on_api_a(
    deployment: Deployment,
) -> None:
    api_a, api_b = deployment.api.clients
    created = create(api_a)
    session_id = created["session_id"]
    reader = EventReader(deployment.api.instances[0].url, session_id)
    try:
        with open_socket(created["connect"]) as socket:
            receive(socket)  # ready
            typed = post_message(api_b, session_id, "typed")
            spoken = api_b.post(
                f"/api/sessions/{session_id}/audio",
                content=b"\x01" * 3_200,
                headers={"Content-Type": "application/octet-stream"},
            )
            on_socket = turns(socket, 4)
        streamed = reader.take(4)
    finally:
        reader.close()

    assert typed.status_code == 200, typed.text
    assert typed.headers["X-Instance"] == "api-B"
    assert typed.json()["reply"] == 'Message 1 received: "typed"'
    assert spoken.status_code == 200, spoken.text
    assert spoken.json()["heard"] == "[audio: 3200 bytes]"
    assert spoken.json()["reply"] == 'Message 2 received: "[audio: 3200 bytes]"'
    expected = [
        "typed",
        'Message 1 received: "typed"',
        "[audio: 3200 bytes]",
        'Message 2 received: "[audio: 3200 bytes]"',
    ]
    assert on_socket == expected
    assert reader.instance == "api-A"
    assert [event for _, event, _ in streamed] == ["turn"] * 4
    assert [json.loads(data)["turn"]["text"] for _, _, data in streamed] == expected


def test_a_binary_audio_frame_on_the_socket_is_heard_and_recorded(
    deployment: Deployment,
) -> None:
    created = create(deployment.api.clients[0])
    with open_socket(created["connect"]) as socket:
        receive(socket)  # ready
        socket.send(b"\x01" * 1_600)
        spoken = turns(socket, 2)

    assert spoken == ["[audio: 1600 bytes]", 'Message 1 received: "[audio: 1600 bytes]"']
    assert texts(deployment.api.clients[1], created["session_id"]) == spoken


def test_a_socket_on_the_wrong_instance_is_told_where_the_owner_is(
    deployment: Deployment,
) -> None:
    created = create(deployment.api.clients[0])
    owner = deployment.owner_number(created["connect"]["url"])
    owner_url = _ws(deployment, owner)
    other_url = _ws(deployment, 1 - owner)
    wrong = created["connect"]["url"].replace(owner_url, other_url)

    with open_socket(created["connect"], wrong) as socket:
        code, reason = close_of(socket)
    with open_socket(created["connect"], f"{reason}/ws/sessions/{created['session_id']}") as socket:
        ready = receive(socket)
        turns = say(socket, "found you")

    assert (code, reason) == (4307, owner_url)
    assert ready["instance"] == deployment.realtime.instances[owner].name
    assert turns[1] == 'Message 1 received: "found you"'


def test_a_message_to_a_session_stored_damaged_is_a_503_with_its_code(
    deployment: Deployment,
) -> None:
    """The owner cannot parse the stored copy: the API answers what it reported, not a 502."""
    api = deployment.api
    session_id = create(api.clients[0])["session_id"]
    api.store.hset(api.keys.session(session_id), "doc", '{"session_id": "not json')

    response = api.clients[1].post(f"/api/sessions/{session_id}/messages", json={"text": "hi"})

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "session_unreadable"
    assert "damaged" in response.json()["detail"]


def test_new_sessions_go_to_the_least_loaded_owner(deployment: Deployment) -> None:
    created = [create(deployment.api.next()) for _ in range(6)]
    owners = [deployment.owner_number(body["connect"]["url"]) for body in created]
    assert sorted(owners) == [0, 0, 0, 1, 1, 1]


def test_resume_of_a_live_session_keeps_its_owner_and_refreshes_the_token(
    deployment: Deployment,
) -> None:
    api_a, api_b = deployment.api.clients
    created = create(api_a)
    resumed = api_b.post(f"/api/sessions/{created['session_id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["connect"]["url"] == created["connect"]["url"]
    with open_socket(resumed.json()["connect"]) as socket:
        assert receive(socket)["type"] == "ready"


def test_concurrent_posts_from_both_api_instances_lose_no_turn(deployment: Deployment) -> None:
    created = create(deployment.api.clients[0])
    session_id = created["session_id"]
    clients = deployment.api.clients

    def post(number: int) -> int:
        return post_message(clients[number % 2], session_id, f"m{number}").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(post, range(10)))

    assert statuses == [200] * 10
    transcript = texts(clients[1], session_id)
    assert len(transcript) == 20
    asked = transcript[0::2]
    assert sorted(asked) == sorted(f"m{number}" for number in range(10))
    # Each reply follows its own message, numbered in the order the owner handled them.
    for position, (message, reply) in enumerate(zip(asked, transcript[1::2], strict=True), 1):
        assert reply == f'Message {position} received: "{message}"'


def _ws(deployment: Deployment, number: int) -> str:
    return deployment.realtime.instances[number].url.replace("http://", "ws://")


def test_an_event_stream_resumes_after_its_last_event_id_on_another_instance(
    deployment: Deployment,
) -> None:
    api_a, api_b = deployment.api.clients
    session_id = create(api_a)["session_id"]
    assert post_message(api_a, session_id, "first").status_code == 200
    reader = EventReader(deployment.api.instances[0].url, session_id)
    first = reader.take(2)
    reader.close()
    assert post_message(api_b, session_id, "second").status_code == 200

    resumed = EventReader(deployment.api.instances[1].url, session_id, last_id=first[-1][0])
    try:
        missed = resumed.take(2)
        assert resumed.instance == "api-B"
        # Nothing before Last-Event-ID is sent again: the next event is the next exchange's.
        assert post_message(api_a, session_id, "third").status_code == 200
        (_, _, following), _ = resumed.take(2)
    finally:
        resumed.close()

    assert json.loads(following)["turn"]["text"] == "third"
    assert [json.loads(data)["turn"]["text"] for _, _, data in missed] == [
        "second",
        'Message 2 received: "second"',
    ]
    assert resumed.instance == "api-B"


def test_posts_racing_a_delete_answer_200_or_410_and_nothing_follows_the_tombstone(
    deployment: Deployment,
) -> None:
    """Many posts on both API instances, a DELETE in the middle: each post is either recorded
    and answered 200, or answered 410 `session_deleted`; every request sent after the DELETE's
    204 is a 410, and no turn, and no event, lands after the tombstone."""
    clients = deployment.api.clients
    session_id = create(clients[0])["session_id"]
    deleted_at: list[float] = []
    first_answer = threading.Event()

    def post(number: int) -> list[tuple[float, httpx.Response]]:
        client = clients[number % 2]
        answers: list[tuple[float, httpx.Response]] = []
        # Each worker keeps posting until it has been answered twice after the DELETE.
        while sum(sent > deleted_at[0] for sent, _ in answers if deleted_at) < 2:
            sent = time.monotonic()
            if number % 4 == 3:
                answer = client.get(f"/api/sessions/{session_id}")
            else:
                answer = post_message(client, session_id, f"w{number}")
            answers.append((sent, answer))
            if answer.request.method == "POST" and answer.status_code == 200:
                first_answer.set()  # the DELETE lands once messages are being recorded
        return answers

    with ThreadPoolExecutor(max_workers=9) as pool:
        workers = [pool.submit(post, number) for number in range(8)]
        assert first_answer.wait(10)
        deleted = clients[1].delete(f"/api/sessions/{session_id}")
        deleted_at.append(time.monotonic())
        answers = [answer for worker in workers for answer in worker.result(timeout=60)]

    assert deleted.status_code == 204
    for sent, answer in answers:
        assert answer.status_code in (200, 410), answer.text
        if answer.status_code == 410:
            assert answer.json()["code"] == "session_deleted", answer.text
        if sent > deleted_at[0]:
            assert answer.status_code == 410, answer.text
    recorded = [a for _, a in answers if a.status_code == 200 and a.request.method == "POST"]
    assert recorded, "some posts were answered before the DELETE"
    store = deployment.api.store
    # The tombstone alone: no turn was written behind it.
    assert store.hgetall(deployment.api.keys.session(session_id)) == {"deleted": "1"}
    entries = store.xrange(deployment.api.keys.events(session_id)) or []
    events = [json.loads((fields or {})["data"]) for _, fields in entries]
    assert events[-1] == {"type": "deleted"}, "nothing follows the `deleted` event"
    turns_before = [event for event in events if event["type"] == "turn"]
    assert len(turns_before) == 2 * len(recorded), "each 200 recorded two turns, nothing else"
    with open_socket(create(clients[0])["connect"]) as socket:
        assert receive(socket)["type"] == "ready", "the owner still serves other sessions"
