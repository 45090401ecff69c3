"""Python facts: what each file says at its top level, read once with `ast`.

Each file is summarised from its top-level and class-level statements (containers, classes,
functions, route handlers, cached functions, secrets drawn at import); function bodies are walked
only in the few files that need it (route registrations in app factories, `global` statements,
what a container is keyed by).
"""

import ast
import io
import re
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..defaults import MemoryDefault, memory_defaults
from ..model import (
    CONNECTION_WORDS,
    CREATE_WORDS,
    KEY_WORDS,
    LIVE_WORDS,
    RECOVER_WORDS,
    SECRET_WORDS,
    suppressed_rules,
    words,
)

MUTABLE_CALLS = {
    "dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque", "ChainMap",
    "WeakValueDictionary", "WeakKeyDictionary", "WeakSet", "TTLCache", "LRUCache", "LFUCache",
    "Cache", "Queue",
}  # fmt: skip
MUTABLE_LITERALS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
MUTATORS = {
    "append", "add", "update", "setdefault", "pop", "popitem", "remove", "discard", "clear",
    "insert", "extend", "appendleft", "put", "put_nowait", "__setitem__", "set",
}  # fmt: skip
CACHE_DECORATORS = {"lru_cache", "cache", "cached", "ttl_cache", "alru_cache"}
ROUTE_DECORATORS = {
    "get", "post", "put", "patch", "delete", "head", "options", "trace", "route", "api_route",
    "websocket", "websocket_route", "view", "api_view", "require_http_methods", "require_GET",
    "require_POST", "require_safe",
}  # fmt: skip
ROUTE_REGISTRATIONS = {
    "Route", "WebSocketRoute", "path", "re_path", "url", "get", "post", "put", "patch",
    "delete", "head", "options", "view", "route", "add_get", "add_post", "add_put",
    "add_patch", "add_delete", "add_head", "add_route", "add_view", "add_api_route",
    "add_api_websocket_route", "add_url_rule", "add_websocket_route", "Mount",
}  # fmt: skip
HANDLER_KEYWORDS = {"endpoint", "view_func", "handler", "view", "route", "app"}
VIEW_BASES = ("View", "ViewSet", "Endpoint", "APIView", "Handler")
RANDOM_CALLS = {"urandom", "token_bytes", "token_hex", "token_urlsafe", "generate_key", "randbytes"}
# Calls that take a signing or encryption key, and the position of that key.
KEYED_CALLS = {
    "HMAC": 0, "Fernet": 0, "MultiFernet": 0, "AESGCM": 0, "AESCCM": 0, "AESSIV": 0,
    "ChaCha20Poly1305": 0, "Serializer": 0, "URLSafeSerializer": 0, "TimedSerializer": 0,
    "URLSafeTimedSerializer": 0, "JSONWebSignatureSerializer": 0, "Signer": 0,
    "TimestampSigner": 0, "SecretBox": 0,
}  # fmt: skip
# Module functions that take a key: `hmac.new(key, ...)`, `jwt.encode(payload, key)`.
KEYED_FUNCTIONS = {
    ("hmac", "new"): 0, ("hmac", "digest"): 0, ("jwt", "encode"): 1, ("jwt", "decode"): 1,
    ("jws", "sign"): 1, ("jws", "verify"): 1, ("jwe", "encrypt"): 1, ("jwe", "decrypt"): 1,
}  # fmt: skip
KEY_KEYWORDS = {"secret_key", "secret", "signing_key", "secret_keys", "jwt_secret", "private_key"}
# Settings that frameworks sign with: `app.secret_key`, Django's SECRET_KEY, Flask's config.
KEY_SETTINGS = {"SECRET_KEY", "JWT_SECRET_KEY", "SESSION_SECRET", "SIGNING_KEY", "SECRET_KEYS"}
Def = ast.FunctionDef | ast.AsyncFunctionDef
# Calls that start a thread or task: a container of their handles keeps work alive, not sessions.
HANDLE_CALLS = {
    "create_task", "ensure_future", "Thread", "Task", "Process", "Timer", "submit",
    "run_coroutine_threadsafe", "start_soon",
}  # fmt: skip
CLIENT_MODULES = {"requests", "httpx", "aiohttp", "sqlalchemy", "boto3", "redis", "urllib3"}
LITERALS = (ast.Constant, ast.JoinedStr, ast.Tuple, *MUTABLE_LITERALS)
DEFAULTS = memory_defaults("python")
DEFAULTS_HINT = [name.encode() for name in DEFAULTS]


