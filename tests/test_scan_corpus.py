"""The scanner against the corpus (100 % precision and recall on its hand-written apps and on
real code from pinned package archives) and every generated project."""

import json
import re
import shutil
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from sessionfix.scan import RULES, scan
from sessionfix.template import offered_fixes

from . import real_code
from .conftest import ROOT, generate

CORPUS = ROOT / "tests" / "scan_corpus"
REAL = CORPUS / "real"
HAND_WRITTEN = sorted(p for p in CORPUS.glob("*/*") if p.is_dir() and p.parent != REAL)
CASES = real_code.cases()
Key = tuple[str, str, int, str]


@cache
def real_apps() -> dict[str, Path]:
    """Every real case's folder, by `real/broken/...` or `real/negatives/...`, fetched once.

    A download that fails, or an archive whose sha256 is not the pinned one, fails the test.
    """
    return {f"real/{name}": folder for name, folder in real_code.apps().items()}


def apps() -> dict[str, Path]:
    return {app.relative_to(CORPUS).as_posix(): app for app in HAND_WRITTEN} | real_apps()


def expected() -> set[Key]:
    manifest = json.loads((CORPUS / "manifest.json").read_text())["expected"]
    found = {(e["app"], e["path"], e["line"], e["rule"]) for e in manifest}
    return found | {(f"real/{c.name}", *finding) for c in CASES for finding in c.expected}


def found(name: str, app: Path) -> set[Key]:
    return {(name, f.path, f.line, f.rule) for f in scan(app).findings}


def test_precision_and_recall_on_the_corpus_are_100_percent() -> None:
    wanted = expected()
    got = set().union(*(found(name, app) for name, app in apps().items()))
    true_positives = wanted & got
    precision = len(true_positives) / len(got)
    recall = len(true_positives) / len(wanted)
    assert (precision, recall) == (1.0, 1.0), (
        f"precision {precision:.0%}, recall {recall:.0%}\n"
        f"missed: {sorted(wanted - got)}\nfalse alarms: {sorted(got - wanted)}"
    )


def test_every_seed_and_every_rule_has_a_broken_app() -> None:
    wanted = expected()
    broken = {app for app, *_ in wanted}
    assert broken == {name for name in apps() if name.split("/")[-2] == "broken"}
    for seed in ("seed000", "seed001", "seed002", "seed003"):
        assert any(seed in app for app in broken), f"no broken app from {seed}"
    rules = {rule for *_, rule in wanted}
    assert rules == set(RULES)
    javascript = {rule for _, path, _, rule in wanted if not path.endswith(".py")}
    assert {"process-local-sessions", "global-session-state", "auto-create-on-miss"} <= javascript


def test_real_code_has_broken_and_clean_apps_in_both_languages_each_with_its_source() -> None:
    wanted = {finding for case in CASES for finding in case.expected}
    assert {rule for *_, rule in wanted} >= {"process-local-sessions", "in-memory-default"}
    clean = [case for case in CASES if not case.expected]
    for suffixes in ((".py",), (".js", ".ts")):
        assert any(path.endswith(suffixes) for path, _, _ in wanted)
        assert any(p.endswith(suffixes) for case in clean for p in case.paths)
    readme = (REAL / "README.md").read_text()
    for case in CASES:
        line = next((row for row in readme.splitlines() if f"`{case.name}`" in row), "")
        assert line, f"{case.name}: no line in real/README.md says where it is from"
        assert f"{case.package}` {case.version}" in line, f"{case.name}: README names another"
        assert case.licence in line, f"{case.name}: README does not give its licence"
        assert (real_apps()[f"real/{case.name}"] / "LICENSE").is_file()
    assert len({case.name for case in CASES}) == len(CASES)
    # Nothing taken from a package is kept in the repository: the data file and README only.
    assert sorted(p.name for p in REAL.rglob("*")) == ["README.md", "cases.toml"]


