"""JavaScript and TypeScript import graph: which files route handlers reach, and what a file
does to the names it imports."""

import posixpath

from .facts import EXTENSIONS, JsModule


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
            stored: dict[str, set[str]] = {}
            if exported and local in module.mutated:
                changes[exported] = module.keys.get(local, set())
                stored[exported] = module.held.get(local, set())
            elif not exported:
                for name in module.mutated:
                    if name.startswith(f"{local}."):
                        changes[name.removeprefix(f"{local}.")] = module.keys.get(name, set())
                        stored[name.removeprefix(f"{local}.")] = module.held.get(name, set())
            for name, keys in changes.items():
                exporter.mutated.add(name)
                exporter.keys.setdefault(name, set()).update(keys)
                exporter.held.setdefault(name, set()).update(stored.get(name, set()))
            # A key imported and used here: `createHmac("sha256", SECRET)`, `keys.SECRET`.
            if exported and local in module.key_uses:
                exporter.key_uses.setdefault(exported, module.key_uses[local])
            elif not exported:
                for name, use in module.key_uses.items():
                    exporter.key_uses.setdefault(name, use)


def share_classes(modules: dict[str, JsModule], reachable: set[str]) -> None:
    """A class imported from another file brings its fields: `new SessionStore()` in a route
    file is judged by the `SessionStore` that `lib/store.ts` defines."""
    known = set(modules)
    for path in reachable:
        module = modules[path]
        for _, cls, _, _ in module.instances:
            if cls in module.class_fields or cls not in module.bindings:
                continue
            specifier, exported = module.bindings[cls]
            target = resolve(path, specifier, known)
            if target is None:
                continue
            exporter = modules[target]
            original = exported or cls
            if original in exporter.class_fields:
                module.class_fields[cls] = exporter.class_fields[original]
                module.class_changes[cls] = exporter.class_changes[original]
