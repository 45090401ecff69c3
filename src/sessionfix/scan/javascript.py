"""JavaScript and TypeScript: module-level `Map`s and objects, and `globalThis` singletons, in
code that route handlers (Next.js route handlers and API routes, Express, Hono) import.

Parsed with tree-sitter. A file is reachable when it defines route handlers or is imported,
directly or not, by a file that does; only reachable files are reported.
"""

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import tree_sitter_javascript
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

from .model import (
    CREATE_WORDS,
    KEY_WORDS,
    RECOVER_WORDS,
    SESSION_WORDS,
    SINGLE_STATE_WORDS,
    STATE_WORDS,
    Finding,
    fixes_for,
    internal_error,
    suppressed_rules,
    words,
)

EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
CONTAINER_CLASSES = {"Map", "Set", "WeakMap", "WeakSet", "Array"}
MUTATORS = {"set", "add", "delete", "clear", "push", "pop", "shift", "unshift", "splice"}
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "all", "use", "route", "on", "options"}
ROUTE_METHODS |= {"head", "ws"}
HTTP_EXPORTS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
RANDOM_CALLS = {"randomBytes", "randomUUID", "getRandomValues", "generateKeySync", "generateSecret"}
# Calls that take a signing or encryption key, and the position of that key.
KEYED_CALLS = {
    "createHmac": 1, "createCipheriv": 1, "createDecipheriv": 1, "createSecretKey": 0,
    "importKey": 1, "cookieParser": 0, "sign": 1, "verify": 1, "jwtVerify": 1,
}  # fmt: skip
# Options that are keys: `session({ secret })`, iron-session's `password`, `jwt({ secret })`.
KEY_PROPERTIES = {"secret", "secretKey", "signingKey", "password", "secrets", "keys"}
FUNCTIONS = {
    "function_declaration", "function_expression", "arrow_function", "method_definition",
    "generator_function_declaration", "generator_function",
}  # fmt: skip
WRAPPERS = {
    "as_expression",
    "satisfies_expression",
    "parenthesized_expression",
    "non_null_expression",
}
NESTED_ROUTE_HINT = re.compile(rb"\.(get|post|put|patch|delete|all|route|on|ws)\(\s*[`'\"]/")
NEXT_ROUTE = re.compile(r"(^|/)(app/(.+/)?route|pages/api/.+)\.(ts|tsx|js|jsx|mjs|cjs)$")


@cache
def parser(extension: str) -> Parser:
    if extension in {".ts", ".mts", ".cts"}:
        return Parser(Language(tree_sitter_typescript.language_typescript()))
    if extension == ".tsx":
        return Parser(Language(tree_sitter_typescript.language_tsx()))
    return Parser(Language(tree_sitter_javascript.language()))


def text(node: Node | None) -> str:
    return node.text.decode(errors="replace") if node is not None and node.text else ""


def unwrap(node: Node | None) -> Node | None:
    while node is not None and node.type in WRAPPERS:
        node = node.named_children[0] if node.named_children else None
    return node


def ident(node: Node | None) -> str:
    """The name an expression goes by: `a` for `a`, `x.a`, `a(...)`, `x[a]`, `await a`."""
    node = unwrap(node)
    if node is None:
        return ""
    if node.type in {
        "identifier",
        "property_identifier",
        "type_identifier",
        "shorthand_property_identifier",
    }:
        return text(node)
    if node.type == "member_expression":
        return text(node.child_by_field_name("property"))
    if node.type in {"call_expression", "new_expression"}:
        return ident(
            node.child_by_field_name("function") or node.child_by_field_name("constructor")
        )
    if node.type == "subscript_expression":
        return ident(node.child_by_field_name("index"))
    if node.type == "await_expression":
        return ident(node.named_children[0] if node.named_children else None)
    if node.type == "string":
        return text(node).strip("'\"")
    return ""


def owner(node: Node | None) -> str:
    """The object a member or subscript expression belongs to: `sessions` in `sessions.get`,
    `store.sessions` in `store.sessions.set` (a namespace import's export)."""
    node = unwrap(node)
    if node is not None and node.type in {"member_expression", "subscript_expression"}:
        base = unwrap(node.child_by_field_name("object"))
        if base is not None and base.type in {"identifier", "this"}:
            return text(base)
        if base is not None and base.type == "member_expression":
            namespace = unwrap(base.child_by_field_name("object"))
            if namespace is not None and namespace.type == "identifier":
                return f"{text(namespace)}.{ident(base)}"
    return ""


