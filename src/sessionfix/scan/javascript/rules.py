"""JavaScript and TypeScript rules: the findings, from each reachable module's facts."""

from collections.abc import Iterator

from tree_sitter import Node

from ..model import INFRASTRUCTURE_WORDS, STATE_WORDS, Finding, a, fixes_for, is_key, words
from .facts import JsModule, text


def finding(
    module: JsModule, node: Node, rule: str, message: str, fixes: tuple[str, ...]
) -> Finding:
    row, column = node.start_point
    return Finding(module.path, row + 1, column + 1, rule, message, fixes)


def findings(module: JsModule) -> Iterator[Finding]:
    singleton_rows = {node.start_point[0] for node in module.singletons.values()}
    for name, kind, node in module.containers:
        if node.start_point[0] in singleton_rows:
            continue  # reported once, as the `globalThis` singleton it is
        keys = module.keys.get(name, set())
        session_ish = words(name) & STATE_WORDS or any(is_key(k) for k in keys)
        if name in module.mutated and session_ish:
            yield finding(
                module,
                node,
                "process-local-sessions",
                f"`{name}`, a module-level {kind}, is changed by request code and lives in "
                "this process only",
                fixes_for(name, *keys, held=stored(module, name)),
            )
    for name, kind, node, scope in module.local_containers:
        keys = module.keys.get(name, set())
        session_ish = words(name) & STATE_WORDS or any(is_key(k) for k in keys)
        if name in module.mutated and session_ish:
            yield finding(
                module,
                node,
                "process-local-sessions",
                f"`{name}`, {a(kind, code=False)} made in {function_name(scope)}, is kept by "
                "the route handlers registered there and lives in this process only",
                fixes_for(name, *keys),
            )
    yield from class_instances(module)
    for default, node in module.memory:
        if default.safe_call and f".{default.safe_call}(".encode() in module.source:
            continue  # `io.adapter(createAdapter(pub, sub))`
        yield finding(
            module,
            node,
            "in-memory-default",
            f"`{default.package}` keeps {default.keeps} in this process by default; use "
            f"{default.instead}",
            default.fixes,
        )
    for name, node in module.singletons.items():
        yield finding(
            module,
            node,
            "global-session-state",
            f"`globalThis.{name}` keeps session state in this process (a hot-reload singleton "
            "is still one per instance)",
            fixes_for(name, held=stored(module, declared_name(node))),
        )
    for created, node in module.created:
        yield finding(
            module,
            node,
            "auto-create-on-miss",
            f"a missing entry of `{created}` is made up instead of answering that the session "
            "does not exist",
            fixes_for(created),
        )
    for name, node in module.secrets:
        use = module.key_uses.get(name)
        if use:
            message = f"`{name}` is drawn at random in every process and used as {use}"
            yield finding(module, node, "per-process-secret", message, ())
    for use, node in module.direct_secrets:
        message = f"a key drawn at random in every process is used as {use}"
        yield finding(module, node, "per-process-secret", message, ())


def held_state(module: JsModule, cls: str) -> tuple[str, str, set[str]] | None:
    """The first container field of a class that its methods change and that holds per-user
    or per-connection state: (field, kind, keys)."""
    fields = module.class_fields.get(cls, {})
    for name, keys in module.class_changes.get(cls, {}).items():
        named = (words(name) | words(cls)) & STATE_WORDS
        if named or any(is_key(k) for k in keys):
            return name, fields[name], keys
    return None


def class_instances(module: JsModule) -> Iterator[Finding]:
    """A class instance that keeps a `Map` or object of sessions: a module-level singleton of a
    module that route handlers import, or one made in a function that registers routes."""
    for name, cls, node, scope in module.instances:
        if words(cls) & INFRASTRUCTURE_WORDS:
            continue  # an event bus, a registry of callbacks, a DI container
        state = held_state(module, cls)
        if state is None:
            continue
        if scope is not None and text(scope).count(name) < 2:
            continue  # made there, but not used by anything it registers
        attr, kind, keys = state
        where = "at module level" if scope is None else f"in {function_name(scope)}"
        yield finding(
            module,
            node,
            "process-local-sessions",
            f"`{name}`, {a(cls)} made {where}, keeps `{attr}` (a {kind}) that route handlers "
            "change, in this process only",
            fixes_for(name, cls, attr, *keys),
        )


def function_name(scope: Node) -> str:
    """`setupAuthServer()` for `function setupAuthServer()` or `const setupAuthServer = () =>`."""
    named = scope.child_by_field_name("name")
    if named is not None:
        return f"`{text(named)}()`"
    parent = scope.parent
    if parent is not None and parent.type == "variable_declarator":
        return f"`{text(parent.child_by_field_name('name'))}()`"
    return "a function"


def stored(module: JsModule, name: str) -> frozenset[str]:
    return frozenset(module.held.get(name, set()) - {""})


def declared_name(node: Node) -> str:
    """The name of the declaration an expression is the value of: `sessions` in
    `export const sessions = (g.__sessions ??= new Map())`."""
    parent = node.parent
    while parent is not None and parent.type != "variable_declarator":
        parent = parent.parent
    return text(parent.child_by_field_name("name")) if parent is not None else ""