def ident(node: ast.AST | None) -> str:
    """The name an expression goes by: `a` for `a`, `x.a`, `a(...)`, `a[...]`, `await a`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call | ast.Await | ast.Subscript | ast.Starred):
        inner = node.func if isinstance(node, ast.Call) else node.value
        return ident(inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 80:
        return node.value  # a dict key such as "session_id"; not a docstring or a template
    return ""


def is_mutable(value: ast.expr | None) -> str:
    """The kind of a mutable container value (`dict`, `set`, ...), or "" for anything else."""
    if isinstance(value, MUTABLE_LITERALS):
        return type(value).__name__.lower().replace("comp", "")
    if isinstance(value, ast.Call) and ident(value.func) in MUTABLE_CALLS:
        return ident(value.func)
    return ""


def is_fresh(value: ast.expr | None) -> bool:
    """A value made on the spot (a literal, a constructor, `create_...()`), not recovered."""
    if isinstance(value, ast.Await):
        value = value.value
    if isinstance(value, MUTABLE_LITERALS):
        return True
    if isinstance(value, ast.Call):
        name = ident(value.func)
        said = words(name)
        return bool(said & CREATE_WORDS or name[:1].isupper()) and not said & RECOVER_WORDS
    return False


def held(value: ast.expr | None, bound: dict[str, ast.expr] | None = None) -> str:
    """What a stored value is, from how it is made: "live" (a connection, stream or other live
    object), "data" (literals, parsed bodies), "handle" (a task or thread), or "" (unknown)."""
    if isinstance(value, ast.Await):
        value = value.value
    if isinstance(value, ast.Name) and bound and value.id in bound:
        value = bound[value.id]
        if isinstance(value, ast.Await):
            value = value.value
    if isinstance(value, LITERALS):
        return "data"
    if isinstance(value, ast.Call):
        name = ident(value.func)
        if name in HANDLE_CALLS:
            return "handle"
        if name in MUTABLE_CALLS or name in {"json", "loads", "model_dump", "dict"}:
            return "data"
        if name[:1].isupper():
            return "live" if words(name) & LIVE_WORDS else "data"
    return ""


NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def walk_shallow(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """ast.walk over several nodes without entering nested functions or classes.

    It reads `_fields` itself rather than through ast.iter_child_nodes: this walk is the
    scanner's hottest loop, and the generator layers of the standard one cost a third of it.
    """
    todo = deque(nodes)
    while todo:
        node = todo.popleft()
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                todo.extend(
                    item
                    for item in value
                    if isinstance(item, ast.AST) and not isinstance(item, NESTED_SCOPES)
                )
            elif isinstance(value, ast.AST) and not isinstance(value, NESTED_SCOPES):
                todo.append(value)


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in a body, those in `if`, loops, `with`, `try` and `match` included, not
    those of nested functions or classes: far fewer nodes than a walk of every expression."""
    todo = list(reversed(body))
    while todo:
        statement = todo.pop()
        yield statement
        if isinstance(statement, NESTED_SCOPES):
            continue
        for name in ("body", "orelse", "finalbody"):
            todo.extend(reversed(getattr(statement, name, ())))
        for handler in getattr(statement, "handlers", ()):
            todo.extend(reversed(handler.body))
        for case in getattr(statement, "cases", ()):
            todo.extend(reversed(case.body))


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, reading `_fields` itself like `walk_shallow` (twice as fast as the standard one,
    whose generator layers cost most of a walk)."""
    todo = [node]
    while todo:
        node = todo.pop()
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                todo.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                todo.append(value)


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Route registrations and route decorators inside functions (app factories) are looked for only
# in files that show signs of them, so most files are read without a walk of every node.
NESTED_REGISTRATIONS = re.compile(
    rb"\.add_(get|post|put|patch|delete|head|route|routes|view|api_route|api_websocket_route"
    rb"|url_rule|websocket_route)\("
)
# `@router.get(` indented under a function; `@mock.patch(` in tests is no route.
NESTED_DECORATORS = re.compile(
    rb"@(?!(?:unittest\.)?mock\.)[\w.]+\.(route|api_route|get|post|put|patch|delete|websocket)\("
)


# A decorator that may be a route's: `@app.get(`, `@router.api_route(`, Litestar's `@get(`.
ROUTE_DECORATOR_HINT = re.compile(
    rb"@(?!(?:unittest\.)?mock\.)[\w.]*\b(?:"
    + "|".join(sorted(ROUTE_DECORATORS)).encode()
    + rb")\("
)
VIEW_CLASS_HINT = re.compile(rb"class\s+\w+\s*\([^)]*(?:" + "|".join(VIEW_BASES).encode() + rb")\b")
SECRET_HINTS = (b"urandom", b"token_", b"generate_key", b"randbytes")
IMPORTS = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)"
    rb"|import[ \t]+([^\n]*))",
    re.MULTILINE,
)
IMPORTED_NAME = re.compile(rb"[A-Za-z_][\w.]*")


def may_serve(path: str, source: bytes) -> bool:
    """Whether a file may hold route handlers, a secret drawn at import or a library default
    that keeps sessions: where the analysis starts. A cheap test of the bytes that errs on the
    side of yes; the files these import, directly or not, are analysed too, and no other file
    can hold anything a route handler reaches."""
    parts = path.split("/")
    return (
        parts[-1] == "views.py"
        or (len(parts) > 1 and parts[-2] == "views")
        or any(hint in source for hint in REGISTRATION_HINTS)
        or any(hint in source for hint in SECRET_HINTS)
        or any(name in source for name in DEFAULTS_HINT)
        or (b"@" in source and ROUTE_DECORATOR_HINT.search(source) is not None)
        or (b"class" in source and VIEW_CLASS_HINT.search(source) is not None)
        or nested_routes(source)
    )


def imported_modules(path: str, source: bytes) -> Iterator[str]:
    """The dotted names a file imports, anywhere in it (functions import lazily), and for
    `from x import y` both `x` and `x.y` (y may be a module). Read from the bytes: a superset,
    since an import inside a string counts too."""
    package = path.removesuffix(".py").split("/")[:-1]  # `a/b/mod.py`, `a/b/__init__.py`: a.b
    for match in IMPORTS.finditer(source):
        dots, base, names, plain = match.groups()
        if plain is not None:
            for name in plain.split(b","):
                found = IMPORTED_NAME.match(name.strip())
                if found:
                    yield found.group(0).decode()
            continue
        module = base.decode()
        if dots:
            up = package[: len(package) - (len(dots) - 1)] if len(dots) > 1 else package
            module = ".".join([*up, module] if module else up)
        if module:
            yield module
        for name in IMPORTED_NAME.findall(names):
            if name != b"import":
                yield f"{module}.{name.decode()}" if module else name.decode()


def nested_routes(source: bytes) -> bool:
    """Whether a file may register routes inside functions. Each pattern starts with a literal,
    which the regular expression engine finds fast; one pattern of alternatives it cannot."""
    return (
        b"Route(" in source
        or b"Mount(" in source
        or (b".add_" in source and NESTED_REGISTRATIONS.search(source) is not None)
        or (b"@" in source and NESTED_DECORATORS.search(source) is not None)
    )


# A registration names the path first: `path("x/", view)`, `Route("/x", endpoint)`, `web.get("/x"`.
REGISTRATION_HINTS = (b"Route(", b"path(", b"url(", b"add_", b'("/', b"('/", b'(r"', b"(r'")
GLOBAL_HINT = re.compile(rb"^[ \t]+global[ \t]", re.MULTILINE)
KEY_HINT = re.compile(
    "|".join(sorted(KEY_WORDS)).encode()
    + b"|"
    + "|".join(sorted(KEY_WORDS)).title().encode()
    + b"|(?i:"
    + "|".join(sorted(CONNECTION_WORDS)).encode()
    + b")_?[iI][dD]"
)


@dataclass(eq=False)
class Function:
    module: "PyModule"
    name: str
    owner: str | None  # the class a method belongs to
    node: Def
    _identifiers: set[str] | None = None
    changes_read: bool = False

    @property
    def identifiers(self) -> set[str]:
        """Every identifier in the function's text (nested functions included): what it may
        call or use. Read with a regular expression, which is much faster than a tree walk."""
        if self._identifiers is None:
            lines = self.module.lines()[self.node.lineno - 1 : self.node.end_lineno]
            self._identifiers = set(IDENTIFIER.findall("\n".join(lines)))
        return self._identifiers


@dataclass
class Container:
    name: str
    kind: str
    node: ast.AST


@dataclass(eq=False)
class PyModule:
    path: str
    tree: ast.Module
    source: bytes
    _lines: list[str] | None = None
    _keyed_by_user: bool | None = None
    containers: list[Container] = field(default_factory=list)
    class_containers: dict[str, list[Container]] = field(default_factory=dict)
    instance_containers: dict[str, list[Container]] = field(default_factory=dict)
    singletons: dict[str, ast.ClassDef] = field(default_factory=dict)
    instances: list[tuple[str, str, ast.AST]] = field(default_factory=list)  # name, class, node
    aliases: dict[str, set[str]] = field(default_factory=dict)
    imported: set[str] = field(default_factory=set)
    module_aliases: dict[str, str] = field(default_factory=dict)  # `import a.b as c`: c -> a.b
    handlers: list[Function] = field(default_factory=list)
    handler_names: set[str] = field(default_factory=set)
    handler_classes: set[str] = field(default_factory=set)
    globals: list[tuple[str, ast.Global, Function]] = field(default_factory=list)
    cached: list[Function] = field(default_factory=list)
    # Random values drawn at import: (the call, the use that makes it a key, or "" when it is
    # only bound to names, which count once one is used as a key).
    secrets: list[tuple[ast.Call, str]] = field(default_factory=list)
    random_names: dict[str, ast.Call] = field(default_factory=dict)
    defs: dict[ast.AST, Function] = field(default_factory=dict)  # every function and method
    # What functions change, read on demand by `changes()`.
    mutated: set[str] = field(default_factory=set)  # module-level names
    mutated_attrs: set[str] = field(default_factory=set)  # attributes of any object
    mutated_qualified: set[str] = field(default_factory=set)  # `store.sessions` of `import store`
    keys: dict[str, set[str]] = field(default_factory=dict)  # container -> key/value names
    # container -> what is stored in it ("live", "data", "handle", "": see `held`)
    held: dict[str, set[str]] = field(default_factory=dict)
    keyed: set[str] = field(default_factory=set)  # containers written as `c[key] = value`
    # Library defaults that keep sessions in memory: the default, the call, the name it is bound
    # to, and the function it is made in (None at module level).
    memory: list[tuple[MemoryDefault, ast.Call, str, Def | None]] = field(default_factory=list)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)  # top-level and nested
    resolved_imports: set[str] | None = None  # `.a.b.`: see `imports_any`
    relative_imports: bool = False

    @property
    def dotted(self) -> str:
        """The import name of the module, as far as its path says: `app/store.py` -> app.store."""
        return self.path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")

    @property
    def keyed_by_user(self) -> bool:
        """Whether the file names a per-user key anywhere (read once)."""
        if self._keyed_by_user is None:
            self._keyed_by_user = bool(KEY_HINT.search(self.source))
        return self._keyed_by_user

    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.source.decode("utf-8", "replace").splitlines()
        return self._lines

    def changes(self, name: str) -> "PyModule":
        """Read what the functions that mention `name` change (`c[k] = v`, `c.append(v)`...),
        each function once: only the functions that matter pay for a walk."""
        for function in self.defs.values():
            if not function.changes_read and name in function.identifiers:
                function.changes_read = True
                nodes = list(walk(function.node))
                bound = {
                    target.id: sub.value
                    for sub in nodes
                    if isinstance(sub, ast.Assign)
                    for target in sub.targets
                    if isinstance(target, ast.Name)
                }
                for sub in nodes:
                    record_change(self, sub, bound)
        return self


BLOCKS = (ast.If, ast.Try, ast.TryStar, ast.With, ast.AsyncWith, ast.Match)


def module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import, including those under `if`, `try` (and `except*`),
    `with` (and `async with`) and `match`."""
    for statement in body:
        yield statement
        if isinstance(statement, BLOCKS):
            nested = [getattr(statement, "body", []), getattr(statement, "orelse", [])]
            nested += [getattr(statement, "finalbody", [])]
            nested += [handler.body for handler in getattr(statement, "handlers", [])]
            nested += [case.body for case in getattr(statement, "cases", [])]
            for block in nested:
                yield from module_statements(block)


