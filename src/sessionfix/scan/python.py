"""Python: module-level state that route handlers read, found with `ast`.

Each file is summarised once from its top-level and class-level statements (containers,
classes, functions, route handlers, cached functions, secrets drawn at import); function bodies
are walked only in the few files that need it (route registrations in app factories, `global`
statements, what a container is keyed by). The project-wide pass then follows calls by name from
every route handler, reading each reached function's identifiers from its text, so state kept in a
session manager module and used from a routes module is found too.
"""

import ast
import gc
import io
import re
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .model import (
    CREATE_WORDS,
    INFRASTRUCTURE_WORDS,
    KEY_WORDS,
    RECOVER_WORDS,
    SECRET_WORDS,
    SESSION_WORDS,
    SINGLE_STATE_WORDS,
    STATE_WORDS,
    Finding,
    fixes_for,
    internal_error,
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
    "add_api_websocket_route", "add_url_rule", "add_websocket_route",
}  # fmt: skip
HANDLER_KEYWORDS = {"endpoint", "view_func", "handler", "view", "route"}
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


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Route registrations and route decorators inside functions (app factories) are looked for only
# in files that show signs of them, so most files are read without a walk of every node.
NESTED_ROUTES = re.compile(
    rb"\.add_(get|post|put|patch|delete|head|route|routes|view|api_route|api_websocket_route"
    rb"|url_rule|websocket_route)\(|\b(WebSocket)?Route\("
    rb"|@[\w.]+\.(route|api_route|get|post|put|patch|delete|websocket)\("
)
# A registration names the path first: `path("x/", view)`, `Route("/x", endpoint)`, `web.get("/x"`.
REGISTRATION_HINTS = (b"Route(", b"path(", b"url(", b"add_", b'("/', b"('/", b'(r"', b"(r'")
GLOBAL_HINT = re.compile(rb"^[ \t]+global[ \t]", re.MULTILINE)
KEY_HINT = re.compile(
    "|".join(sorted(KEY_WORDS)).encode() + b"|" + "|".join(sorted(KEY_WORDS)).title().encode()
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

    @property
    def dotted(self) -> str:
        """The import name of the module, as far as its path says: `app/store.py` -> app.store."""
        return self.path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")

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
                for sub in ast.walk(function.node):
                    record_change(self, sub)
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
                        n.id for n in ast.walk(value) if isinstance(n, ast.Name)
                    }
        if secrets_possible and isinstance(statement, ast.Assign | ast.AnnAssign | ast.Expr):
            secret_statement(module, statement, settings=False)
        if registering and not isinstance(statement, BLOCKS):
            registrations(module, statement)

    if (b"Route(" in source or b".add_" in source or b"@" in source) and NESTED_ROUTES.search(
        source
    ):
        for node in ast.walk(tree):
            if isinstance(node, Def) and node not in module.defs:
                decorated = any(
                    isinstance(d, ast.Call) and ident(d.func) in ROUTE_DECORATORS
                    for d in node.decorator_list
                )
                if decorated:
                    add_function(module, node, None, False)
            elif isinstance(node, ast.Call) and ident(node.func) in ROUTE_REGISTRATIONS:
                registered_handlers(module, node)
    if b"global" in source and GLOBAL_HINT.search(source):
        for function in list(module.defs.values()):
            global_statements(module, function)
    return module


