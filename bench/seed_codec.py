"""Seed size and speed: our SeedCodec against a plain base64url JSON seed, in one run.

Both encode the same session: 20 turns of English prose, about 8 KB as JSON (transcript.py).

* Ours is the generated project's own `SeedCodec`, imported from its package, in both variants
  the template offers: AES-256-GCM (the default) and HMAC-SHA256 signed only. Its decode is the
  full `SeedCodec.decode`: base64url, verify (and decrypt), zstd decompress, parse and build
  the `Session` model.
* The plain seed is `JSON.stringify(snapshot)` as base64url, and its decode is base64 decode plus
  `json.loads`, with no verification at all. Its snapshot is built once, before timing, as the
  plain dict that seed keeps in memory; ours starts from, and returns, the pydantic `Session`.

Timing uses `timeit` (garbage collector off, as timeit does), many short samples, and rotates
the order of the candidates every round so that drift on a noisy machine hits all of them alike.

Run it with the generated project's interpreter, so that its package imports:

    ../bench-app/.venv/bin/python bench/seed_codec.py --package session_app
"""

import argparse
import base64
import hashlib
import importlib
import json
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from typing import Any

import transcript

SIZE_TARGET = 0.40  # our seed length / the plain seed's length
TIME_TARGET = 1.0  # our encode+decode time / the plain seed's encode+decode time
BASELINE = "plain base64url JSON"


@dataclass(frozen=True)
class Candidate:
    name: str
    encode: Callable[[], str]
    decode: Callable[[str], object]

    def round_trip(self) -> object:
        return self.decode(self.encode())


@dataclass(frozen=True)
class Fixture:
    """The same session, as our `Session` model and as the plain seed's snapshot dict."""

    session: Any
    snapshot: dict[str, object]


def build_fixture(package: str) -> Fixture:
    models = importlib.import_module(f"{package}.sessions.models")
    turns = transcript.build_turns()
    # rev counts writes: one to create the session, then one per exchange of two turns.
    rev = len(turns) // 2 + 1
    session = models.Session(
        session_id=transcript.session_id(),
        rev=rev,
        turns=tuple(models.Turn(role=t.role, text=t.text, at=t.at) for t in turns),
    )
    snapshot = transcript.baseline_snapshot(session.session_id, rev, turns)
    return Fixture(session=session, snapshot=snapshot)


def our_codecs(package: str, session: Any) -> list[Candidate]:
    seed_module = importlib.import_module(f"{package}.sessions.seed")
    fields = importlib.import_module(f"{package}.settings").Settings.model_fields
    # A fixed key keeps runs comparable; sizes and speed do not depend on its value.
    secret = hashlib.sha256(b"sessionfix bench key").digest()
    candidates = []
    for name, encrypt in (("ours, AES-GCM (default)", True), ("ours, HMAC signed only", False)):
        codec = seed_module.SeedCodec(
            [secret],
            encrypt=encrypt,
            ttl_seconds=fields["session_ttl_seconds"].default,
            max_bytes=fields["seed_max_bytes"].default,
        )

        def encode(codec: Any = codec) -> str:
            seed: str | None = codec.encode(session)
            assert seed is not None, "the bench session outgrew the project's seed size cap"
            return seed

        def decode(seed: str, codec: Any = codec) -> object:
            return codec.decode(seed, session.session_id)

        candidates.append(Candidate(name, encode, decode))
    return candidates


def plain_json_seed(snapshot: dict[str, object]) -> Candidate:
    """The plain seed's encode and parse, in Python: JSON.stringify, then base64url."""

    def encode() -> str:
        data = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    def decode(seed: str) -> object:
        return json.loads(base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4)))

    return Candidate(BASELINE, encode, decode)


def check(candidates: list[Candidate], fixture: Fixture, package: str) -> None:
    """Every candidate must round-trip exactly, and ours must refuse a changed seed."""
    seed_error = importlib.import_module(f"{package}.sessions.seed").SeedError
    for candidate in candidates:
        seed = candidate.encode()
        expected = fixture.snapshot if candidate.name == BASELINE else fixture.session
        assert candidate.decode(seed) == expected, f"{candidate.name} does not round-trip"
        if candidate.name == BASELINE:
            continue
        middle = len(seed) // 2
        tampered = seed[:middle] + ("A" if seed[middle] != "A" else "B") + seed[middle + 1 :]
        try:
            candidate.decode(tampered)
        except seed_error:
            pass
        else:
            raise AssertionError(f"{candidate.name} accepted a tampered seed")


