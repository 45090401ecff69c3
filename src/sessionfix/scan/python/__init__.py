"""Python: module-level state that route handlers read, found with `ast`."""

import gc

from ..model import Finding, internal_error
from .facts import PyModule, summarise, suppressions
from .imports import reached_files
from .rules import Project

__all__ = ["PyModule", "scan_python", "summarise"]


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
    for path, source in reached_files(files):
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
