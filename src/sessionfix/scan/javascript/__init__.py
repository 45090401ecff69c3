"""JavaScript and TypeScript: module-level `Map`s and objects, and `globalThis` singletons, in
code that route handlers (Next.js route handlers and API routes, Express, Hono) import.

A file is reachable when it defines route handlers or is imported, directly or not, by a file
that does; only reachable files are reported.
"""

from ..model import Finding, internal_error
from .facts import EXTENSIONS, JsModule, parse_error, read_body, summarise, suppressions
from .imports import resolve, share_changes, share_classes
from .rules import findings

__all__ = ["EXTENSIONS", "scan_javascript"]


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
    share_classes(modules, reachable)
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
