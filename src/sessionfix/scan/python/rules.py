"""Python rules: the findings, from the facts and the import graph."""

import ast
from collections.abc import Iterator

from ..model import (
    CREATE_WORDS,
    INFRASTRUCTURE_WORDS,
    KEY_WORDS,
    RECOVER_WORDS,
    SESSION_WORDS,
    SINGLE_STATE_WORDS,
    STATE_WORDS,
    Finding,
    a,
    fixes_for,
    internal_error,
    is_client,
    is_key,
    words,
)
from .facts import (
    CLIENT_MODULES,
    Container,
    Def,
    Function,
    PyModule,
    held,
    ident,
    is_fresh,
    is_mutable,
    key_names,
    record_change,
    statements,
    walk,
    walk_shallow,
)
from .imports import ImportGraph


class Project(ImportGraph):
    """The rules, run over every module of the graph."""

    def findings(self, errors: list[str]) -> Iterator[Finding]:
        for module in self.modules:
            try:
                # Listed first, so that one file the analysis trips on costs only its findings.
                found = [
                    *self.module_state(module),
                    *self.class_state(module),
                    *self.global_state(module),
                    *self.closure_state(module),
                    *self.memory_defaults(module),
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
            if not words(name) & STATE_WORDS and not module.keyed_by_user:
                continue  # keyed by nothing per-user: no need to read what it holds
            keys = self.keys(name, module)
            mutated = name in module.changes(name).mutated or self.changed_elsewhere(module, name)
            stored = self.held(name, module)
            if stored == {"handle"}:
                continue  # tasks or threads kept alive, not sessions
            if mutated and self.holds_sessions((name,), keys):
                yield finding(
                    module,
                    container.node,
                    "process-local-sessions",
                    f"`{name}`, a module-level {container.kind}, is changed at run time and "
                    f"read by route handler {describe(user, self.origin)}",
                    fixes_for(name, *keys, held=frozenset(stored)),
                )

    def class_state(self, module: PyModule) -> Iterator[Finding]:

        def state(cls: str, containers: list[Container]) -> Iterator[Container]:
            for container in containers:
                attr = container.name
                if attr not in self.attrs_by_class.get(cls, set()):
                    continue
                named = any(words(name) & STATE_WORDS for name in (attr, cls))
                if not named and not module.keyed_by_user:
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
            for name, node, where in self.instances.get(cls, ()):
                if module not in self.linked(where):
                    continue  # another file's class of the same name
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
            made = [
                sub.value
                for sub in walk(function.node)
                if isinstance(sub, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in sub.targets)
                and not (isinstance(sub.value, ast.Constant) and sub.value.value is None)
            ]
            if made and all(plumbing(value) for value in made):
                continue  # `global _http; _http = aiohttp.ClientSession()`: a shared client
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
            # A token is per user, but a function of it (decoding, verifying) is the same on
            # every instance: caching it is no session.
            keyed = any(words(p) & (KEY_WORDS - {"token"}) for p in params)
            if said & SINGLE_STATE_WORDS or keyed:
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
            if words(function.name) & CREATE_WORDS:
                continue  # `create_session()` is there to make one: no lookup misses
            local: set[str] | None = None
            for statement in statements(function.node.body):
                created = ""
                if isinstance(statement, ast.If) and missing_subjects(statement.test):
                    local = local_names(function.node) if local is None else local
                    created = created_on_miss(statement, local)
                    yield from self.made_up(module, function, statement, created)
                    continue
                # `session = sessions.get(sid) or Session()`, `return ... or ...`
                value = getattr(statement, "value", None)
                node = value.value if isinstance(value, ast.Await) else value
                if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                    first, *rest = node.values
                    recovered = words(ident(first)) & RECOVER_WORDS
                    subject = ""
                    if isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute):
                        subject = ident(first.func.value)
                    made = [isinstance(v, ast.Call) and is_fresh(v) for v in rest]
                    if recovered and words(subject) & STATE_WORDS and any(made):
                        created = subject
                    yield from self.made_up(module, function, node, created)

    def made_up(
        self, module: PyModule, function: Function, node: ast.AST, created: str
    ) -> Iterator[Finding]:
        if created:
            yield finding(
                module,
                node,
                "auto-create-on-miss",
                f"{function.name}() makes a new `{created}` when it is missing "
                "instead of answering that the session does not exist",
                fixes_for(created),
            )

    def held(self, name: str, module: PyModule) -> set[str]:
        """What is stored in a module-level container, here and where imported (see `held`)."""
        found = set(module.changes(name).held.get(name, ()))
        for importer in self.importers(module, name):
            found |= importer.held.get(name, set())
        return found - {""}

    def inner(self, module: PyModule, scope: Def | ast.ClassDef) -> list[Function]:
        """Reached functions (route handlers and what they call) defined inside `scope`."""
        start, end = scope.lineno, scope.end_lineno or scope.lineno
        return [
            f
            for f in module.defs.values()
            if f.node is not scope and f in self.origin and start < f.node.lineno <= end
        ]

    def memory_defaults(self, module: PyModule) -> Iterator[Finding]:
        for default, call, name, scope in module.memory:
            if scope is None:
                user = self.user(module, name)
            else:
                user = next((f for f in self.inner(module, scope) if name in f.identifiers), None)
            if user is None:
                user = self.handed_on(module, scope, name)
            if user is None:
                continue
            yield finding(
                module,
                call,
                "in-memory-default",
                f"`{name}`, {a(default.name)} ({default.package}), keeps {default.keeps} in "
                f"this process, and route handler {describe(user, self.origin)} uses it; "
                f"use {default.instead}",
                default.fixes,
            )

    def closure_state(self, module: PyModule) -> Iterator[Finding]:
        """A container made in an app factory or a route-registering function, kept alive by
        the route handlers it registers there (a closure) or hands it to."""
        if not module.handlers:
            return
        by_name = {f.name: f for f in module.defs.values() if f.owner is None}
        for function in list(module.defs.values()):
            scope = function.node
            inner = self.inner(module, scope)
            callees = [by_name[n] for n in function.identifiers & by_name.keys()]
            if not inner and not any(self.inner(module, c.node) for c in callees):
                continue
            for statement in walk_shallow(scope.body):
                if not isinstance(statement, ast.Assign | ast.AnnAssign):
                    continue
                target = (
                    statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
                )
                kind = is_mutable(statement.value)
                if not kind or not isinstance(target, ast.Name):
                    continue
                name = target.id
                # Each handler that may keep it, with the name it knows the container by.
                users = [(f, name) for f in inner if name in f.identifiers]
                users += self.handed_to(module, scope, name, by_name)
                found = self.kept_by(module, users)
                if found is None:
                    continue
                user, keys, stored = found
                if not self.holds_sessions((name,), keys) or stored == {"handle"}:
                    continue
                yield finding(
                    module,
                    statement,
                    "process-local-sessions",
                    f"`{name}`, {a(kind, code=False)} made in `{function.name}()` and kept "
                    f"by route handler {describe(user, self.origin)}, lives in this process only",
                    fixes_for(name, *keys, held=frozenset(stored)),
                )

    def handed_to(
        self, module: PyModule, scope: Def, name: str, by_name: dict[str, Function]
    ) -> list[tuple[Function, str]]:
        """Route handlers of the functions `scope` passes `name` to, with their parameter name:
        `_setup_routes(app, active_sessions)`."""
        users = []
        for node in walk_shallow(scope.body):
            if not isinstance(node, ast.Call) or ident(node.func) not in by_name:
                continue
            callee = by_name[ident(node.func)].node
            params = [a.arg for a in (*callee.args.posonlyargs, *callee.args.args)]
            passed = [
                params[i]
                for i, arg in enumerate(node.args)
                if isinstance(arg, ast.Name) and arg.id == name and i < len(params)
            ]
            passed += [
                k.arg
                for k in node.keywords
                if k.arg and isinstance(k.value, ast.Name) and k.value.id == name
            ]
            for param in passed:
                users += [(f, param) for f in self.inner(module, callee) if param in f.identifiers]
        return users

    def handed_on(self, module: PyModule, scope: Def | None, name: str) -> Function | None:
        """A route handler that uses what `name` is bound to after it is handed on, here or in
        a module this one imports: to a class that keeps it and registers routes on its own
        instance (`AdkWebServer(session_service=session_service)`, with handlers nested in its
        methods reading `self.session_service`), or to a function whose nested handlers use the
        parameter it is passed as. A class whose methods are merely called by handlers (on
        some other instance) does not count: that instance is not this one."""
        body = scope.body if scope is not None else module.tree.body
        for node in walk_shallow(body):
            if not isinstance(node, ast.Call):
                continue
            positions = [
                i for i, arg in enumerate(node.args) if isinstance(arg, ast.Name) and arg.id == name
            ]
            keywords = [
                k.arg
                for k in node.keywords
                if k.arg and isinstance(k.value, ast.Name) and k.value.id == name
            ]
            if not positions and not keywords:
                continue
            callee = ident(node.func)
            linked = self.linked(module)
            for other in linked:
                cls = other.classes.get(callee)
                if cls is not None:
                    init = next(
                        (s for s in cls.body if isinstance(s, Def) and s.name == "__init__"), None
                    )
                    if init is None:
                        continue
                    kept = kept_attributes(init, passed_as(init, positions, keywords, method=True))
                    users = [
                        f
                        for f in self.inner(other, cls)
                        if self.origin[f] is f and f.owner is None and kept & f.identifiers
                    ]
                    if users:
                        return min(users, key=lambda f: f.node.lineno)
            for function in self.callees(module, callee, methods=False):
                if function.owner is not None:
                    continue
                params = passed_as(function.node, positions, keywords, method=False)
                users = [
                    f for f in self.inner(function.module, function.node) if self.origin[f] is f
                ]
                user = next((f for f in users if params & f.identifiers), None)
                if user is not None:
                    return user
        return None

    def kept_by(
        self, module: PyModule, users: list[tuple[Function, str]]
    ) -> tuple[Function, set[str], set[str]] | None:
        """The first handler that writes the container by key (`c[key] = value`), what it is
        keyed by, and what is stored in it."""
        for user, name in users:
            probe = PyModule(module.path, module.tree, module.source)
            nodes = list(walk(user.node))
            bound = {
                t.id: sub.value
                for sub in nodes
                if isinstance(sub, ast.Assign)
                for t in sub.targets
                if isinstance(t, ast.Name)
            }
            for sub in nodes:
                record_change(probe, sub, bound)
            if name in probe.keyed:
                return user, probe.keys.get(name, set()), probe.held.get(name, set()) - {""}
        return None

    def holds_sessions(self, names: tuple[str, ...], keys: set[str]) -> bool:
        if any(words(name) & INFRASTRUCTURE_WORDS for name in names):
            return False
        if any(words(name) & STATE_WORDS for name in names):
            return True
        return any(is_key(key) for key in keys)


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