def summarise(path: str, source: bytes) -> PyModule:
    tree = ast.parse(source, path)
    module = PyModule(path, tree, source)
    parts = path.split("/")
    views_module = parts[-1] == "views.py" or (len(parts) > 1 and parts[-2] == "views")
    secrets_possible = (
        b"urandom" in source
        or b"token_" in source
        or b"generate_key" in source
        or b"randbytes" in source
    )

    registering = any(hint in source for hint in REGISTRATION_HINTS)
    for statement in module_statements(tree.body):
        if isinstance(statement, ast.Import | ast.ImportFrom):
            module.imported.update((a.asname or a.name).split(".")[0] for a in statement.names)
            for alias in statement.names:
                if isinstance(statement, ast.Import):
                    local = alias.asname or alias.name.split(".")[0]
                    module.module_aliases[local] = alias.name if alias.asname else local
                else:  # `from pkg import store` may import a module
                    package = f"{statement.module}." if statement.module else ""
                    module.module_aliases[alias.asname or alias.name] = package + alias.name
        elif isinstance(statement, Def):
            add_function(module, statement, None, views_module)
            continue
        elif isinstance(statement, ast.ClassDef):
            summarise_class(module, statement, views_module, secrets_possible)
            continue
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            value = statement.value
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if not isinstance(target, ast.Name) or target.id.startswith("__"):
                    continue
                kind = is_mutable(value)
                if kind:
                    module.containers.append(Container(target.id, kind, statement))
                elif isinstance(value, ast.Call) and ident(value.func)[:1].isupper():
                    module.instances.append((target.id, ident(value.func), statement))
                if value is not None and not kind:
                    module.aliases[target.id] = {
                        n.id for n in walk(value) if isinstance(n, ast.Name)
                    }
        if secrets_possible and isinstance(statement, ast.Assign | ast.AnnAssign | ast.Expr):
            secret_statement(module, statement, settings=False)
        if registering and not isinstance(statement, BLOCKS):
            registrations(module, statement)

    if nested_routes(source):
        nested: list[Def] = []
        for node in walk(tree):
            if isinstance(node, Def) and node not in module.defs:
                decorated = any(route_decorator(d, source) for d in node.decorator_list)
                if decorated:
                    add_function(module, node, None, False)
                else:
                    nested.append(node)
            elif isinstance(node, ast.Call) and ident(node.func) in ROUTE_REGISTRATIONS:
                registered_handlers(module, node)
        # Handlers registered by name inside a function: `Mount("/mcp", app=handle)`.
        for node in nested:
            if node.name in module.handler_names:
                add_function(module, node, None, False)
    if any(name in source for name in DEFAULTS_HINT):
        memory_defaults_made(module)
    if b"global" in source and GLOBAL_HINT.search(source):
        for function in list(module.defs.values()):
            global_statements(module, function)
    return module


