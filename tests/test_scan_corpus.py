"""The scanner against the corpus (100 % precision and recall) and every generated project."""

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sessionfix.scan import scan
from sessionfix.template import offered_fixes

from .conftest import ROOT, generate

CORPUS = ROOT / "tests" / "scan_corpus"
APPS = sorted(path for path in CORPUS.glob("*/*") if path.is_dir())
Key = tuple[str, str, int, str]


def expected() -> set[Key]:
    manifest = json.loads((CORPUS / "manifest.json").read_text())["expected"]
    return {(e["app"], e["path"], e["line"], e["rule"]) for e in manifest}


def found(app: Path) -> set[Key]:
    name = app.relative_to(CORPUS).as_posix()
    return {(name, f.path, f.line, f.rule) for f in scan(app).findings}


def test_precision_and_recall_on_the_corpus_are_100_percent() -> None:
    wanted = expected()
    got = set().union(*(found(app) for app in APPS))
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
    assert broken == {
        app.relative_to(CORPUS).as_posix() for app in APPS if app.parent.name == "broken"
    }
    for seed in ("seed000", "seed001", "seed002", "seed003"):
        assert any(seed in app for app in broken), f"no broken app from {seed}"
    rules = {rule for *_, rule in wanted}
    assert rules == {
        "process-local-sessions",
        "global-session-state",
        "cached-session",
        "per-process-secret",
        "auto-create-on-miss",
    }
    javascript = {rule for _, path, _, rule in wanted if not path.endswith(".py")}
    assert {"process-local-sessions", "global-session-state", "auto-create-on-miss"} <= javascript


@pytest.mark.parametrize(
    "app",
    [app for app in APPS if app.parent.name in {"fixed", "negatives"}],
    ids=lambda app: app.relative_to(CORPUS).as_posix(),
)
def test_fixed_apps_and_tricky_negatives_are_clean(app: Path) -> None:
    result = scan(app)
    assert result.files > 0
    assert result.findings == [], [f"{f.path}:{f.line} {f.rule}" for f in result.findings]


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