def walk(node: Node) -> Iterator[Node]:
    """Every node under `node`, itself first, in source order.

    A tree cursor moves through the tree without building each node's list of children, which
    is most of the cost on large bundles.
    """
    cursor = node.walk()
    while True:
        yield cursor.node  # type: ignore[misc]  # never None while the cursor is on the tree
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            # goto_parent() stops at the cursor's root, which is `node`: the walk is done.
            if not cursor.goto_parent():
                return


def in_function(node: Node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in FUNCTIONS:
            return True
        parent = parent.parent
    return False


def is_fresh(node: Node | None) -> bool:
    node = unwrap(node)
    if node is not None and node.type == "await_expression":
        node = unwrap(node.named_children[0] if node.named_children else None)
    if node is None:
        return False
    if node.type in {"object", "array", "new_expression"}:
        return True
    if node.type == "call_expression":
        said = words(ident(node))
        return bool(said & CREATE_WORDS) and not said & RECOVER_WORDS
    return False


@dataclass
class JsModule:
    path: str
    source: bytes
    root: Node
    global_aliases: set[str] = field(default_factory=lambda: {"globalThis", "global"})
    imports: set[str] = field(default_factory=set)
    is_route: bool = False
    containers: list[tuple[str, str, Node]] = field(default_factory=list)
    mutated: set[str] = field(default_factory=set)
    keys: dict[str, set[str]] = field(default_factory=dict)
    singletons: dict[str, Node] = field(default_factory=dict)
    secrets: list[tuple[str, Node]] = field(default_factory=list)  # drawn at import
    key_uses: dict[str, str] = field(default_factory=dict)  # names used as keys, and how
    direct_secrets: list[tuple[str, Node]] = field(default_factory=list)  # how, the random call
    # Imported names: local name -> (specifier, exported name, or "" for the whole module).
    bindings: dict[str, tuple[str, str]] = field(default_factory=dict)
    created: list[tuple[str, Node]] = field(default_factory=list)


def top_level_declarators(root: Node) -> Iterator[Node]:
    for statement in root.named_children:
        if statement.type == "export_statement":
            statement = statement.child_by_field_name("declaration") or statement
        if statement.type in {"lexical_declaration", "variable_declaration"}:
            yield from (c for c in statement.named_children if c.type == "variable_declarator")


def first_error(root: Node) -> int:
    """The line of the first syntax error tree-sitter recovered from."""
    for node in walk(root):
        if node.type == "ERROR" or node.is_missing:
            return int(node.start_point[0]) + 1
    return 1


def import_bindings(module: JsModule, statement: Node, specifier: str) -> None:
    """`import { a, b as c }`, `import * as ns`, `import d` from a specifier."""
    for node in walk(statement):
        if node.type == "import_specifier":
            name = text(node.child_by_field_name("name"))
            alias = text(node.child_by_field_name("alias")) or name
            module.bindings[alias] = (specifier, name)
        elif node.type == "namespace_import":
            names = [c for c in node.named_children if c.type == "identifier"]
            if names:
                module.bindings[text(names[0])] = (specifier, "")


def require_bindings(module: JsModule, declarator: Node, specifier: str) -> None:
    """`const { a, b: c } = require("x")`, `const ns = require("x")`."""
    pattern = declarator.child_by_field_name("name")
    if pattern is None:
        return
    if pattern.type == "identifier":
        module.bindings[text(pattern)] = (specifier, "")
    elif pattern.type == "object_pattern":
        for node in pattern.named_children:
            if node.type == "shorthand_property_identifier_pattern":
                module.bindings[text(node)] = (specifier, text(node))
            elif node.type == "pair_pattern":
                key, value = node.child_by_field_name("key"), node.child_by_field_name("value")
                module.bindings[text(value)] = (specifier, text(key))


def summarise(path: str, source: bytes) -> JsModule:
    """What the top level says: imports, containers, secrets, and whether it handles routes."""
    extension = posixpath.splitext(path)[1]
    tree = parser(extension).parse(source)
    module = JsModule(path, source, tree.root_node, is_route=bool(NEXT_ROUTE.search(path)))

    for declarator in top_level_declarators(tree.root_node):
        name = text(declarator.child_by_field_name("name"))
        value = unwrap(declarator.child_by_field_name("value"))
        if value is None:
            continue
        if value.type == "new_expression" and ident(value) in CONTAINER_CLASSES:
            module.containers.append((name, ident(value), declarator))
        elif value.type in {"object", "array"}:
            module.containers.append((name, value.type, declarator))
        elif value.type == "identifier" and text(value) in module.global_aliases:
            module.global_aliases.add(name)
        elif value.type == "call_expression":
            call(module, value)  # `const x = require("./x")`
            arguments = value.child_by_field_name("arguments")
            if ident(value) == "require" and arguments is not None and arguments.named_children:
                require_bindings(
                    module, declarator, text(arguments.named_children[0]).strip("'\"`")
                )
        if any(n.type == "call_expression" and ident(n) in RANDOM_CALLS for n in walk(value)):
            module.secrets.append((name, declarator))  # a finding once it is used as a key
        if name in HTTP_EXPORTS and declarator.parent and declarator.parent.parent:
            module.is_route |= declarator.parent.parent.type == "export_statement"

    for statement in tree.root_node.named_children:
        source_node = statement.child_by_field_name("source")
        if statement.type in {"import_statement", "export_statement"} and source_node is not None:
            specifier = text(source_node).strip("'\"`")
            module.imports.add(specifier)
            if statement.type == "import_statement":
                import_bindings(module, statement, specifier)
        declaration = statement.child_by_field_name("declaration")
        if statement.type == "export_statement" and declaration is not None:
            named = text(declaration.child_by_field_name("name"))
            module.is_route |= declaration.type == "function_declaration" and named in HTTP_EXPORTS
        if statement.type == "expression_statement":
            for node in walk(statement):
                if node.type == "call_expression":
                    call(module, node)  # `app.get("/x", handler)`, `require("./x")`
    if not module.is_route and NESTED_ROUTE_HINT.search(source):
        for node in walk(tree.root_node):  # routes registered inside a function
            if node.type == "call_expression":
                call(module, node)
    return module


def read_body(module: JsModule) -> None:
    """What request code does, for a module route handlers reach: changes to containers,
    `globalThis` singletons, sessions made up on a miss."""
    for node in walk(module.root):
        kind = node.type
        if kind == "call_expression":
            call(module, node)
            key_use(module, node)
        elif kind == "pair" and ident(node.child_by_field_name("key")) in KEY_PROPERTIES:
            used_as_key(
                module,
                node.child_by_field_name("value"),
                f"the `{ident(node.child_by_field_name('key'))}` option",
            )
        elif kind in {"assignment_expression", "augmented_assignment_expression"}:
            left = unwrap(node.child_by_field_name("left"))
            member = left is not None and left.type in {"member_expression", "subscript_expression"}
            if member and in_function(node):
                mutated(module, owner(left), ident(left))
        elif kind == "member_expression":
            base = owner(node)
            if base in module.global_aliases and ident(node) not in module.singletons:
                prop = ident(node)
                held = words(prop) & SINGLE_STATE_WORDS
                assigned = assigned_value(node)
                if held or (assigned is not None and words(ident(assigned)) & STATE_WORDS):
                    module.singletons[prop] = node
        elif kind == "if_statement" and in_function(node):
            created = created_on_miss(node)
            if created:
                module.created.append((created, node))
        elif kind == "binary_expression" and in_function(node):
            operator = text(node.child_by_field_name("operator"))
            left = unwrap(node.child_by_field_name("left"))
            if operator in {"??", "||"} and left is not None and left.type == "call_expression":
                function = left.child_by_field_name("function")
                subject = owner(function)
                recovered = words(ident(function)) & RECOVER_WORDS
                if recovered and words(subject) & STATE_WORDS:
                    right = unwrap(node.child_by_field_name("right"))
                    made = right is not None and right.type in {"call_expression", "new_expression"}
                    if made and is_fresh(right):
                        module.created.append((subject, node))


def key_use(module: JsModule, node: Node) -> None:
    """`createHmac("sha256", KEY)`, `jwt.sign(payload, KEY)`, `new SignJWT(p).sign(KEY)`."""
    name = ident(node)
    position = KEYED_CALLS.get(name)
    arguments = node.child_by_field_name("arguments")
    args = arguments.named_children if arguments is not None else []
    if position is None or not args:
        return
    if name in {"sign", "verify"} and len(args) == 1:
        position = 0  # jose: `new SignJWT(payload).sign(key)`
    if len(args) > position:
        used_as_key(module, args[position], f"the key of `{name}()`")


def used_as_key(module: JsModule, argument: Node | None, use: str) -> None:
    if argument is None:
        return
    for sub in walk(argument):
        if sub.type in {"identifier", "property_identifier"}:
            module.key_uses.setdefault(text(sub), use)
        elif sub.type == "call_expression" and ident(sub) in RANDOM_CALLS and not in_function(sub):
            module.direct_secrets.append((use, sub))


def assigned_value(member: Node) -> Node | None:
    parent = member.parent
    assignments = {"assignment_expression", "augmented_assignment_expression"}
    if parent is None or parent.type not in assignments:
        return None
    if parent.child_by_field_name("left") == member:
        return unwrap(parent.child_by_field_name("right"))
    return None


def call(module: JsModule, node: Node) -> None:
    function = unwrap(node.child_by_field_name("function"))
    arguments = node.child_by_field_name("arguments")
    args = arguments.named_children if arguments is not None else []
    name = ident(function)
    if name == "require" and args:
        module.imports.add(text(args[0]).strip("'\"`"))
    if function is None or function.type != "member_expression":
        return
    base = owner(function)
    if name in MUTATORS and in_function(node):
        mutated(module, base, ident(args[0]) if args else "")
    elif name in {"get", "has"} and args:
        module.keys.setdefault(base, set()).add(ident(args[0]))
    if name in ROUTE_METHODS and len(args) >= 2 and args[0].type in {"string", "template_string"}:
        handler_given = any(
            a.type in {"arrow_function", "function_expression", "identifier", "member_expression"}
            for a in args[1:]
        )  # `app.post("/s/:id", ctrl.create)` names a handler in a controller module
        if text(args[0]).strip("'\"`").startswith("/") and handler_given:
            module.is_route = True


def mutated(module: JsModule, base: str, key: str) -> None:
    module.mutated.add(base)
    module.keys.setdefault(base, set()).add(key)


def missing_subjects(condition: Node | None) -> set[str]:
    """`!x`, `!map.has(k)`, `x === undefined`, `x == null`, joined with && or ||."""
    condition = unwrap(condition)
    if condition is None:
        return set()
    if (
        condition.type == "unary_expression"
        and text(condition.child_by_field_name("operator")) == "!"
    ):
        argument = unwrap(condition.child_by_field_name("argument"))
        if argument is not None and argument.type == "call_expression":
            function = argument.child_by_field_name("function")
            return {owner(function)} if ident(function) == "has" else set()
        return {ident(argument)} - {""}
    if condition.type == "binary_expression":
        operator = text(condition.child_by_field_name("operator"))
        left, right = condition.child_by_field_name("left"), condition.child_by_field_name("right")
        if operator in {"&&", "||"}:
            return missing_subjects(left) | missing_subjects(right)
        if operator in {"===", "=="} and text(right) in {"undefined", "null"}:
            return {ident(left)} - {""}
    return set()


def created_on_miss(node: Node) -> str:
    subjects = missing_subjects(node.child_by_field_name("condition"))
    body = node.child_by_field_name("consequence")
    if not subjects or body is None:
        return ""
    statements = body.named_children if body.type == "statement_block" else [body]
    if any(s.type in {"return_statement", "throw_statement"} for s in statements):
        return ""
    made: set[str] = set()  # names bound to something new in the block
    for sub in walk(body):
        if sub.type == "variable_declarator" or sub.type == "assignment_expression":
            field_name = "name" if sub.type == "variable_declarator" else "left"
            left = unwrap(sub.child_by_field_name(field_name))
            right = sub.child_by_field_name("value" if field_name == "name" else "right")
            fresh = is_fresh(right) or ident(right) in made
            if fresh and left is not None and left.type == "identifier":
                made.add(text(left))
                if text(left) in subjects and words(text(left)) & SESSION_WORDS:
                    return text(left)
            subscript = left is not None and left.type == "subscript_expression"
            if fresh and subscript and words(owner(left)) & STATE_WORDS:
                return owner(left)
        if sub.type == "call_expression" and ident(sub) == "set":
            container = owner(sub.child_by_field_name("function"))
            arguments = sub.child_by_field_name("arguments")
            value = arguments.named_children[1:2] if arguments is not None else []
            stored = value and (is_fresh(value[0]) or ident(value[0]) in made)
            if stored and words(container) & STATE_WORDS:
                return container
    return ""


def resolve(module: str, specifier: str, known: set[str]) -> str | None:
    """The scanned file an import names: relative, or `@/` / `~/` from a project root."""
    if specifier.startswith("."):
        bases = [posixpath.normpath(posixpath.join(posixpath.dirname(module), specifier))]
    elif specifier[:2] in {"@/", "~/"}:
        # The alias of the project root (or its src/): the nearest folder up that has the file.
        folder, bases = posixpath.dirname(module), []
        while True:
            bases += [
                posixpath.join(folder, specifier[2:]),
                posixpath.join(folder, "src", specifier[2:]),
            ]
            if not folder:
                break
            folder = posixpath.dirname(folder)
    else:
        return None
    for base in bases:
        stem = posixpath.splitext(base)[0] if base.endswith(EXTENSIONS) else base
        for candidate in [base, *(stem + e for e in EXTENSIONS)]:
            if candidate in known:
                return candidate
            for extension in EXTENSIONS:
                if f"{base}/index{extension}" in known:
                    return f"{base}/index{extension}"
    return None


def suppressions(module: JsModule, root: Node) -> dict[int, set[str]]:
    if b"sessionfix:" not in module.source:
        return {}
    found: dict[int, set[str]] = {}
    for node in walk(root):
        if node.type == "comment":
            rules = suppressed_rules(text(node))
            if rules:
                found.setdefault(node.end_point[0] + 1, set()).update(rules)
    return found


def finding(
    module: JsModule, node: Node, rule: str, message: str, fixes: tuple[str, ...]
) -> Finding:
    row, column = node.start_point
    return Finding(module.path, row + 1, column + 1, rule, message, fixes)


def findings(module: JsModule) -> Iterator[Finding]:
    for name, kind, node in module.containers:
        keys = module.keys.get(name, set())
        session_ish = words(name) & STATE_WORDS or any(words(k) & KEY_WORDS for k in keys)
        if name in module.mutated and session_ish:
            yield finding(
                module,
                node,
                "process-local-sessions",
                f"`{name}`, a module-level {kind}, is changed by request code and lives in "
                "this process only",
                fixes_for(name, *keys),
            )
    for name, node in module.singletons.items():
        yield finding(
            module,
            node,
            "global-session-state",
            f"`globalThis.{name}` keeps session state in this process (a hot-reload singleton "
            "is still one per instance)",
            fixes_for(name),
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


def share_changes(modules: dict[str, JsModule], reachable: set[str]) -> None:
    """What a module does to the names it imports counts for the module that exports them:
    `sessions.set(...)` in a route file changes the `Map` that `lib/store.ts` exports."""
    known = set(modules)
    for path in reachable:
        module = modules[path]
        for local, (specifier, exported) in module.bindings.items():
            target = resolve(path, specifier, known)
            if target is None or target not in reachable:
                continue
            exporter = modules[target]
            changes = {}
            if exported and local in module.mutated:
                changes[exported] = module.keys.get(local, set())
            elif not exported:
                for name in module.mutated:
                    if name.startswith(f"{local}."):
                        changes[name.removeprefix(f"{local}.")] = module.keys.get(name, set())
            for name, keys in changes.items():
                exporter.mutated.add(name)
                exporter.keys.setdefault(name, set()).update(keys)
            # A key imported and used here: `createHmac("sha256", SECRET)`, `keys.SECRET`.
            if exported and local in module.key_uses:
                exporter.key_uses.setdefault(exported, module.key_uses[local])
            elif not exported:
                for name, use in module.key_uses.items():
                    exporter.key_uses.setdefault(name, use)


def parse_error(module: JsModule) -> str:
    return (
        f"{module.path}:{first_error(module.root)}: does not parse as JavaScript/TypeScript; "
        "scanned as far as the parser recovered, so findings in this file may be missing"
    )


def scan_javascript(files: list[tuple[str, bytes]]) -> tuple[list[Finding], list[str]]:
    modules: dict[str, JsModule] = {}
    errors: list[str] = []
    for path, source in files:
        try:
            modules[path] = summarise(path, source)
        except Exception as error:  # one file must never end the scan
            errors.append(internal_error(path, error))
            continue
        if modules[path].root.has_error:
            errors.append(parse_error(modules[path]))
    known = set(modules)
    reachable: set[str] = set()
    todo = [path for path, module in modules.items() if module.is_route]
    while todo:
        path = todo.pop()
        if path in reachable:
            continue
        reachable.add(path)
        for specifier in modules[path].imports:
            target = resolve(path, specifier, known)
            if target:
                todo.append(target)
    results = []
    for path in sorted(reachable):
        try:
            read_body(modules[path])
        except Exception as error:  # one file must never end the scan
            errors.append(internal_error(path, error))
            reachable.discard(path)
    share_changes(modules, reachable)
    for path in sorted(reachable):
        module = modules[path]
        silenced: dict[int, set[str]] | None = None
        try:
            found_here = list(findings(module))
        except Exception as error:  # one file must never end the scan
            errors.append(internal_error(path, error))
            continue
        for found in found_here:
            if silenced is None:
                silenced = suppressions(module, module.root)
            if found.rule in silenced.get(found.line, set()) | silenced.get(found.line - 1, set()):
                continue
            results.append(found)
    return sorted(set(results)), errors
