"""A seed that expands past the decompression cap: time to refusal and memory, ours against 0.3's.

Each bomb is 50 MiB of zeros, zstd-compressed to about 1.6 KB, in three frames: one that declares
its size (50 MiB), one that declares none, and one that declares 1 KiB but holds 50 MiB. Only a
holder of the keys can make such a seed, so this measures what a leaked key or a bug costs.

* Ours: the generated project's `SeedCodec.decode` of the bomb sealed with its key, which reads
  the frame as a stream and stops past `MAX_PLAIN_BYTES` (4 MiB).
* 0.3: `ZstdDecompressor().decompress(body, max_output_size=MAX_PLAIN_BYTES)`, the call 0.3's
  codec made after verifying the seed; python-zstandard ignores the limit when the frame
  declares its size.

Each decode runs in a fresh process that only receives the bomb (it never holds the 50 MiB it
was made from), so the growth of its peak RSS (`ru_maxrss`) is the decode's. Target: a refusal
(413 `seed_too_large`) in under 100 ms, with the peak RSS grown by under 5 MiB past the 4 MiB
cap (decoding a seed right up to the cap must hold the cap).

Run it with the generated project's interpreter, so that its package imports:

    ../bench-app/.venv/bin/python bench/seed_bomb.py --package session_app
"""

import argparse
import importlib
import json
import platform
import resource
import subprocess
import sys
import time

import zstandard

SIZE = 50 * 2**20
FRAMES = ("declares 50 MiB", "declares no size", "declares 1 KiB")
DECODERS = ("ours", "0.3")
SESSION_ID = "0" * 32
TIME_TARGET_MS = 100
MEMORY_TARGET_MIB = 4 + 5


def bomb(frame: str) -> bytes:
    declared = frame == "declares 50 MiB"
    body = zstandard.ZstdCompressor(level=3, write_content_size=declared).compress(bytes(SIZE))
    if frame != "declares 1 KiB":
        return body
    # A 2-byte content size (stored as size - 256) after the window descriptor (RFC 8878).
    return body[:4] + bytes([0x40]) + body[5:6] + (1024 - 256).to_bytes(2, "little") + body[6:]


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


def child(package: str, decoder: str, body: bytes) -> dict[str, object]:
    seed_module = importlib.import_module(f"{package}.sessions.seed")
    codec = seed_module.SeedCodec(
        [b"bench key, 32 bytes or more ...."], encrypt=True, ttl_seconds=3600, max_bytes=12_288
    )
    seed = codec.seal(SESSION_ID, body)
    old = zstandard.ZstdDecompressor()
    before = peak_rss_mib()
    started = time.perf_counter()
    try:
        if decoder == "ours":
            codec.decode(seed, SESSION_ID)
            outcome = "accepted"
        else:
            out = old.decompress(body, max_output_size=seed_module.MAX_PLAIN_BYTES)
            outcome = f"expanded to {len(out) / 2**20:.0f} MiB (then seed_invalid)"
    except seed_module.SeedError as error:
        outcome = f"{error.code}"
    except zstandard.ZstdError:
        outcome = "ZstdError (seed_invalid)"
    elapsed = (time.perf_counter() - started) * 1000
    return {"outcome": outcome, "ms": elapsed, "rss_mib": peak_rss_mib() - before}


def run_child(package: str, decoder: str, body: bytes) -> dict[str, object]:
    command = [sys.executable, __file__, "--package", package, "--child", decoder]
    done = subprocess.run(command, input=body, capture_output=True, check=True, timeout=120)  # noqa: S603
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="session_app", help="the generated package")
    parser.add_argument("--child", choices=DECODERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.package, args.child, sys.stdin.buffer.read())))
        return 0

    print(f"python {platform.python_version()}, zstandard {zstandard.__version__}")
    print()
    print("| frame (50 MiB of zeros) | bomb | decoder | outcome | time | peak RSS growth |")
    print("|---|---|---|---|---|---|")
    for frame in FRAMES:
        body = bomb(frame)
        for decoder in DECODERS:
            result = run_child(args.package, decoder, body)
            print(
                f"| {frame} | {len(body):,} B | {decoder} | {result['outcome']} "
                f"| {result['ms']:.1f} ms | {result['rss_mib']:.1f} MiB |"
            )
    print()
    print(f"Targets (ours): seed_too_large, < {TIME_TARGET_MS} ms, < {MEMORY_TARGET_MIB} MiB.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
