"""SeedCodec: a session snapshot any instance can verify and hydrate from.

Layout, then base64url without padding:
    version (1) | flags (1) | key id (4) | session id (16) | expires (4) | body | tag
The body is zstd-compressed compact JSON `[rev, [[role, text, at], ...]]`, each `at` in
milliseconds after the turn before it. With encryption it is AES-256-GCM (12-byte nonce first,
16-byte tag last, the header as associated data), so the browser can neither read nor change it;
without, an HMAC-SHA256 tag over header and body authenticates it. Keys rotate as a list: the
first signs, every key verifies, and the key id picks the key. With encryption on, a seed that
is only signed is refused: no seed from before it was turned on is honoured.
"""

import base64
import binascii
import hmac
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ClientError
from .models import Role, Session

VERSION = 1
FLAG_ENCRYPTED = 0x01
# version, flags, key id, session id, expiry (Unix seconds): authenticated, never encrypted.
HEADER = struct.Struct(">BB4s16sI")
NONCE_SIZE = 12
TAG_SIZE = 16
MAC_SIZE = 32
# A seed's last characters: at least its last 16 bytes, inside its AES-GCM tag or HMAC, so two
# seeds this app issued share them with a chance of 2^-128. Once a seed has been verified,
# comparing its fingerprint with the stored one is comparing the seeds.
FINGERPRINT_CHARS = 24
# Decompression stops here, so a small seed cannot expand into a memory bomb.
MAX_PLAIN_BYTES = 4 * 1024 * 1024
# Decompressed a piece at a time, so a small seed costs no more memory than it needs.
READ_SIZE = 64 * 1024
ROLES: tuple[Role, Role] = ("user", "assistant")


class SeedError(ClientError):
    """A seed that must not be used; each subclass has its own code."""

    code = "seed_invalid"


class SeedInvalid(SeedError):
    """Not ours, tampered with, truncated or unreadable."""


class SeedExpired(SeedError):
    code = "seed_expired"


class SeedSessionMismatch(SeedError):
    code = "seed_session_mismatch"


class SeedTooLarge(SeedError):
    code = "seed_too_large"


@dataclass(frozen=True)
class _Key:
    key_id: bytes
    aead: AESGCM
    mac_key: bytes


def _derive(secret: bytes) -> _Key:
    material = HKDF(
        algorithm=hashes.SHA256(), length=68, salt=None, info=b"session-seed v1"
    ).derive(secret)
    return _Key(key_id=material[64:], aead=AESGCM(material[:32]), mac_key=material[32:64])