def time_interleaved(
    jobs: dict[str, Callable[[], object]], rounds: int, number: int
) -> dict[str, list[float]]:
    """Seconds per call of each job: `rounds` samples of `number` calls, in rotating order."""
    timers = {name: timeit.Timer(job) for name, job in jobs.items()}
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    names = list(jobs)
    for timer in timers.values():
        timer.timeit(number)  # warm-up: first calls pay for imports, caches and allocations
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timers[name].timeit(number) / number)
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def verdict(name: str, value: float, target: float) -> str:
    """The table's target cell: empty for the baseline, else the target and PASS or MISS."""
    if name == BASELINE:
        return ""
    return f"≤ {target:.2f} {'PASS' if value <= target else 'MISS'}"


def report_sizes(candidates: list[Candidate], fixture: Fixture) -> None:
    json_bytes = len(transcript.snapshot_bytes(fixture.snapshot))
    print(f"Session: {len(fixture.session.turns)} turns, {json_bytes} bytes of plain JSON\n")
    baseline_length = len(next(c for c in candidates if c.name == BASELINE).encode())
    print("| seed | length (chars) | binary before base64 (bytes) | vs plain | target |")
    print("|---|---:|---:|---:|---|")
    for candidate in candidates:
        seed = candidate.encode()
        raw = len(base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4)))
        ratio = len(seed) / baseline_length
        target = verdict(candidate.name, ratio, SIZE_TARGET)
        print(f"| {candidate.name} | {len(seed)} | {raw} | {ratio:.3f} | {target} |")
    print()


def report_times(candidates: list[Candidate], rounds: int, number: int) -> None:
    jobs: dict[str, Callable[[], object]] = {}
    for candidate in candidates:
        seed = candidate.encode()
        jobs[f"{candidate.name}|encode"] = candidate.encode
        jobs[f"{candidate.name}|decode"] = partial(candidate.decode, seed)
        jobs[f"{candidate.name}|round trip"] = candidate.round_trip
    samples = time_interleaved(jobs, rounds, number)

    def median_us(name: str, operation: str) -> float:
        return statistics.median(samples[f"{name}|{operation}"]) * 1e6

    print(f"Median of {rounds} interleaved samples of {number} calls each, in µs per call:\n")
    print(
        "| codec | encode | decode | round trip | round trip p10-p90 "
        "| round trip vs plain | paired ratio p10-p90 | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    base = samples[f"{BASELINE}|round trip"]
    for candidate in candidates:
        name = candidate.name
        trips = samples[f"{name}|round trip"]
        ratio = statistics.median(trips) / statistics.median(base)
        # The same round's samples ran seconds apart at most, so their ratio is less noisy.
        paired = [ours / theirs for ours, theirs in zip(trips, base, strict=True)]
        spread = (
            f"{percentile(paired, 0.1):.2f}-{percentile(paired, 0.9):.2f}"
            if name != BASELINE
            else ""
        )
        print(
            f"| {name} | {median_us(name, 'encode'):.1f} | {median_us(name, 'decode'):.1f} "
            f"| {median_us(name, 'round trip'):.1f} "
            f"| {percentile(trips, 0.1) * 1e6:.1f}-{percentile(trips, 0.9) * 1e6:.1f} "
            f"| {ratio:.3f} | {spread} | {verdict(name, ratio, TIME_TARGET)} |"
        )
    print()


def machine_notes() -> None:
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("pydantic", "orjson", "zstandard", "cryptography")
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load}; {libraries}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--package", default="session_app", help="the generated package")
    parser.add_argument("--rounds", type=int, default=301, help="timing samples per job")
    parser.add_argument("--number", type=int, default=40, help="calls per timing sample")
    args = parser.parse_args(argv)

    fixture = build_fixture(args.package)
    candidates = [*our_codecs(args.package, fixture.session), plain_json_seed(fixture.snapshot)]
    check(candidates, fixture, args.package)
    machine_notes()
    report_sizes(candidates, fixture)
    report_times(candidates, args.rounds, args.number)
    return 0


if __name__ == "__main__":
    sys.exit(main())