def local_names(node: Def) -> set[str]:
    """Parameters with a default, and names bound in the function: filling one in on a miss
    (`if session is None: session = {}`, `if k not in groups: groups[k] = []`) makes up no
    session that outlives the call."""
    arguments = node.args
    defaulted = arguments.args[len(arguments.args) - len(arguments.defaults) :]
    names = {a.arg for a in defaulted}
    names |= {
        a.arg
        for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
        if d is not None
    }
    for sub in walk_shallow(node.body):
        if isinstance(sub, ast.Assign | ast.AnnAssign) and getattr(sub, "value", None) is not None:
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def passed_as(node: Def, positions: list[int], keywords: list[str], method: bool) -> set[str]:
    """The parameters of a function that the arguments at these positions and these keywords
    are bound to (after `self` for a method)."""
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    if method:
        params = params[1:]
    named = {a.arg for a in (*node.args.args, *node.args.kwonlyargs)}
    return {params[i] for i in positions if i < len(params)} | (set(keywords) & named)


def kept_attributes(init: Def, params: set[str]) -> set[str]:
    """The attributes a constructor keeps these parameters in: `self.x = x`."""
    kept = set()
    for node in walk_shallow(init.body):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Name)
            and node.value.id in params
        ):
            kept |= {
                t.attr
                for t in node.targets
                if isinstance(t, ast.Attribute) and ident(t.value) == "self"
            }
    return kept