def memory_defaults_made(module: PyModule) -> None:
    """Library defaults that keep sessions in memory, made at import or in a function, and
    bound to a name: `manager = StreamableHTTPSessionManager(app=app)`."""
    scopes: list[tuple[Def | None, Iterable[ast.AST]]] = [
        (None, module_statements(module.tree.body))
    ]
    scopes += [
        (node, walk_shallow(node.body)) for node in walk(module.tree) if isinstance(node, Def)
    ]
    for scope, nodes in scopes:
        for node in nodes:
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if not isinstance(value, ast.Call) or not isinstance(target, ast.Name):
                continue
            default = DEFAULTS.get(ident(value.func))
            if default is None or not imports_any(module, default.imports):
                continue  # another library's class of the same name
            if not opted_out(default, value):
                module.memory.append((default, value, target.id, scope))


def imports_any(module: PyModule, packages: Sequence[str]) -> bool:
    """Whether the module imports from one of these dotted modules (or a module under one),
    relative imports resolved from its path: inside the library itself, `from ..sessions import
    InMemorySessionService` in `google/adk/cli/fast_api.py` imports from `google.adk.sessions`.
    The path may start above the import root (`src/google/adk/...`), so the dotted name is
    looked for anywhere in the resolved one, on whole parts."""
    if module.resolved_imports is None:
        module.resolved_imports = {f".{n}." for n in imported_modules(module.path, module.source)}
        relative = b"from ." in module.source or b"from\t." in module.source
        module.relative_imports = relative
    wanted = [f".{package}." for package in packages]
    if any(p in name for name in module.resolved_imports for p in wanted):
        return True
    if not module.relative_imports:
        return False
    # A relative import read from a path that starts below the import root (`adk/cli/...`
    # scanned from `google/`): its resolved name may lack the package's first parts, so a
    # resolved name that starts with the last two or more parts of the package counts too.
    for package in packages:
        parts = package.split(".")
        tails = [".".join(parts[i:]) for i in range(1, len(parts) - 1)]
        if any(name.startswith(f".{tail}.") for tail in tails for name in module.resolved_imports):
            return True
    return False


