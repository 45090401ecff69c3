"""One realistic, deterministic session transcript, shared by the benchmarks.

Twenty turns of English prose, about 8 KB as the plain seed's JSON, taken from the reference text
that ships with CPython (`pydoc_data.topics`) so that nothing needs downloading. Paragraphs are
picked at a fixed stride across the whole reference, so neighbouring turns talk about different
things and the compressor sees varied text rather than one repeated topic. The output depends
only on the Python version (the reference text changes between CPython releases).

This module uses the standard library only: `project_turns` turns these turns into a generated
project's own `Turn` models, and `project_codec` gives the seed codec its instances use, so a
bench can hand an instance this session by a seed.
"""

import hashlib
import importlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pydoc_data.topics import topics
from typing import Any

TURNS = 20
TARGET_JSON_BYTES = 8 * 1024
# A user turn gets less than half the text of an assistant turn, as in a real chat.
USER_SHARE = 0.6
ASSISTANT_SHARE = 1.4
# A fixed, realistic clock: the conversation starts here and moves at a human pace.
STARTED_AT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)

_HEADING_RULE = re.compile(r"^[*=\-^~]{3,}$")
# *emphasis* around words; asterisks anywhere else are code, and such paragraphs are skipped.
_EMPHASIS = re.compile(r"(?<![\w*\"])\*([A-Za-z][^*\"]*?)\*(?![\w*])")
# Split after a full stop, question or exclamation mark that is followed by a capital letter.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")


@dataclass(frozen=True)
class TurnText:
    role: str  # "user" or "assistant"
    text: str
    at: datetime  # UTC, whole milliseconds (what both seed formats carry)


def session_id() -> str:
    """A fixed 32-hex-digit id, in the generated project's format."""
    return hashlib.sha256(b"sessionfix bench session").hexdigest()[:32]


def prose_paragraphs() -> list[str]:
    """The reference's prose paragraphs, one line each, without code, grammar or headings."""
    paragraphs: list[str] = []
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            lines = block.strip("\n").splitlines()
            if not lines or _is_not_prose(lines):
                continue
            text = _EMPHASIS.sub(r"\1", " ".join(line.strip() for line in lines))
            text = re.sub(r"\s+", " ", text).strip()
            if len(text) >= 120 and text.endswith(".") and "*" not in text:
                paragraphs.append(text)
    return paragraphs


def _is_not_prose(lines: list[str]) -> bool:
    first = lines[0]
    return (
        # Indented blocks are code samples, grammar rules or the bodies of lists and tables.
        any(line[:1].isspace() for line in lines)
        or any(_HEADING_RULE.match(line.strip()) for line in lines)
        or first.startswith(("* ", "- ", "+", "|", "Changed in version", "New in version"))
        or re.match(r"^\d+\.\s", first) is not None
        or any(marker in line for line in lines for marker in ("::=", ">>>", "..."))
    )


def build_turns(turns: int = TURNS, target_json_bytes: int = TARGET_JSON_BYTES) -> list[TurnText]:
    """`turns` alternating user/assistant turns whose plain JSON is close to the target."""
    paragraphs = prose_paragraphs()
    # Turns end on whole sentences, so the size moves in steps as the per-turn budget grows;
    # bisect the budget and keep the transcript nearest the target (usually within 2 %).
    low, high = 0.0, float(target_json_bytes) / turns
    best: list[TurnText] = []
    best_miss = target_json_bytes
    for _ in range(16):
        average = (low + high) / 2
        result = _turns_for(paragraphs, turns, average)
        size = len(snapshot_bytes(baseline_snapshot(session_id(), turns // 2 + 1, result)))
        if abs(size - target_json_bytes) < best_miss:
            best, best_miss = result, abs(size - target_json_bytes)
        low, high = (average, high) if size < target_json_bytes else (low, average)
    return best


def _turns_for(paragraphs: list[str], turns: int, average: float) -> list[TurnText]:
    stride = len(paragraphs) // turns
    result: list[TurnText] = []
    at = STARTED_AT
    for number in range(turns):
        role = "user" if number % 2 == 0 else "assistant"
        budget = average * (USER_SHARE if role == "user" else ASSISTANT_SHARE)
        text = _fill(paragraphs, number * stride, budget)
        # Users type (a few seconds per line); the assistant answers within seconds. The
        # millisecond part comes from the text, so it is realistic yet reproducible.
        pause = 12.0 + len(text) / 6 if role == "user" else 1.5 + len(text) / 180
        millis = int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) % 1000
        at += timedelta(seconds=int(pause), milliseconds=millis)
        result.append(TurnText(role=role, text=text, at=at))
    return result


def _fill(paragraphs: list[str], start: int, budget: float) -> str:
    """Whole sentences from paragraphs[start:], stopping at the sentence end nearest `budget`."""
    text = ""
    for paragraph in paragraphs[start:]:
        for sentence in _SENTENCE_END.split(paragraph):
            candidate = f"{text} {sentence}".strip()
            # Take the sentence if that ends nearer the budget than stopping before it does.
            if text and abs(len(candidate) - budget) > abs(len(text) - budget):
                return text
            text = candidate
    return text


def iso_millis(at: datetime) -> str:
    """JavaScript's Date.toISOString(), which is what the plain seed's JSON.stringify writes."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _turn_dict(role: str, text: str, at: datetime) -> dict[str, str]:
    return {"role": role, "text": text, "at": iso_millis(at)}


def baseline_snapshot(session_id: str, rev: int, turns: list[TurnText]) -> dict[str, object]:
    """The snapshot a plain seed would carry: plain JSON with ISO timestamps."""
    return {
        "session_id": session_id,
        "rev": rev,
        "turns": [_turn_dict(turn.role, turn.text, turn.at) for turn in turns],
    }


def _compact(value: object) -> bytes:
    # JSON.stringify's output: no spaces, UTF-8 rather than \u escapes.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def snapshot_bytes(snapshot: dict[str, object]) -> bytes:
    return _compact(snapshot)


if __name__ == "__main__":
    built = build_turns()
    for turn in built:
        print(f"[{iso_millis(turn.at)}] {turn.role:>9} ({len(turn.text):3d}): {turn.text[:90]}...")
    size = len(snapshot_bytes(baseline_snapshot(session_id(), TURNS // 2 + 1, built)))
    print(f"plain JSON: {size} bytes")


def project_turns(package: str) -> tuple[Any, ...]:
    """The transcript as the generated package's own `Turn` models."""
    models = importlib.import_module(f"{package}.sessions.models")
    return tuple(models.Turn(role=t.role, text=t.text, at=t.at) for t in build_turns())


def project_codec(package: str, key: str) -> Any:
    """The package's `SeedCodec` as its instances build it by default, with `key` (a
    SESSION_KEYS value): its seeds arrive exactly as another instance's would."""
    seed = importlib.import_module(f"{package}.sessions.seed")
    config = importlib.import_module(f"{package}.config")
    defaults = importlib.import_module(f"{package}.settings").Settings.model_fields
    return seed.SeedCodec(
        [config.decode_key(key)],
        encrypt=defaults["seed_encryption"].default,
        ttl_seconds=defaults["session_ttl_seconds"].default,
        max_bytes=defaults["seed_max_bytes"].default,
    )