def plumbing(value: ast.expr | None) -> bool:
    """A value that is a shared client, a task, a thread or a future: never a session."""
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return False
    if isinstance(value.func, ast.Attribute) and ident(value.func.value) in CLIENT_MODULES:
        return True  # `requests.Session()`, `httpx.Client()`
    return is_client(ident(value.func)) or held(value) == "handle"


def created_on_miss(node: ast.If, local: set[str] | None = None) -> str:
    """The session an `if <missing>:` block makes up, or "" when it raises or recovers."""
    subjects = missing_subjects(node.test)
    local = local or set()
    if not subjects or any(isinstance(s, ast.Raise | ast.Return) for s in node.body):
        return ""
    made: set[str] = set()  # names bound to something new in the block
    for sub in walk_shallow(node.body):
        if not isinstance(sub, ast.Assign):
            continue
        fresh = (is_fresh(sub.value) or ident(sub.value) in made) and not plumbing(sub.value)
        for target in sub.targets:
            if isinstance(target, ast.Name) and target.id in local and target.id in subjects:
                continue  # a parameter's default or a local filled in
            if isinstance(target, ast.Subscript) and (
                isinstance(target.value, ast.Subscript)
                or ident(target.value) in local
                or constant_key(target.slice)
            ):
                continue  # nested setup, grouping in a local dict, or a field filled in
            if isinstance(target, ast.Name) and fresh:
                made.add(target.id)
                if target.id in subjects and words(target.id) & SESSION_WORDS:
                    return target.id
            elif isinstance(target, ast.Subscript) and fresh:
                if empty(sub.value) and not is_key(ident(target.slice)):
                    continue  # one level of an index made (`rooms[namespace] = {}`)
                container = ident(target.value)
                if words(container) & STATE_WORDS or (
                    container in subjects and subjects & STATE_WORDS
                ):
                    return container
    return ""


def empty(value: ast.expr) -> bool:
    """An empty container: `{}`, `[]`, `set()`, `dict()`, `bidict()`."""
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.Tuple):
        return not getattr(value, "keys", None) and not getattr(value, "elts", None)
    if isinstance(value, ast.Call) and not value.args and not value.keywords:
        name = ident(value.func)
        return bool(is_mutable(value)) or name.endswith(("dict", "list", "set"))
    return False


def constant_key(key: ast.expr) -> bool:
    """A key that is the same on every call, a literal or a constant's name (`_CONTEXT_KEY`):
    what it fills in is a field of the state, not an entry made for a session."""
    if isinstance(key, ast.Constant):
        return True
    return isinstance(key, ast.Name) and key.id.lstrip("_").isupper()


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
