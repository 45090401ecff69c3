"""Idempotency-Key: a retried request gets the first answer, and nothing is stored twice.

A client that lost an answer (a 503 that could not say whether the write was applied, a dropped
connection, a timeout) sends the request again with the same key, on any instance. The first
answer is kept in the store under the session and that key (keys.py), written by the same script
as the write it answers, so two instances handling one key at once cannot both write.
"""

import hashlib
import re
import secrets

import orjson
from pydantic import BaseModel

from ..errors import ClientError

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Set on an answer that was kept from an earlier request with the same key.
REPLAYED_HEADER = "Idempotent-Replayed"
# A UUID, a ULID or any token of the client's: printable and short, since it becomes part of a
# store key; no braces, which would change the key's Redis Cluster hash slot.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class IdempotencyKeyInvalid(ClientError):
    code = "idempotency_key_invalid"

    def __init__(self) -> None:
        super().__init__(
            f"The {IDEMPOTENCY_HEADER} header must be 1 to 64 characters of A-Z, a-z, 0-9 and "
            "_ - . : (a UUID fits)."
        )


class IdempotencyKeyReused(ClientError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            f"This {IDEMPOTENCY_HEADER} was already used for another request to this session; "
            "use a new key for each new request."
        )


def parse_key(value: str | None) -> str | None:
    if value is not None and not KEY_PATTERN.fullmatch(value):
        raise IdempotencyKeyInvalid
    return value


class KeptAnswer:
    """The answer kept under one Idempotency-Key, with a hash of the request it answered."""

    def __init__(
        self, key: str, request: BaseModel, answer: BaseModel | None, *, asked_rev: int = 0
    ) -> None:
        """Without `answer`: the request's message is stored, at `asked_rev`, and its reply is
        streaming (or was interrupted)."""
        self.key = key
        request_hash = _fingerprint(request)
        answer_json = answer.model_dump(mode="json") if answer is not None else None
        # Unique per attempt: a duplicate can compute the very same answer, and only this tells
        # our own write (its reply lost and the script run again) from the duplicate's.
        writer = secrets.token_hex(8)
        self.record = orjson.dumps(
            {"request": request_hash, "answer": answer_json, "writer": writer, "asked": asked_rev}
        ).decode()


def replayed(record: str, request: BaseModel) -> dict[str, object] | None:
    """The answer kept in `record`, if it answered this same request; None while its reply is
    still streaming (or was interrupted)."""
    kept = orjson.loads(record)
    if kept["request"] != _fingerprint(request):
        raise IdempotencyKeyReused
    answer: dict[str, object] | None = kept["answer"]
    return answer


def asked_rev(record: str) -> int:
    """The revision of the message a pending record's request stored."""
    rev: int = orjson.loads(record).get("asked", 0)
    return rev


def _fingerprint(request: BaseModel) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()