def registrations(module: PyModule, statement: ast.stmt) -> None:
    """Route registrations in statements run at import (`urlpatterns`, `Starlette(routes=...)`)."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Call) and ident(node.func) in ROUTE_REGISTRATIONS:
            registered_handlers(module, node)


def global_statements(module: PyModule, function: Function) -> None:
    assigned = {
        n.id
        for n in ast.walk(function.node)
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
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and ident(n.func) in RANDOM_CALLS]


def secret_statement(module: PyModule, statement: ast.stmt, settings: bool) -> None:
    """A random value drawn at import or class creation that is (or may become) a key:
    `app.secret_key = os.urandom(24)`, `SessionMiddleware(secret_key=secrets.token_urlsafe())`,
    a settings field `signing_key = Field(default_factory=lambda: secrets.token_hex())`, or
    `KEY = os.urandom(32)`, a name that counts once something signs with it."""
    calls = random_calls(statement)
    if not calls:
        return
    used: set[int] = set()
    for node in ast.walk(statement):
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
    for node in ast.walk(module.tree):
        uses: list[tuple[ast.expr, str]] = []
        if isinstance(node, ast.Call):
            uses = list(key_arguments(node))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            uses = [(node.value, key_target(t)) for t in targets if key_target(t)]
        for argument, use in uses:
            for sub in ast.walk(argument):
                if isinstance(sub, ast.Name | ast.Attribute):
                    found.setdefault(ident(sub), use)
    return found


def summarise_class(
    module: PyModule, node: ast.ClassDef, views_module: bool, secrets_possible: bool
) -> None:
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


def add_function(module: PyModule, node: Def, owner: str | None, views_module: bool) -> Function:
    if node in module.defs:
        return module.defs[node]
    function = Function(module, node.name, owner, node)
    module.defs[node] = function
    decorators = {ident(d) for d in node.decorator_list}
    route_decorated = any(
        isinstance(d, ast.Call) and ident(d.func) in ROUTE_DECORATORS for d in node.decorator_list
    )
    first = node.args.args[0].arg if node.args.args else ""
    if route_decorated or (views_module and owner is None and first == "request"):
        module.handlers.append(function)
    if decorators & CACHE_DECORATORS:
        module.cached.append(function)
    return function


CHANGES = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)


def record_change(module: PyModule, node: ast.AST) -> None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in MUTATORS:
            mutation(module, node.func.value, node.args[:2])
    elif isinstance(node, CHANGES):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Subscript):
                mutation(module, target.value, [target.slice, value])


def mutation(module: PyModule, base: ast.expr, parts: Sequence[ast.expr | None]) -> None:
    while isinstance(base, ast.Subscript):  # `c[k].append(v)` changes `c`
        base = base.value
    name = ident(base)
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


class Project:
    """Every Python file of a scan, and what route handlers reach across them."""

    def __init__(self, modules: list[PyModule]) -> None:
        self.modules = modules
        self.by_name: dict[str, list[Function]] = {}
        self.methods: dict[str, list[Function]] = {}
        self.aliases: dict[str, set[str]] = {}
        for module in modules:
            self.aliases.update(module.aliases)
            for function in module.defs.values():
                self.by_name.setdefault(function.name, []).append(function)
                if function.owner:
                    self.methods.setdefault(function.owner, []).append(function)
        self.origin = self.reach()
        # `import a.store`, `from a import store as s`: who imports what as a module, by the
        # name's last part (the scanned root may not be the import root, so suffixes match).
        self.module_imports: dict[str, list[tuple[PyModule, str, str]]] = {}
        for module in modules:
            for local, dotted in module.module_aliases.items():
                entry = (module, local, dotted)
                self.module_imports.setdefault(dotted.rpartition(".")[2], []).append(entry)
        self._importing: dict[PyModule, dict[PyModule, list[str]]] = {}
        self.instances: dict[str, tuple[str, ast.AST, PyModule]] = {}
        for module in modules:
            for name, cls, node in module.instances:
                self.instances[cls] = (name, node, module)
        # Who uses what, for the names that can hold state only (a set intersection each).
        wanted = {c.name for m in modules for c in m.containers}
        wanted |= {name for m in modules for name, _, _ in m.globals}
        wanted_attrs = {
            c.name
            for m in modules
            for containers in (*m.class_containers.values(), *m.instance_containers.values())
            for c in containers
        }
        self.users: dict[str, list[Function]] = {}
        self.attrs_by_class: dict[str, set[str]] = {}
        for function in self.origin:
            for name in function.identifiers & wanted:
                self.users.setdefault(name, []).append(function)
            if function.owner:
                used = function.identifiers & wanted_attrs
                self.attrs_by_class.setdefault(function.owner, set()).update(used)

    def reach(self) -> dict[Function, Function]:
        """Every function a route handler may call, mapped to one handler that reaches it."""
        origin: dict[Function, Function] = {}
        todo: deque[tuple[Function, Function]] = deque()
        for module in self.modules:
            starts = list(module.handlers)
            for name in module.handler_names:
                starts += self.by_name.get(name, [])
            for name in module.handler_classes:
                starts += self.methods.get(name, [])
            todo.extend((start, start) for start in starts)
        seen_names: set[str] = set()
        while todo:
            function, handler = todo.popleft()
            if function in origin:
                continue
            origin[function] = handler
            names = deque(function.identifiers - seen_names)
            while names:
                name = names.popleft()
                if name in seen_names:
                    continue
                seen_names.add(name)
                for callee in self.by_name.get(name, []) + self.methods.get(name, []):
                    todo.append((callee, handler))
                names.extend(self.aliases.get(name, ()))
        return origin

    def importing(self, module: PyModule) -> dict[PyModule, list[str]]:
        """The modules that import `module` as a module, with the local names they give it."""
        if module not in self._importing:
            mine = module.dotted
            found: dict[PyModule, list[str]] = {}
            for other, local, dotted in self.module_imports.get(mine.rpartition(".")[2], []):
                if other is not module and (
                    mine == dotted or mine.endswith("." + dotted) or dotted.endswith("." + mine)
                ):
                    found.setdefault(other, []).append(local)
            self._importing[module] = found
        return self._importing[module]

    def user(self, module: PyModule, name: str) -> Function | None:
        """A reached function that uses this module-level name, here or where it is imported
        (`from store import sessions`, or `import store` and `store.sessions`)."""
        for function in self.users.get(name, []):
            other = function.module
            if other is module or name in other.imported:
                return function
            if any(
                alias in function.identifiers for alias in self.importing(module).get(other, ())
            ):
                return function
        return None

    def importers(self, module: PyModule, name: str) -> list[PyModule]:
        """The modules that import `name` from `module`, or `module` itself, read for changes."""
        importing = self.importing(module)
        return [
            other.changes(name)
            for other in self.modules
            if other is not module and (name in other.imported or other in importing)
        ]

    def changed_elsewhere(self, module: PyModule, name: str) -> bool:
        for other in self.importers(module, name):
            if name in other.mutated:
                return True
            aliases = self.importing(module).get(other, ())
            if any(f"{alias}.{name}" in other.mutated_qualified for alias in aliases):
                return True
        return False

    def findings(self, errors: list[str]) -> Iterator[Finding]:
        for module in self.modules:
            try:
                # Listed first, so that one file the analysis trips on costs only its findings.
                found = [
                    *self.module_state(module),
                    *self.class_state(module),
                    *self.global_state(module),
                    *self.cached_sessions(module),
                    *self.auto_create(module),
                    *self.secrets(module),
                ]
            except Exception as error:  # reported; the scan goes on
                errors.append(internal_error(module.path, error))
                continue
            yield from found

    def secrets(self, module: PyModule) -> Iterator[Finding]:
        drawn = list(module.secrets)
        if module.random_names:
            # A name bound to the random value (or to one derived from it) used as a key here
            # or in a module that imports it.
            names = dict(module.random_names)
            for alias, sources in module.aliases.items():
                if alias not in names and sources & set(module.random_names):
                    names[alias] = module.random_names[next(iter(sources & set(names)))]
            importing = self.importing(module)
            readers = [module] + [
                other
                for other in self.modules
                if other is not module and (set(names) & other.imported or other in importing)
            ]
            for reader in readers:
                uses = key_names(reader)
                for name in [n for n in names if n in uses]:
                    drawn.append((names.pop(name), uses[name]))
        for call, use in drawn:
            message = (
                f"`{ident(call.func)}()` at import gives every process its own signing secret, "
                f"used as {use}"
            )
            yield finding(module, call, "per-process-secret", message, ())

    def module_state(self, module: PyModule) -> Iterator[Finding]:
        for container in module.containers:
            name = container.name
            user = self.user(module, name)
            if user is None:
                continue
            if not words(name) & STATE_WORDS and not KEY_HINT.search(module.source):
                continue  # keyed by nothing per-user: no need to read what it holds
            keys = self.keys(name, module)
            mutated = name in module.changes(name).mutated or self.changed_elsewhere(module, name)
            if mutated and self.holds_sessions((name,), keys):
                yield finding(
                    module,
                    container.node,
                    "process-local-sessions",
                    f"`{name}`, a module-level {container.kind}, is changed at run time and "
                    f"read by route handler {describe(user, self.origin)}",
                    fixes_for(name, *keys),
                )

    def class_state(self, module: PyModule) -> Iterator[Finding]:

        def state(cls: str, containers: list[Container]) -> Iterator[Container]:
            for container in containers:
                attr = container.name
                if attr not in self.attrs_by_class.get(cls, set()):
                    continue
                named = any(words(name) & STATE_WORDS for name in (attr, cls))
                if not named and not KEY_HINT.search(module.source):
                    continue  # keyed by nothing per-user: no need to read what it holds
                keys = module.changes(attr).keys.get(attr, set())
                if attr in module.mutated_attrs and self.holds_sessions((attr, cls), keys):
                    yield container

        for cls, containers in module.class_containers.items():
            for container in state(cls, containers):
                yield finding(
                    module,
                    container.node,
                    "process-local-sessions",
                    f"`{cls}.{container.name}`, a class-level {container.kind}, is shared by "
                    "this process only",
                    fixes_for(container.name, cls, *module.keys.get(container.name, ())),
                )
        for cls, containers in module.instance_containers.items():
            held = list(state(cls, containers))
            if not held:
                continue
            attr = held[0].name
            fixes = fixes_for(attr, cls, *module.keys.get(attr, ()))
            if cls in module.singletons:
                yield finding(
                    module,
                    module.singletons[cls],
                    "cached-session",
                    f"`{cls}` is a per-process singleton holding `{attr}`",
                    fixes,
                )
            if cls in self.instances:
                name, node, where = self.instances[cls]
                yield finding(
                    where,
                    node,
                    "process-local-sessions",
                    f"`{name}`, a module-level `{cls}`, keeps `{attr}` "
                    f"(a {held[0].kind}) in this process",
                    fixes,
                )

    def global_state(self, module: PyModule) -> Iterator[Finding]:
        for name, node, function in module.globals:
            if not words(name) & SINGLE_STATE_WORDS:
                continue
            user = function if function in self.origin else self.user(module, name)
            if user:
                yield finding(
                    module,
                    node,
                    "global-session-state",
                    f"`global {name}` rebinds per-process state used by route handler "
                    f"{describe(user, self.origin)}",
                    fixes_for(name),
                )

    def cached_sessions(self, module: PyModule) -> Iterator[Finding]:
        for function in module.cached:
            if function not in self.origin:
                continue
            node = function.node
            said = words(function.name) | words(ident(node.returns))
            params = [arg.arg for arg in node.args.args]
            if said & SINGLE_STATE_WORDS or any(words(p) & KEY_WORDS for p in params):
                yield finding(
                    module,
                    node,
                    "cached-session",
                    f"`{function.name}()` caches what it returns in this process",
                    fixes_for(function.name, ident(node.returns)),
                )

    def auto_create(self, module: PyModule) -> Iterator[Finding]:
        for function in module.defs.values():
            if function not in self.origin or not may_create(function.identifiers):
                continue
            for node in walk_shallow(function.node.body):
                created = ""
                if isinstance(node, ast.If):
                    created = created_on_miss(node)
                elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                    first, *rest = node.values
                    recovered = words(ident(first)) & RECOVER_WORDS
                    subject = ""
                    if isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute):
                        subject = ident(first.func.value)
                    made = [isinstance(v, ast.Call) and is_fresh(v) for v in rest]
                    if recovered and words(subject) & STATE_WORDS and any(made):
                        created = subject
                if created:
                    yield finding(
                        module,
                        node,
                        "auto-create-on-miss",
                        f"{function.name}() makes a new `{created}` when it is missing "
                        "instead of answering that the session does not exist",
                        fixes_for(created),
                    )

    def holds_sessions(self, names: tuple[str, ...], keys: set[str]) -> bool:
        if any(words(name) & INFRASTRUCTURE_WORDS for name in names):
            return False
        if any(words(name) & STATE_WORDS for name in names):
            return True
        return any(words(key) & KEY_WORDS for key in keys)

    def keys(self, name: str, module: PyModule) -> set[str]:
        """What a module-level container is keyed by or filled with, here and where imported."""
        found = set(module.changes(name).keys.get(name, ()))
        for importer in self.importers(module, name):
            found |= importer.keys.get(name, set())
        return found


def may_create(identifiers: set[str]) -> bool:
    """Whether a function's text could hold an auto-create: a test for a missing value, and a
    name that speaks of sessions."""
    if not identifiers & {"None", "not", "or"}:
        return False
    return any(words(name) & STATE_WORDS for name in identifiers)


def missing_subjects(test: ast.expr) -> set[str]:
    """What an `if` checks to be missing: `x is None`, `not x`, `k not in c`, `x == None`."""
    if isinstance(test, ast.BoolOp):
        return set().union(*(missing_subjects(value) for value in test.values))
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return {ident(test.operand)} - {""}
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, right = test.ops[0], test.comparators[0]
        none = isinstance(right, ast.Constant) and right.value is None
        if isinstance(op, ast.Is | ast.Eq) and none:
            return {ident(test.left)} - {""}
        if isinstance(op, ast.NotIn):
            return {ident(right)} - {""}
    return set()


def created_on_miss(node: ast.If) -> str:
    """The session an `if <missing>:` block makes up, or "" when it raises or recovers."""
    subjects = missing_subjects(node.test)
    if not subjects or any(isinstance(s, ast.Raise | ast.Return) for s in node.body):
        return ""
    made: set[str] = set()  # names bound to something new in the block
    for sub in walk_shallow(node.body):
        if not isinstance(sub, ast.Assign):
            continue
        fresh = is_fresh(sub.value) or ident(sub.value) in made
        for target in sub.targets:
            if isinstance(target, ast.Name) and fresh:
                made.add(target.id)
                if target.id in subjects and words(target.id) & SESSION_WORDS:
                    return target.id
            elif isinstance(target, ast.Subscript) and fresh:
                container = ident(target.value)
                if words(container) & STATE_WORDS or (
                    container in subjects and subjects & STATE_WORDS
                ):
                    return container
    return ""


def describe(function: Function, origin: dict[Function, Function]) -> str:
    handler = origin[function]
    where = f"`{handler.name}` ({handler.module.path}:{handler.node.lineno})"
    if handler is function:
        return where
    return f"{where}, through `{function.name}()`"


def finding(
    module: PyModule, node: ast.AST, rule: str, message: str, fixes: tuple[str, ...]
) -> Finding:
    line = getattr(node, "lineno", 1)
    column = getattr(node, "col_offset", 0) + 1
    return Finding(module.path, line, column, rule, message, fixes)


def scan_python(files: list[tuple[str, bytes]]) -> tuple[list[Finding], list[str]]:
    """Findings in these (relative path, source) pairs, and the files that could not be parsed."""
    # Every tree stays in memory until the end: with the cyclic garbage collector on, each
    # allocation burst would have it walk all the trees kept so far, five times the work.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return analyse(files)
    finally:
        if collecting:
            gc.enable()


def analyse(files: list[tuple[str, bytes]]) -> tuple[list[Finding], list[str]]:
    modules, errors = [], []
    for path, source in files:
        try:
            modules.append(summarise(path, source))
        except (SyntaxError, ValueError, RecursionError) as error:
            errors.append(f"{path}: not parsed as Python ({error.__class__.__name__}: {error})")
        except Exception as error:  # one file must never end the scan
            errors.append(internal_error(path, error))
    sources = {module.path: module.source for module in modules}
    results = set()
    silenced: dict[str, dict[int, set[str]]] = {}
    for found in Project(modules).findings(errors):
        if found.path not in silenced:
            silenced[found.path] = suppressions(sources[found.path])
        rules = silenced[found.path]
        if found.rule in rules.get(found.line, set()) | rules.get(found.line - 1, set()):
            continue
        results.add(found)
    for module in modules:  # functions and modules refer to each other: free them now, not
        module.defs.clear()  # in a later collection that would walk every tree
        module.handlers.clear()
        module.cached.clear()
        module.globals.clear()
    return sorted(results), errors
