"""What a finding is, the rules that make one, and the fixes each rule points to."""

import re
from dataclasses import dataclass, field
from functools import cache


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    why: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "process-local-sessions",
            "Session state in one process's memory",
            "Every instance has its own copy. A request that lands on another instance (another "
            "serverless invocation, replica or worker) does not find the session there and fails "
            "mid-flow, typically with 404 Session not found.",
        ),
        Rule(
            "global-session-state",
            "A global singleton holds session state",
            "A `global` or `globalThis` object lives in one process: a singleton kept to survive "
            "hot reload survives reloads, not instances, so every other instance sees its own, "
            "different object.",
        ),
        Rule(
            "cached-session",
            "A per-process cache or singleton holds sessions",
            "`lru_cache`, `cache` and singletons memoise per process: each instance builds and "
            "keeps its own session objects, and a change made on one is invisible to the others.",
        ),
        Rule(
            "per-process-secret",
            "Signing secret generated when the process starts",
            "Each instance draws its own random key at import, so a cookie, token or seed signed "
            "by one instance fails verification on every other one, and after every restart.",
        ),
        Rule(
            "in-memory-default",
            "A library keeps sessions in this process by default",
            "The library's default store lives in the memory of the process that made it: a "
            "session created on one instance is unknown to every other one, so a follow-up "
            "request that lands elsewhere fails.",
        ),
        Rule(
            "auto-create-on-miss",
            "A missing session is created on the fly",
            "When a request reaches an instance that lacks the session, an empty one is made "
            "instead of an error: the 404 goes away, the user's state is silently lost, and the "
            "bug is hidden rather than fixed.",
        ),
    )
}

# What each kind of state needs. "live": connections, sockets, SDK sessions; "data": the rest.
FIX_ADVICE: dict[tuple[str, ...], str] = {
    ("kv_seed",): (
        "kv_seed: keep the session data in a shared Redis/KV store, with a signed seed any cold "
        "instance hydrates from."
    ),
    ("stateful", "client_direct"): (
        "a live connection cannot be stored: stateful (one long-lived process owns it and every "
        "request is routed to that owner) or client_direct (the browser holds it; the server "
        "only mints short-lived tokens)."
    ),
    (): (
        "any fix: read one key from configuration shared by every instance (a list, for "
        "rotation) and refuse to start without it."
    ),
}


@dataclass(frozen=True, order=True)
class Finding:
    path: str  # relative to the scanned root, with forward slashes
    line: int
    column: int
    rule: str
    message: str = field(compare=False)
    fixes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def why(self) -> str:
        return RULES[self.rule].why

    @property
    def fix(self) -> str:
        return FIX_ADVICE[self.fixes]


# Words in names, split on `_` and camelCase, singular: what a name says it holds.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@cache
def words(name: str) -> frozenset[str]:
    found = set()
    for word in _WORD.findall(name):
        word = word.lower()
        found.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return frozenset(found)


# A container or object named with one of these holds per-user or per-session state.
STATE_WORDS = {
    "session", "sess", "sid", "conversation", "convo", "chat", "history", "transcript", "cart",
    "basket", "room", "game", "player", "peer", "pc", "rtc", "offer", "connection", "conn",
    "socket", "ws", "websocket", "stream", "client", "subscriber", "listener", "user", "bot",
    "agent", "pipeline", "channel", "presence", "online", "login", "visitor", "customer",
    "thread", "upstream", "realtime",
}  # fmt: skip
# Shared infrastructure, per process by design: a pool or registry of connections is not state.
INFRASTRUCTURE_WORDS = {
    "pool", "registry", "lock", "semaphore", "limiter", "metric", "executor", "callback", "hook",
    "bus", "emitter", "container", "injector", "logger",
}  # fmt: skip
# Clients and process plumbing: one per process by design, never session state (a database
# client or engine, Redis and HTTP clients, loggers, threads and tasks, DI containers).
CLIENT_WORDS = INFRASTRUCTURE_WORDS | {
    "client", "engine", "redis", "prisma", "db", "database", "http", "axios", "thread", "task",
    "future", "maker", "mongo", "pg", "sql", "supabase", "drizzle", "kysely",
}  # fmt: skip
CLIENT_CALLS = {
    "ClientSession", "AsyncClient", "Client", "create_engine", "create_async_engine",
    "sessionmaker", "async_sessionmaker", "scoped_session", "from_url", "getLogger", "get_logger",
    "Thread", "Timer", "create_task", "create_future", "Future", "Event", "Lock", "pino",
    "createClient", "drizzle", "connect", "create_pool",
}  # fmt: skip