def opted_out(default: MemoryDefault, call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == default.safe_keyword and default.safe_keyword:
            if default.safe_value == "*":
                return True
            given = keyword.value
            return isinstance(given, ast.Constant) and given.value == default.safe_value
    return False


def registrations(module: PyModule, statement: ast.stmt) -> None:
    """Route registrations in statements run at import (`urlpatterns`, `Starlette(routes=...)`)."""
    for node in walk(statement):
        if isinstance(node, ast.Call) and ident(node.func) in ROUTE_REGISTRATIONS:
            registered_handlers(module, node)


def global_statements(module: PyModule, function: Function) -> None:
    assigned = {
        n.id
        for n in walk(function.node)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for sub in walk_shallow(function.node.body):
        if isinstance(sub, ast.Global):
            for name in sub.names:
                if name in assigned:
                    module.globals.append((name, sub, function))


def key_arguments(call: ast.Call) -> Iterator[tuple[ast.expr, str]]:
    """The arguments of a call that are signing or encryption keys, with how they are used."""
    name = ident(call.func)
    position = KEYED_CALLS.get(name)
    if position is None and isinstance(call.func, ast.Attribute):
        position = KEYED_FUNCTIONS.get((ident(call.func.value), name))
        name = f"{ident(call.func.value)}.{name}"
    if position is not None and len(call.args) > position:
        yield call.args[position], f"the key of `{name}()`"
    for keyword in call.keywords:
        if keyword.arg in KEY_KEYWORDS or (position is not None and keyword.arg == "key"):
            yield keyword.value, f"`{name}({keyword.arg}=...)`"


def key_target(target: ast.expr) -> str:
    """How an assignment target signs: `app.secret_key`, `SECRET_KEY`, `config["SECRET_KEY"]`."""
    if isinstance(target, ast.Attribute) and target.attr.lower() in {"secret_key", "secret_keys"}:
        return f"`{ident(target.value)}.{target.attr}`"
    if isinstance(target, ast.Name) and target.id.upper() in KEY_SETTINGS:
        return f"the `{target.id}` setting"
    if isinstance(target, ast.Subscript):
        key = target.slice
        if isinstance(key, ast.Constant) and str(key.value).upper() in KEY_SETTINGS:
            return f"the {key.value!r} setting"
    return ""


def random_calls(node: ast.AST) -> list[ast.Call]:
    return [n for n in walk(node) if isinstance(n, ast.Call) and ident(n.func) in RANDOM_CALLS]


def secret_statement(module: PyModule, statement: ast.stmt, settings: bool) -> None:
    """A random value drawn at import or class creation that is (or may become) a key:
    `app.secret_key = os.urandom(24)`, `SessionMiddleware(secret_key=secrets.token_urlsafe())`,
    a settings field `signing_key = Field(default_factory=lambda: secrets.token_hex())`, or
    `KEY = os.urandom(32)`, a name that counts once something signs with it."""
    calls = random_calls(statement)
    if not calls:
        return
    used: set[int] = set()
    for node in walk(statement):
        if isinstance(node, ast.Call):
            for argument, use in key_arguments(node):
                for call in random_calls(argument):
                    module.secrets.append((call, use))
                    used.add(id(call))
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign):
        targets = [statement.target]
    value = getattr(statement, "value", None)
    left = [call for call in calls if id(call) not in used]
    if not left or value is None:
        return
    for target in targets:
        use = key_target(target)
        if (
            not use
            and settings
            and isinstance(target, ast.Name)
            and words(target.id) & SECRET_WORDS
        ):
            use = f"the `{target.id}` setting"
        if use:
            module.secrets.append((left[0], use))
        elif isinstance(target, ast.Name):
            module.random_names[target.id] = left[0]


def key_names(module: PyModule) -> dict[str, str]:
    """Names (and attributes) this module uses as keys, anywhere, with how: the signing uses
    that make a random value drawn at import a per-process secret."""
    found: dict[str, str] = {}
    for node in walk(module.tree):
        uses: list[tuple[ast.expr, str]] = []
        if isinstance(node, ast.Call):
            uses = list(key_arguments(node))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            uses = [(node.value, key_target(t)) for t in targets if key_target(t)]
        for argument, use in uses:
            for sub in walk(argument):
                if isinstance(sub, ast.Name | ast.Attribute):
                    found.setdefault(ident(sub), use)
    return found


def summarise_class(
    module: PyModule, node: ast.ClassDef, views_module: bool, secrets_possible: bool
) -> None:
    module.classes.setdefault(node.name, node)
    is_view = any(ident(base).endswith(VIEW_BASES) for base in node.bases)
    settings = any(ident(base).endswith(("Settings", "Config")) for base in node.bases)
    for statement in node.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
            kind = is_mutable(statement.value)
            if kind and isinstance(target, ast.Name) and not target.id.startswith("__"):
                module.class_containers.setdefault(node.name, []).append(
                    Container(target.id, kind, statement)
                )
            if isinstance(target, ast.Name) and target.id == "_instance":
                module.singletons[node.name] = node
            if secrets_possible:
                secret_statement(module, statement, settings)
        elif isinstance(statement, ast.ClassDef):
            summarise_class(module, statement, views_module, secrets_possible)
        elif isinstance(statement, Def):
            function = add_function(module, statement, node.name, views_module)
            if is_view and not statement.name.startswith("_"):
                module.handlers.append(function)
            if statement.name == "__init__":
                for sub in walk_shallow(statement.body):
                    if not isinstance(sub, ast.Assign | ast.AnnAssign):
                        continue
                    target = sub.targets[0] if isinstance(sub, ast.Assign) else sub.target
                    kind = is_mutable(sub.value)
                    on_self = isinstance(target, ast.Attribute) and ident(target.value) == "self"
                    if kind and on_self:
                        module.instance_containers.setdefault(node.name, []).append(
                            Container(ident(target), kind, sub)
                        )


def registered_handlers(module: PyModule, call: ast.Call) -> None:
    """`Route("/x", endpoint)`, `path("x/", views.offer)`, `app.add_url_rule("/x", view_func=f)`."""
    if not call.args or not isinstance(call.args[0], ast.Constant):
        return
    if not isinstance(call.args[0].value, str):
        return
    candidates = [*call.args[1:], *(k.value for k in call.keywords if k.arg in HANDLER_KEYWORDS)]
    for candidate in candidates:
        if isinstance(candidate, ast.Call) and ident(candidate.func) == "as_view":
            # `Foo.as_view()`, or a helper that takes the class: `as_view(Foo)`
            if isinstance(candidate.func, ast.Attribute):
                module.handler_classes.add(ident(candidate.func.value))
            elif candidate.args:
                module.handler_classes.add(ident(candidate.args[0]))
        elif isinstance(candidate, ast.Name | ast.Attribute):
            module.handler_names.add(ident(candidate))


def route_decorator(decorator: ast.expr, source: bytes) -> bool:
    """`@app.get(...)`, `@router.api_route(...)`, Litestar's `@get(...)`; not a test's
    `@mock.patch(...)`, `@unittest.mock.patch(...)` or `@patch(...)` imported from `mock`."""
    if not isinstance(decorator, ast.Call) or ident(decorator.func) not in ROUTE_DECORATORS:
        return False
    func = decorator.func
    if isinstance(func, ast.Attribute):
        return ident(func.value) != "mock"
    return not (ident(func) == "patch" and b"mock import" in source)


def add_function(module: PyModule, node: Def, owner: str | None, views_module: bool) -> Function:
    if node in module.defs:
        return module.defs[node]
    function = Function(module, node.name, owner, node)
    module.defs[node] = function
    decorators = {ident(d) for d in node.decorator_list}
    route_decorated = any(route_decorator(d, module.source) for d in node.decorator_list)
    first = node.args.args[0].arg if node.args.args else ""
    if route_decorated or (views_module and owner is None and first == "request"):
        module.handlers.append(function)
    if decorators & CACHE_DECORATORS:
        module.cached.append(function)
    return function


CHANGES = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)