def test_a_real_case_fails_when_its_archive_is_not_the_pinned_one_or_cannot_be_had(
    tmp_path: Path,
) -> None:
    case = next(c for c in CASES if c.registry == "pypi")
    source = str(real_code.archive(case))  # the real one, from the shared cache
    other = replace(case, sha256="0" * 64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SESSIONFIX_SCAN_CORPUS_CACHE", str(tmp_path))
        patch.setattr(real_code, "download_command", lambda _, dest: ["cp", source, str(dest)])
        with pytest.raises(real_code.FetchError, match="not the pinned"):
            real_code.app(other)
        patch.setattr(real_code, "download_command", lambda _, dest: ["false"])
        with pytest.raises(real_code.FetchError, match=r"downloading .* failed \(exit 1"):
            real_code.app(case)


CLEAN = [app.relative_to(CORPUS).as_posix() for app in HAND_WRITTEN if app.parent.name != "broken"]


@pytest.mark.parametrize(
    "name", CLEAN + [f"real/{case.name}" for case in CASES if not case.expected]
)
def test_fixed_apps_and_tricky_negatives_are_clean(name: str) -> None:
    result = scan(apps()[name])
    assert result.files > 0
    assert result.findings == [], [f"{f.path}:{f.line} {f.rule}" for f in result.findings]
    assert result.errors == []  # valid code, JSX text with a bare `&` included, parses


def test_the_fix_follows_what_is_stored_not_the_name() -> None:
    def fixes(app: str) -> dict[tuple[str, int], tuple[str, ...]]:
        return {(f.path, f.line): f.fixes for f in scan(CORPUS / app).findings}

    spellings = fixes("broken/next_global_spellings")
    assert spellings[("lib/registry.ts", 3)] == ("kv_seed",)  # `__voiceSessions` holds objects
    assert spellings[("lib/registry.ts", 8)] == ("stateful", "client_direct")  # peer connections
    factory = fixes("broken/flask_factory")
    assert factory[("app.py", 7)] == ("kv_seed",)  # `live_streams` holds lists of text
    runner = {
        (f.path, f.line): f.fixes for f in scan(real_apps()["real/broken/pipecat_runner"]).findings
    }
    assert runner[("run.py", 995)] == ("stateful", "client_direct")


def test_a_suppression_silences_only_the_rule_it_names(tmp_path: Path) -> None:
    app = shutil.copytree(CORPUS / "negatives" / "suppressed", tmp_path / "app")
    originals = {path: path.read_text() for path in app.iterdir()}
    for path, text in originals.items():
        path.write_text(re.sub(r"ignore\[[a-z-]+\]", "ignore[cached-session]", text))
    still = {(f.path, f.rule) for f in scan(app).findings}
    assert still == {
        ("app.py", "per-process-secret"),
        ("app.py", "process-local-sessions"),
        ("server.ts", "process-local-sessions"),
    }
    for path, text in originals.items():
        path.write_text(text)
    assert scan(app).findings == []


def template_fixes() -> list[str]:
    return offered_fixes(yaml.safe_load((ROOT / "copier.yml").read_text()))


@pytest.mark.parametrize(
    "answers",
    [{"fix": fix} for fix in template_fixes()]
    + [
        {"fix": "kv_seed", "store_backend": "upstash"},
        {"fix": "kv_seed", "seed_encryption": False},
        {"fix": "kv_seed", "seed_in_query": True},
        {"fix": "stateful", "realtime_instances": 4, "session_ttl_hours": 1},
        {"fix": "client_direct", "upstream_provider": "openai"},
    ],
    ids=lambda answers: "-".join(str(v) for v in answers.values()),
)
def test_every_generated_project_is_clean(tmp_path: Path, answers: dict[str, Any]) -> None:
    project = generate(tmp_path / "app", **answers)
    result = scan(project)
    assert result.python_files > 10
    assert result.errors == []
    assert result.findings == [], [
        f"{f.path}:{f.line} {f.rule}: {f.message}" for f in result.findings
    ]
