"""JavaScript and TypeScript facts: what each file imports, holds and does (tree-sitter)."""

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import tree_sitter_javascript
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

from ..defaults import MemoryDefault, memory_defaults
from ..model import (
    CREATE_WORDS,
    LIVE_WORDS,
    RECOVER_WORDS,
    SESSION_WORDS,
    SINGLE_STATE_WORDS,
    STATE_WORDS,
    is_client,
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
DEFAULTS = memory_defaults("javascript")
CONTAINER_VALUES = {"object", "array"}
JSX = {".jsx", ".tsx", ".js", ".mjs", ".cjs"}
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
            if namespace is not None and namespace.type in {"identifier", "this"}:
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
    # Classes: name -> {field: kind} of container fields, and {field: keys} of those changed.
    class_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    class_changes: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # Instances of classes: name, class, declarator, and the function that makes it (None at
    # module level), where that function registers routes.
    instances: list[tuple[str, str, Node, Node | None]] = field(default_factory=list)
    # Containers made in a function that registers routes: name, kind, declarator, function.
    local_containers: list[tuple[str, str, Node, Node]] = field(default_factory=list)
    route_scopes: dict[tuple[int, int], bool] = field(default_factory=dict)
    # What request code stores in each container: see `held`.
    held: dict[str, set[str]] = field(default_factory=dict)
    # Library defaults that keep sessions in memory: the default and the call.
    memory: list[tuple[MemoryDefault, Node]] = field(default_factory=list)


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
        if node.type == "import_clause":
            default = [c for c in node.named_children if c.type == "identifier"]
            if default:  # `import session from "express-session"`
                module.bindings[text(default[0])] = (specifier, "")
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
    if tree.root_node.has_error and extension in JSX and b"&" in source:
        # JSX text may hold a bare `&` (`Terms & Conditions`), which the grammar takes for the
        # start of an entity. `|` is text in JSX, and in code an operator (`||`, `|=`) or a
        # union type where `&` was one too; it keeps every offset, so findings keep their lines.
        retry = parser(extension).parse(source.replace(b"&", b"|"))
        if not retry.root_node.has_error:
            tree = retry
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
        elif value.type in GLOBAL_SINGLETONS:
            kind = global_container(module, value)
            if kind:  # `const store = (g.__store ??= new Map())`, `g.x ?? (g.x = new Map())`
                module.containers.append((name, kind, declarator))
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
        declared = statement.child_by_field_name("declaration") or statement
        if declared.type == "class_declaration":
            class_facts(module, declared)
    for declarator in top_level_declarators(tree.root_node):
        value = unwrap(declarator.child_by_field_name("value"))
        if value is not None and value.type == "new_expression":
            cls = ident(value)
            if cls not in CONTAINER_CLASSES:
                name = text(declarator.child_by_field_name("name"))
                module.instances.append((name, cls, declarator, None))

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


GLOBAL_SINGLETONS = {
    "augmented_assignment_expression",
    "assignment_expression",
    "binary_expression",
}


def global_container(module: JsModule, value: Node) -> str:
    """The kind of container a hot-reload singleton expression keeps on `globalThis` (or an
    alias of it), or ""."""
    left = unwrap(value.child_by_field_name("left"))
    right = unwrap(value.child_by_field_name("right"))
    if right is not None and right.type == "assignment_expression":
        right = unwrap(right.child_by_field_name("right"))  # `g.x ?? (g.x = new Map())`
    on_global = left is not None and left.type == "member_expression"
    if on_global and owner(left) in module.global_aliases:
        return container_kind(right)
    return ""


def container_kind(value: Node | None) -> str:
    value = unwrap(value)
    if value is None:
        return ""
    if value.type == "new_expression" and ident(value) in CONTAINER_CLASSES:
        return ident(value)
    return value.type if value.type in CONTAINER_VALUES else ""


def class_facts(module: JsModule, node: Node) -> None:
    """A class's container fields (`private sessions = new Map()`, `this.rooms = {}` in the
    constructor) and those its methods change (`this.sessions.set(id, s)`, `this.rooms[id] = r`)."""
    name = text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    if body is None:
        return
    fields: dict[str, str] = {}
    changes: dict[str, set[str]] = {}
    for member in body.named_children:
        if member.type in {"public_field_definition", "field_definition"}:
            key = member.child_by_field_name("name") or member.child_by_field_name("property")
            kind = container_kind(member.child_by_field_name("value"))
            if kind:
                fields[text(key)] = kind
    for sub in walk(body):
        if sub.type == "assignment_expression":
            left = unwrap(sub.child_by_field_name("left"))
            if left is None:
                continue
            if owner(left) == "this" and left.type == "member_expression":
                kind = container_kind(sub.child_by_field_name("right"))
                if kind:
                    fields.setdefault(ident(left), kind)
            elif left.type == "subscript_expression" and owner(left).startswith("this."):
                changes.setdefault(owner(left)[5:], set()).add(ident(left))
        elif sub.type == "call_expression":
            function = unwrap(sub.child_by_field_name("function"))
            base = owner(function)
            if base.startswith("this.") and ident(function) in MUTATORS:
                arguments = sub.child_by_field_name("arguments")
                first = arguments.named_children[:1] if arguments is not None else []
                changes.setdefault(base[5:], set()).add(ident(first[0]) if first else "")
    module.class_fields[name] = fields
    module.class_changes[name] = {f: keys for f, keys in changes.items() if f in fields}


def registers_routes(function: Node) -> bool:
    """Whether a function registers route handlers: `app.post("/x", handler)`."""
    for sub in walk(function):
        if sub.type != "call_expression":
            continue
        arguments = sub.child_by_field_name("arguments")
        args = arguments.named_children if arguments is not None else []
        path = args[0] if args else None
        if (
            ident(sub) in ROUTE_METHODS
            and len(args) >= 2
            and path is not None
            and path.type in {"string", "template_string"}
            and text(path).strip("'\"`").startswith("/")
        ):
            return True
    return False


def route_scope(module: JsModule, scope: Node) -> bool:
    """`registers_routes`, read once per function however many values it declares."""
    key = (scope.start_byte, scope.end_byte)
    if key not in module.route_scopes:
        module.route_scopes[key] = registers_routes(scope)
    return module.route_scopes[key]


def enclosing_function(node: Node) -> Node | None:
    parent = node.parent
    while parent is not None and parent.type not in FUNCTIONS:
        parent = parent.parent
    return parent


def memory_default(module: JsModule, node: Node) -> None:
    """A library default that keeps sessions in memory: `session({...})` of express-session
    without a `store`, `require("socket.io")(server)` or `new Server(server)` of socket.io with
    no adapter."""
    function = unwrap(
        node.child_by_field_name("function") or node.child_by_field_name("constructor")
    )
    if function is None:
        return
    specifier = ""
    if function.type == "call_expression" and ident(function) == "require":
        arguments = function.child_by_field_name("arguments")
        if arguments is not None and arguments.named_children:
            specifier = text(arguments.named_children[0]).strip("'\"`")
    elif function.type == "identifier" and text(function) in module.bindings:
        specifier = module.bindings[text(function)][0]
    default = DEFAULTS.get(specifier)
    if default is None:
        return
    arguments = node.child_by_field_name("arguments")
    for argument in arguments.named_children if arguments is not None else []:
        if argument.type == "object" and default.safe_keyword:
            for pair in argument.named_children:
                key = ident(pair.child_by_field_name("key") or pair)
                if key == default.safe_keyword:
                    return  # `session({ store })`
    module.memory.append((default, node))


def read_body(module: JsModule) -> None:
    """What request code does, for a module route handlers reach: changes to containers,
    `globalThis` singletons, sessions made up on a miss."""
    for node in walk(module.root):
        kind = node.type
        if kind == "call_expression":
            call(module, node)
            key_use(module, node)
            if DEFAULTS:
                memory_default(module, node)
        elif kind == "new_expression" and DEFAULTS:
            memory_default(module, node)
        elif kind == "variable_declarator" and in_function(node):
            value = unwrap(node.child_by_field_name("value"))
            if value is not None and value.type in {"new_expression", "object", "array"}:
                scope = enclosing_function(node)
                if scope is not None and route_scope(module, scope):
                    name = text(node.child_by_field_name("name"))
                    container = container_kind(value)
                    if container:  # `function createApp() { const sessions = new Map(); ... }`
                        module.local_containers.append((name, container, node, scope))
                    else:
                        module.instances.append((name, ident(value), node, scope))
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
                stored = held(node.child_by_field_name("right"))
                module.held.setdefault(owner(left), set()).add(stored)
        elif kind == "member_expression":
            base = owner(node)
            if base in module.global_aliases and ident(node) not in module.singletons:
                prop = ident(node)
                named = words(prop) & SINGLE_STATE_WORDS
                assigned = assigned_value(node)
                if assigned is not None and is_client(ident(assigned)):
                    continue  # `globalThis.prisma ??= new PrismaClient()`: a shared client
                if named or (assigned is not None and words(ident(assigned)) & STATE_WORDS):
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
        if args:  # `sessions.set(id, value)`, `peers.add(value)`
            module.held.setdefault(base, set()).add(held(args[-1]))
    elif name in {"get", "has"} and args:
        module.keys.setdefault(base, set()).add(ident(args[0]))
    if name == "on" and len(args) >= 2 and text(args[0]).strip("'\"`") == "connection":
        module.is_route = True  # socket.io: `io.on("connection", socket => ...)`
    if name in ROUTE_METHODS and len(args) >= 2 and args[0].type in {"string", "template_string"}:
        handler_given = any(
            a.type in {"arrow_function", "function_expression", "identifier", "member_expression"}
            for a in args[1:]
        )  # `app.post("/s/:id", ctrl.create)` names a handler in a controller module
        if text(args[0]).strip("'\"`").startswith("/") and handler_given:
            module.is_route = True


def held(value: Node | None) -> str:
    """What a stored value is, from how it is made: "live" (`new RTCPeerConnection()`), "data"
    (literals, objects, arrays), or "" (unknown)."""
    value = unwrap(value)
    if value is None:
        return ""
    if value.type in {"object", "array", "string", "template_string", "number", "true", "false"}:
        return "data"
    if value.type == "new_expression":
        return "live" if words(ident(value)) & LIVE_WORDS else "data"
    return ""


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


def parse_error(module: JsModule) -> str:
    return (
        f"{module.path}:{first_error(module.root)}: does not parse as JavaScript/TypeScript; "
        "scanned as far as the parser recovered, so findings in this file may be missing"
    )