def record_change(
    module: PyModule, node: ast.AST, bound: dict[str, ast.expr] | None = None
) -> None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in MUTATORS:
            stored = node.args[-1] if node.args else None
            mutation(module, node.func.value, node.args[:2], held(stored, bound))
            if node.func.attr == "setdefault" and node.args:
                module.keyed.add(ident(node.func.value))
    elif isinstance(node, CHANGES):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Subscript):
                direct = not isinstance(target.value, ast.Subscript)
                kind = held(value, bound) if direct and value is not None else ""
                mutation(module, target.value, [target.slice, value], kind)
                if direct and value is not None:
                    module.keyed.add(ident(target.value))


def mutation(
    module: PyModule, base: ast.expr, parts: Sequence[ast.expr | None], kind: str = ""
) -> None:
    while isinstance(base, ast.Subscript):  # `c[k].append(v)` changes `c`
        base = base.value
    name = ident(base)
    module.held.setdefault(name, set()).add(kind)
    if isinstance(base, ast.Name):
        module.mutated.add(name)
    elif isinstance(base, ast.Attribute):
        module.mutated_attrs.add(name)
        if isinstance(base.value, ast.Name):
            module.mutated_qualified.add(f"{base.value.id}.{name}")
    module.keys.setdefault(name, set()).update(ident(part) for part in parts if part is not None)


def suppressions(source: bytes) -> dict[int, set[str]]:
    """Line -> rule ids silenced there by a `# sessionfix: ignore[rule]` comment."""
    if b"sessionfix:" not in source:
        return {}
    found: dict[int, set[str]] = {}
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type == tokenize.COMMENT:
                rules = suppressed_rules(token.string)
                if rules:
                    found.setdefault(token.start[0], set()).update(rules)
    except (tokenize.TokenError, SyntaxError):
        pass
    return found
