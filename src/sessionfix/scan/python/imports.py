"""Python import graph: which functions route handlers reach, and which modules import which.

Calls are followed by name from every route handler, reading each reached function's identifiers
from its text, so state kept in a session manager module and used from a routes module is found.
A name links to a function of another file only when that file is among those the caller's file
imports, directly or not: two unrelated scripts in one folder never reach each other.
"""

import ast
from collections import deque

from .facts import Function, PyModule, imported_modules, may_serve


class ImportGraph:
    """Every Python file of a scan, what route handlers reach, and who imports whom."""

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
        self.by_path = {module.path: module for module in modules}
        self._by_last: dict[str, list[tuple[str, str]]] = {}
        for module in modules:
            self._by_last.setdefault(module.dotted.rpartition(".")[2], []).append(
                (module.dotted, module.path)
            )
        self._linked: dict[PyModule, frozenset[PyModule]] = {}
        self._imports: dict[PyModule, set[PyModule]] = {}
        self.origin = self.reach()
        # `import a.store`, `from a import store as s`: who imports what as a module, by the
        # name's last part (the scanned root may not be the import root, so suffixes match).
        self.module_imports: dict[str, list[tuple[PyModule, str, str]]] = {}
        for module in modules:
            for local, dotted in module.module_aliases.items():
                entry = (module, local, dotted)
                self.module_imports.setdefault(dotted.rpartition(".")[2], []).append(entry)
        self._importing: dict[PyModule, dict[PyModule, list[str]]] = {}
        self.importing_name: dict[str, list[PyModule]] = {}
        for module in modules:
            for name in module.imported:
                self.importing_name.setdefault(name, []).append(module)
        # Module-level instances by class name: every one of them (two scripts may each make
        # their own `manager = ConnectionManager()`).
        self.instances: dict[str, list[tuple[str, ast.AST, PyModule]]] = {}
        for module in modules:
            for name, cls, node in module.instances:
                self.instances.setdefault(cls, []).append((name, node, module))
        # Who uses what, for the names that can hold state only (a set intersection each).
        wanted = {c.name for m in modules for c in m.containers}
        wanted |= {name for m in modules for name, _, _ in m.globals}
        wanted |= {name for m in modules for _, _, name, scope in m.memory if scope is None}
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

    def imports(self, module: PyModule) -> set[PyModule]:
        """The scanned modules that `module` imports (anywhere in it, lazily too), read once."""
        found = self._imports.get(module)
        if found is None:
            found = set()
            for name in set(imported_modules(module.path, module.source)):
                for dotted, path in self._by_last.get(name.rpartition(".")[2], ()):
                    if same_module(dotted, name):
                        found.add(self.by_path[path])
            self._imports[module] = found
        return found

    def linked(self, module: PyModule) -> frozenset[PyModule]:
        """`module` and every scanned module it imports, directly or not: the only files whose
        functions its code can call."""
        if module not in self._linked:
            seen = {module}
            todo = [module]
            while todo:
                current = todo.pop()
                known = self._linked.get(current)
                if known is not None and current is not module:
                    seen |= known  # already closed over: no need to walk it again
                    continue
                for other in self.imports(current):
                    if other not in seen:
                        seen.add(other)
                        todo.append(other)
            self._linked[module] = frozenset(seen)
        return self._linked[module]

    def callees(self, module: PyModule, name: str, methods: bool = True) -> list[Function]:
        """The functions (and methods, and a class's methods) called `name` that code in
        `module` can reach: in it, or in a module it imports."""
        found = self.by_name.get(name, []) + (self.methods.get(name, []) if methods else [])
        if not found:
            return found
        linked = self.linked(module)
        return [f for f in found if f.module in linked]

    def reach(self) -> dict[Function, Function]:
        """Every function a route handler may call, mapped to one handler that reaches it."""
        origin: dict[Function, Function] = {}
        todo: deque[tuple[Function, Function]] = deque()
        for module in self.modules:
            starts = list(module.handlers)
            for name in module.handler_names:
                starts += self.callees(module, name, methods=False)
            for name in module.handler_classes:
                starts += [f for f in self.callees(module, name) if f.owner == name]
            todo.extend((start, start) for start in starts)
        # Each name is followed once per module it is used in: what it may call depends on
        # what that module imports.
        seen_names: dict[PyModule, set[str]] = {}
        while todo:
            function, handler = todo.popleft()
            if function in origin:
                continue
            origin[function] = handler
            seen = seen_names.setdefault(function.module, set())
            names = deque(function.identifiers - seen)
            while names:
                name = names.popleft()
                if name in seen:
                    continue
                seen.add(name)
                for callee in self.callees(function.module, name):
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
        readers = {*self.importing_name.get(name, ()), *importing}
        return [
            other.changes(name)
            for other in self.modules
            if other in readers and other is not module
        ]

    def changed_elsewhere(self, module: PyModule, name: str) -> bool:
        for other in self.importers(module, name):
            if name in other.mutated:
                return True
            aliases = self.importing(module).get(other, ())
            if any(f"{alias}.{name}" in other.mutated_qualified for alias in aliases):
                return True
        return False

    def keys(self, name: str, module: PyModule) -> set[str]:
        """What a module-level container is keyed by or filled with, here and where imported."""
        found = set(module.changes(name).keys.get(name, ()))
        for importer in self.importers(module, name):
            found |= importer.keys.get(name, set())
        return found


def same_module(dotted: str, name: str) -> bool:
    """Whether the file whose path reads `dotted` may be the module imported as `name`: the
    scanned folder need not be the import root (`app.store` may be `store.py`, and `store` may
    be `backend/store.py`)."""
    return dotted == name or name.endswith("." + dotted) or dotted.endswith("." + name)


def reached_files(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The files that may hold route handlers (see `may_serve`) and every file they import,
    directly or not, in their original order: nothing in any other file can be reached from a
    route handler, so those are read but not parsed."""
    by_last: dict[str, list[tuple[str, str]]] = {}
    for path, _ in files:
        dotted = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        by_last.setdefault(dotted.rpartition(".")[2], []).append((dotted, path))
    sources = dict(files)
    todo = [path for path, source in files if may_serve(path, source)]
    reached: set[str] = set()
    while todo:
        path = todo.pop()
        if path in reached:
            continue
        reached.add(path)
        for name in imported_modules(path, sources[path]):
            # The scanned folder need not be the import root: `app.store` may be `store.py`,
            # and `store` may be `backend/store.py`.
            for dotted, other in by_last.get(name.rpartition(".")[2], ()):
                if other not in reached and same_module(dotted, name):
                    todo.append(other)
    return [(path, source) for path, source in files if path in reached]