def is_client(call_name: str) -> bool:
    """Whether a call with this name makes a client or a piece of process plumbing."""
    return call_name in CLIENT_CALLS or bool(words(call_name) & CLIENT_WORDS)


# A single global object with one of these holds session state (a shared client or pool does not).
SINGLE_STATE_WORDS = STATE_WORDS - {"client", "conn", "connection", "channel", "pipeline"}
# A value made up on a miss with one of these names is a session invented on the spot.
SESSION_WORDS = SINGLE_STATE_WORDS - {"user", "history", "online", "login", "customer", "thread"}
# A key, parameter or argument named with one of these is per-user.
KEY_WORDS = {
    "session", "sess", "sid", "user", "uid", "conversation", "convo", "chat", "room", "call",
    "peer", "client", "customer", "account", "player", "device", "thread", "visitor", "token",
}  # fmt: skip
# A key named with one of these and "id" is a connection's id: `pc_id`, `socket.id`, `connId`.
CONNECTION_WORDS = {"pc", "socket", "conn", "connection", "ws", "transport", "channel"}


def is_key(name: str) -> bool:
    """Whether a key, parameter or argument with this name is per-user or per-connection."""
    said = words(name)
    return bool(said & KEY_WORDS) or ("id" in said and bool(said & CONNECTION_WORDS))


# These make the state a live connection rather than data.
LIVE_WORDS = {
    "ws", "websocket", "socket", "connection", "conn", "peer", "pc", "rtc", "stream", "call",
    "offer", "pipeline", "bot", "agent", "transport", "upstream", "realtime", "subscriber",
    "listener", "queue", "task", "client", "voice", "audio", "video", "media",
}  # fmt: skip
SECRET_WORDS = {"secret", "key", "salt", "pepper", "signing", "signer", "hmac", "jwt", "csrf"}
# A call whose name says it makes something new (as opposed to loading or recovering it).
CREATE_WORDS = {"create", "new", "make", "init", "start", "open", "spawn", "build", "ensure"}
RECOVER_WORDS = {"load", "seed", "hydrate", "decode", "restore", "fetch", "get", "read", "from"}


LIVE = ("stateful", "client_direct")
DATA = ("kv_seed",)


def fixes_for(*names: str, held: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The fixes that fit state: from what is stored in it when that is known ("live" objects,
    or "data" such as literals and parsed bodies), else from the names around it."""
    if "live" in held:
        return LIVE
    if "data" in held:
        return DATA
    if any(words(name) & LIVE_WORDS for name in names):
        return LIVE
    return DATA


def a(name: str, code: bool = True) -> str:
    """`a Thing` or `an InMemoryThing`, the name in backticks unless it is a plain word."""
    shown = f"`{name}`" if code else name
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {shown}"


SUPPRESSION = re.compile(r"sessionfix:\s*ignore\[([^\]]*)\]")


def suppressed_rules(comment: str) -> set[str]:
    """The rule ids a `sessionfix: ignore[rule-a, rule-b]` comment names."""
    return {
        rule.strip()
        for match in SUPPRESSION.finditer(comment)
        for rule in match.group(1).split(",")
        if rule.strip()
    }


def internal_error(path: str, error: Exception) -> str:
    """The error entry for a file the scanner itself failed on: reported, and the scan goes on."""
    return (
        f"{path}: not analysed, the scanner failed on it ({error.__class__.__name__}: {error}); "
        "the other files were scanned"
    )
