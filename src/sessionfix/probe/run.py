"""Run flows against a deployment and tally every answer, step by step.

Every request goes out on a new TCP connection (no keep-alive), so a load balancer, a serverless
platform or `uvicorn --workers N` is free to send each one to another instance: exactly what a
session kept in one process's memory does not survive.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from .flow import MISSING, Flow, Request, fill, resolve
from .report import ProbeReport

# Statuses an app answers for a session it does not have: not found, gone, or credentials it
# cannot verify (a key made per process).
LOST_STATUSES = frozenset({401, 403, 404, 410})
# Without one successful create in this many tries, the deployment is down, not probed.
CREATE_TRIES = 3
EXCERPT_CHARACTERS = 200


@dataclass
class Outcome:
    """One request's answer, as the report counts it."""

    ok: bool
    failure: str = ""  # "404", "timeout", "closed empty", "200, /turns/0/text differs", ...
    lost: bool = False  # failed the way a session unknown to the answering instance fails
    instance: str | None = None
    excerpt: str = ""
    body: object = None


@dataclass
class HeldStream:
    """A stream step's response, held open while the flow goes on."""

    step: Request
    response: httpx.Response
    first_bytes: "asyncio.Task[bytes | None]"
    opened_at: float = field(default_factory=time.monotonic)


async def probe(
    url: str,
    create: Request,
    choose_flow: Callable[[object], Flow],
    *,
    flows: int,
    timeout: float,
    deadline: float,
    instance_header: str | None,
) -> ProbeReport:
    """Run up to `flows` flows, one after another, until `deadline` seconds have passed.

    `choose_flow` picks the flow from the first successful create response: the built-in flows
    share their create request and differ after it.
    """
    report = ProbeReport(url=url, flows_requested=flows, instance_header=instance_header)
    ends_at = time.monotonic() + deadline
    flow: Flow | None = None
    for _ in range(flows):
        if report.created == 0 and report.flows_run >= CREATE_TRIES:
            report.stopped = f"no session could be created in {report.flows_run} tries"
            break
        if time.monotonic() >= ends_at:
            report.stopped = f"the deadline ({deadline:g} s) passed"
            break
        report.flows_run += 1
        async with FlowRun(url, timeout, instance_header) as run:
            created = await run.send(create)
            if created.ok and flow is None:
                flow = choose_flow(created.body)
                report.flow = flow.name
                report.plan([create, *flow.steps])
            if created.ok and flow is not None:
                created = run.capture(flow, created)
            report.tally(create, created)
            if not created.ok or flow is None:
                continue
            report.created += 1
            run.send_back = [name.lower() for name in flow.send_back_headers]
            for step in flow.steps:
                if time.monotonic() >= ends_at:
                    report.stopped = f"the deadline ({deadline:g} s) passed"
                    break
                outcome = await run.send(step)
                if not step.stream or not outcome.ok:
                    report.tally(step, outcome, created_on=created.instance)
            # Held streams are judged last: they had the whole flow to send their first bytes.
            for held in run.streams:
                report.tally(held.step, await run.finish(held), created_on=created.instance)
        if report.stopped:
            break
    return report


class FlowRun:
    """One flow's requests: its own client (its cookies), captured values, headers sent back."""

    def __init__(self, url: str, timeout: float, instance_header: str | None) -> None:
        self.base = url.rstrip("/")
        self.instance_header = instance_header
        # No keep-alive: every request opens a new connection.
        limits = httpx.Limits(max_keepalive_connections=0)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits)
        self.values: dict[str, str] = {}
        self.send_back: list[str] = []
        self.headers_sent_back: dict[str, str] = {}
        self.streams: list[HeldStream] = []

    async def __aenter__(self) -> "FlowRun":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for held in self.streams:
            held.first_bytes.cancel()
            await held.response.aclose()
        await self.client.aclose()

    def capture(self, flow: Flow, created: Outcome) -> Outcome:
        """The create outcome, failed when its body lacks a value the flow captures."""
        for name, pointer in flow.capture.items():
            value = resolve(created.body, pointer)
            if value is MISSING or value is None or isinstance(value, dict | list):
                return Outcome(False, f"no {pointer} in the response", instance=created.instance)
            self.values[name] = value if isinstance(value, str) else json.dumps(value)
        return created

    async def send(self, step: Request) -> Outcome:
        """Send one step's request; a stream step's open response is held in `streams`."""
        request = self.client.build_request(
            step.method,
            self.base + fill(step.path, self.values),
            headers={**self.headers_sent_back, **fill(step.headers, self.values)},
            json=fill(step.body, self.values) if step.body is not None else None,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as error:
            # A stream that cannot be opened on a session just created is the bug's symptom.
            return Outcome(False, transport_failure(error), lost=step.stream)
        for name in self.send_back:
            if name in response.headers:
                self.headers_sent_back[name] = response.headers[name]
        instance = self.instance_of(response)
        if step.stream and step.succeeded(response.status_code):
            # Read in the background: the stream stays open while the later steps run.
            first_bytes = asyncio.ensure_future(first_chunk(response))
            self.streams.append(HeldStream(step, response, first_bytes))
            return Outcome(True, instance=instance)
        try:
            await response.aread()
        except httpx.TransportError as error:
            return Outcome(False, transport_failure(error), lost=step.stream, instance=instance)
        finally:
            await response.aclose()
        outcome = judge(step, response, self.values)
        outcome.instance = instance
        outcome.lost = outcome.lost or (step.stream and not outcome.ok)
        return outcome

    async def finish(self, held: HeldStream) -> Outcome:
        """A held stream passes when it sent something, or is still open after its read time."""
        instance = self.instance_of(held.response)
        remaining = held.step.read_seconds - (time.monotonic() - held.opened_at)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(held.first_bytes), max(remaining, 0))
        if not held.first_bytes.done():
            return Outcome(True, instance=instance)  # open and quiet: a live stream
        if held.first_bytes.exception() is not None:
            return Outcome(False, "stream broke", lost=True, instance=instance)
        if held.first_bytes.result() == b"":
            return Outcome(False, "closed empty", lost=True, instance=instance)
        return Outcome(True, instance=instance)

    def instance_of(self, response: httpx.Response) -> str | None:
        return response.headers.get(self.instance_header) if self.instance_header else None


def judge(step: Request, response: httpx.Response, values: dict[str, str]) -> Outcome:
    excerpt = " ".join(response.text[:EXCERPT_CHARACTERS].split())
    status = response.status_code
    if not step.succeeded(status):
        return Outcome(False, str(status), status in LOST_STATUSES, excerpt=excerpt)
    try:
        body: object = response.json() if response.content else None
    except ValueError:
        body = None
    for pointer, expected in step.expect_json.items():
        if resolve(body, pointer) != fill(expected, values):
            # Answered, but not with the session the flow built: an instance that did not know
            # it made a new one, or answered for another.
            return Outcome(False, f"{status}, {pointer} differs", lost=True, excerpt=excerpt)
    return Outcome(True, body=body)


async def first_chunk(response: httpx.Response) -> bytes | None:
    """The stream's first bytes; b"" when it ended without any; None when it stayed open and
    quiet for a whole request timeout (alive, as far as anyone can tell)."""
    try:
        async for chunk in response.aiter_raw():
            if chunk:
                return chunk
    except httpx.ReadTimeout:
        return None
    return b""


def transport_failure(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "cannot connect"
    if isinstance(error, httpx.RemoteProtocolError):
        return "connection dropped"
    return type(error).__name__