class SeedCodec:
    def __init__(
        self, secrets: Sequence[bytes], *, encrypt: bool, ttl_seconds: int, max_bytes: int
    ) -> None:
        if not secrets:
            raise ValueError("a SeedCodec needs at least one key")
        self._keys = [_derive(secret) for secret in secrets]
        self._by_id = {key.key_id: key for key in reversed(self._keys)}
        self._encrypt = encrypt
        self._ttl = ttl_seconds
        self.max_bytes = max_bytes
        self._compressor = zstandard.ZstdCompressor(level=3)
        # The window is the decoder's own buffer: no larger than the output it may produce.
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_PLAIN_BYTES)

    def encode(self, session: Session) -> str | None:
        """The seed for this revision, or None when it would exceed the size cap."""
        turns, previous = [], 0
        for turn in session.turns:
            at = int(turn.at.timestamp() * 1000)
            turns.append([ROLES.index(turn.role), turn.text, at - previous])
            previous = at
        body = self._compressor.compress(orjson.dumps([session.rev, turns]))
        seed = self.seal(session.session_id, body)
        return seed if len(seed) <= self.max_bytes else None

    def seal(self, session_id: str, body: bytes) -> str:
        """The seed of `session_id` that carries `body` (compressed), signed or encrypted."""
        key = self._keys[0]
        flags = FLAG_ENCRYPTED if self._encrypt else 0
        expires = int(time.time()) + self._ttl
        header = HEADER.pack(VERSION, flags, key.key_id, bytes.fromhex(session_id), expires)
        if self._encrypt:
            nonce = os.urandom(NONCE_SIZE)
            raw = header + nonce + key.aead.encrypt(nonce, body, header)
        else:
            raw = header + body + hmac.digest(key.mac_key, header + body, "sha256")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, seed: str, session_id: str, *, stored: bool = False) -> Session:
        """Verify and open a seed for `session_id`; raise a SeedError saying what is wrong. A
        `stored` seed is the store's copy of the session, written under the settings of its
        day: it lives as long as the store keeps it, so its expiry is not checked; one that is
        only signed (stored before encryption was turned on) is read, since no browser holds
        the store's copy; and one over a since lowered SEED_MAX_BYTES is read too."""
        if not stored and len(seed) > self.max_bytes:
            raise SeedTooLarge(f"the seed is {len(seed)} bytes; the limit is {self.max_bytes}")
        try:
            raw = base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4))
        except (binascii.Error, ValueError):
            raise SeedInvalid("the seed is not base64url") from None
        if len(raw) < HEADER.size + TAG_SIZE or raw[0] != VERSION:
            raise SeedInvalid("the seed is truncated or of an unknown version")
        header = raw[: HEADER.size]
        _, flags, key_id, sid, expires = HEADER.unpack(header)
        key = self._by_id.get(key_id)
        if key is None:
            raise SeedInvalid("the seed was signed with a key this app no longer has")
        if self._encrypt and not flags & FLAG_ENCRYPTED and not stored:
            # Encryption on means the browser never holds a readable seed that still works.
            raise SeedInvalid("the seed is not encrypted; this app accepts encrypted seeds only")
        body = self._open(key, flags, header, raw[HEADER.size :])
        # Checked only once authentic, so a forged header can never pick the error.
        if sid.hex() != session_id:
            raise SeedSessionMismatch(f"the seed belongs to another session, not {session_id}")
        if not stored and expires < time.time():
            raise SeedExpired("the seed has expired; reload the session to get a fresh one")
        try:
            rev, turns = orjson.loads(self._decompress(body))
            at = 0
            parsed = []
            for role, text, delta in turns:
                at += delta
                parsed.append({"role": ROLES[role], "text": text, "at": at})
            # One validation for the whole session; pydantic reads large integers as epoch ms.
            return Session.model_validate({"session_id": session_id, "rev": rev, "turns": parsed})
        except (zstandard.ZstdError, orjson.JSONDecodeError, TypeError, ValueError, IndexError):
            # Authentic but unreadable means a bug or a format change, never a client's input.
            raise SeedInvalid("the seed's content cannot be read") from None

    def issuable(self, seed: str) -> bool:
        """Whether a client may send this (verified) seed back: within the size cap, and
        encrypted when seeds are. The store's copy, written under earlier settings, may not be."""
        if len(seed) > self.max_bytes:
            return False
        # The first four characters hold the version and flags bytes.
        return not self._encrypt or bool(base64.urlsafe_b64decode(seed[:4])[1] & FLAG_ENCRYPTED)

    @staticmethod
    def fingerprint(seed: str) -> str:
        """What the store compares to tell whether a verified seed is the one it holds."""
        return seed[-FINGERPRINT_CHARS:]

    def _decompress(self, body: bytes) -> bytes:
        """The body's content, refused past MAX_PLAIN_BYTES without ever holding more.

        A streaming read, since `decompress()` trusts a frame's declared size over any limit."""
        frame = zstandard.get_frame_parameters(body)
        if frame.window_size > MAX_PLAIN_BYTES or (
            frame.content_size != zstandard.CONTENTSIZE_UNKNOWN
            and frame.content_size > MAX_PLAIN_BYTES
        ):
            raise SeedTooLarge(f"the seed's content is over {MAX_PLAIN_BYTES} bytes")
        pieces, size = [], 0
        reader = self._decompressor.stream_reader(body)
        try:
            while piece := reader.read(READ_SIZE):
                size += len(piece)
                if size > MAX_PLAIN_BYTES:
                    raise SeedTooLarge(f"the seed's content is over {MAX_PLAIN_BYTES} bytes")
                pieces.append(piece)
        except zstandard.ZstdError as error:
            # zstd's name for a frame that expands past the size it declares.
            if "Destination buffer is too small" in str(error):
                raise SeedTooLarge("the seed's content expands past its declared size") from None
            raise
        return b"".join(pieces)

    @staticmethod
    def _open(key: _Key, flags: int, header: bytes, rest: bytes) -> bytes:
        if flags & FLAG_ENCRYPTED:
            try:
                return key.aead.decrypt(rest[:NONCE_SIZE], rest[NONCE_SIZE:], header)
            except InvalidTag:
                raise SeedInvalid("the seed failed verification (tampered or corrupted)") from None
        body, tag = rest[:-MAC_SIZE], rest[-MAC_SIZE:]
        if not hmac.compare_digest(tag, hmac.digest(key.mac_key, header + body, "sha256")):
            raise SeedInvalid("the seed failed verification (tampered or corrupted)")
        return body
