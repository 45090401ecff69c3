"""`sessionfix scan` as CI uses it: exit codes, and the text, JSON and SARIF outputs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sessionfix import cli
from sessionfix.scan import RULES, python
from sessionfix.scan.defaults import memory_defaults

from .conftest import ROOT

CORPUS = ROOT / "tests" / "scan_corpus"
SEED001 = CORPUS / "broken" / "seed001_pipecat_runner"


def sessionfix(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sessionfix", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_findings_exit_1_with_file_line_rule_why_and_fix() -> None:
    result = sessionfix("scan", str(SEED001))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "run.py:12:1: process-local-sessions: `active_sessions`" in out
    assert "run.py:28:5: auto-create-on-miss" in out
    assert "why: Every instance has its own copy" in out
    assert "fix: kv_seed" in out
    assert "fix: a live connection cannot be stored: stateful" in out  # pcs_map holds connections
    assert "3 findings in 1 file; 1 file scanned (1 Python, 0 JavaScript/TypeScript)." in out


def test_a_clean_tree_exits_0() -> None:
    result = sessionfix("scan", str(CORPUS / "fixed"))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("No findings: 9 files scanned")


def test_usage_errors_exit_2() -> None:
    missing = sessionfix("scan", str(CORPUS / "no-such-app"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    not_code = sessionfix("scan", str(CORPUS / "README.md"))
    assert not_code.returncode == 2
    assert "is not a Python, JavaScript or TypeScript file" in not_code.stderr
    bad_format = sessionfix("scan", str(SEED001), "--format", "xml")
    assert bad_format.returncode == 2
    assert "invalid choice: 'xml'" in bad_format.stderr


def test_json_lists_each_finding_with_its_fixes() -> None:
    result = sessionfix("scan", str(CORPUS / "broken" / "seed000_next_voice"), "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["files_scanned"] == {"python": 0, "javascript": 3}
    [finding] = document["findings"]
    assert finding["path"] == "lib/voice-sessions.ts"
    assert (finding["line"], finding["rule"]) == (12, "global-session-state")
    assert finding["fixes"] == ["stateful", "client_direct"]
    assert finding["why"] == RULES["global-session-state"].why


def test_sarif_has_what_the_2_1_0_schema_requires() -> None:
    result = sessionfix("scan", str(CORPUS / "broken"), "--format", "sarif")
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "sessionfix"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == list(RULES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"].endswith("/")
    manifest = json.loads((CORPUS / "manifest.json").read_text())["expected"]
    assert len(run["results"]) == sum(e["app"].startswith("broken/") for e in manifest)
    for item in run["results"]:
        assert item["message"]["text"]
        assert item["level"] in {"none", "note", "warning", "error"}
        assert rule_ids[item["ruleIndex"]] == item["ruleId"]
        [location] = item["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "SRCROOT"
        assert (CORPUS / "broken" / artifact["uri"]).is_file()
        assert not artifact["uri"].startswith("/")
        assert location["physicalLocation"]["region"]["startLine"] >= 1


def test_javascript_is_parsed_not_grepped(tmp_path: Path) -> None:
    (tmp_path / "server.js").write_text(
        "const express = require('express');\n"
        "const app = express();\n"
        "const docs = `const sessions = new Map();`; // sessions.set(id, {}) in a comment\n"
        "app.get('/docs', (req, res) => res.send(docs));\n"
        "app.post('/s/:id', (req, res) => {\n"
        "  const sessions = new Map();\n"
        "  sessions.set(req.params.id, {});\n"
        "  res.json([...sessions]);\n"
        "});\n"
    )
    result = sessionfix("scan", str(tmp_path))
    assert result.returncode == 0, result.stdout
    (tmp_path / "server.js").write_text(
        (tmp_path / "server.js").read_text().replace("  const sessions = new Map();\n", "")
        + "const sessions = new Map();\n"
    )
    result = sessionfix("scan", str(tmp_path))
    assert result.returncode == 1
    assert "server.js:9:7: process-local-sessions" in result.stdout


def test_one_file_can_be_scanned() -> None:
    result = sessionfix("scan", str(SEED001 / "run.py"), "--format", "json")
    assert result.returncode == 1
    paths = {finding["path"] for finding in json.loads(result.stdout)["findings"]}
    assert paths == {"run.py"}


def test_a_file_that_does_not_parse_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "views.py").write_text("def (:\n")
    (tmp_path / "app.py").write_text((SEED001 / "run.py").read_text())
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "notes.py").write_text("def (:\n")  # nothing reaches it
    result = sessionfix("scan", str(tmp_path))
    assert result.returncode == 1
    assert "warning: views.py: not parsed as Python" in result.stdout
    assert "app.py:12:1: process-local-sessions" in result.stdout
    assert "scratch/notes.py" not in result.stdout  # read, but no route handler can reach it


def test_routes_registered_inside_a_function_are_found(tmp_path: Path) -> None:
    (tmp_path / "store.js").write_text(
        "const carts = new Map();\n"
        "exports.add = (userId, sku) => {\n"
        "  carts.set(userId, [...(carts.get(userId) ?? []), sku]);\n"
        "};\n"
    )
    (tmp_path / "routes.js").write_text(
        "const store = require('./store');\n"
        "module.exports = (app) => {\n"
        "  app.post('/cart/:user', (req, res) => {\n"
        "    res.json(store.add(req.params.user, req.body.sku));\n"
        "  });\n"
        "};\n"
    )
    result = sessionfix("scan", str(tmp_path))
    assert result.returncode == 1, result.stdout
    assert "store.js:1:7: process-local-sessions: `carts`" in result.stdout


def test_a_file_the_scanner_fails_on_is_reported_and_the_scan_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "odd.py").write_text("@app.get('/odd')\ndef odd() -> None: ...\n")
    (tmp_path / "app.py").write_text((SEED001 / "run.py").read_text())
    summarise = python.summarise

    def failing(path: str, source: bytes) -> python.PyModule:
        if path == "odd.py":
            raise IndexError("a pattern the scanner did not expect")
        return summarise(path, source)

    monkeypatch.setattr(python, "summarise", failing)
    assert cli.main(["scan", str(tmp_path)]) == 1  # findings elsewhere: the usual status
    out = capsys.readouterr().out
    assert "warning: odd.py: not analysed, the scanner failed on it (IndexError: a pattern" in out
    assert "app.py:12:1: process-local-sessions" in out


def test_javascript_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    (tmp_path / "server.js").write_text(
        "const app = require('express')();\n"
        "const sessions = new Map();\n"
        "app.post('/s/:id', (req, res) => { sessions.set(req.params.id, {}); res.end(); });\n"
        "app.get('/x', (req, res) => { res.json({ a: ; }) });\n"
    )
    result = sessionfix("scan", str(tmp_path), "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    [error] = document["errors"]
    assert error.startswith("server.js:4: does not parse as JavaScript/TypeScript")
    assert [(f["path"], f["line"]) for f in document["findings"]] == [("server.js", 2)]


def test_environments_and_build_output_are_skipped_but_source_so_named_is_not(
    tmp_path: Path,
) -> None:
    broken = (SEED001 / "run.py").read_text()
    for folder in ("env", "venv-3.12", "build", "src/build", "src/env", "dist"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "run.py").write_text(broken)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "venv-3.12" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'app'\n")  # build/, dist/: output
    result = sessionfix("scan", str(tmp_path), "--format", "json")
    paths = {f["path"] for f in json.loads(result.stdout)["findings"]}
    assert paths == {"src/build/run.py", "src/env/run.py"}


def test_state_set_up_under_except_star_is_found(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from fastapi import FastAPI\n"
        "app = FastAPI()\n"
        "try:\n"
        "    from redis import Redis\n"
        "except* ImportError:\n"
        "    sessions: dict[str, str] = {}\n"
        "@app.put('/s/{session_id}')\n"
        "def put(session_id: str, state: str) -> None:\n"
        "    sessions[session_id] = state\n"
    )
    result = sessionfix("scan", str(tmp_path))
    assert result.returncode == 1
    assert "app.py:6:5: process-local-sessions: `sessions`" in result.stdout


def test_every_library_default_is_documented_with_what_makes_it_safe() -> None:
    cli_doc = (ROOT / "docs" / "cli.md").read_text()
    for language in ("python", "javascript"):
        defaults = memory_defaults(language)
        assert defaults
        for default in defaults.values():
            assert default.holds in {"live", "data"}, default
            assert default.instead, default
            assert f"{default.package}" in cli_doc or default.name in cli_doc, default
