"""The three outputs of a scan: readable text, JSON, and SARIF 2.1.0 for code-scanning tools."""

import json
import textwrap
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..template import public_url
from . import ScanResult
from .model import FIX_ADVICE, RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FORMATS = ("text", "json", "sarif")


def package_version() -> str:
    try:
        return version("sessionfix")
    except PackageNotFoundError:
        return "0.0.0"


def as_text(result: ScanResult) -> str:
    lines = []
    for found in result.findings:
        lines.append(f"{found.path}:{found.line}:{found.column}: {found.rule}: {found.message}")
        for label, body in (("why", found.why), ("fix", found.fix)):
            wrapped = textwrap.wrap(body, width=92)
            lines += [f"    {label}: {wrapped[0]}", *(f"         {w}" for w in wrapped[1:])]
        lines.append("")
    for error in result.errors:
        lines.append(f"warning: {error}")
    scanned = (
        f"{result.files} file{'s' * (result.files != 1)} scanned ({result.python_files} Python, "
        f"{result.javascript_files} JavaScript/TypeScript)"
    )
    if result.findings:
        files = len({found.path for found in result.findings})
        count = len(result.findings)
        plural = "finding" if count == 1 else "findings"
        lines.append(f"{count} {plural} in {files} file{'s' * (files != 1)}; {scanned}.")
        lines.append(
            "Silence one that is intended with a comment on its line or the line above: "
            "# sessionfix: ignore[rule-id]  (// in JavaScript)"
        )
    else:
        lines.append(f"No findings: {scanned}.")
    return "\n".join(lines)


def as_json(result: ScanResult) -> str:
    document = {
        "root": str(result.root),
        "files_scanned": {"python": result.python_files, "javascript": result.javascript_files},
        "findings": [
            {
                "path": found.path,
                "line": found.line,
                "column": found.column,
                "rule": found.rule,
                "title": RULES[found.rule].title,
                "message": found.message,
                "why": found.why,
                "fixes": list(found.fixes),
                "fix": found.fix,
            }
            for found in result.findings
        ],
        "errors": result.errors,
    }
    return json.dumps(document, indent=2)


def as_sarif(result: ScanResult) -> str:
    rule_ids = list(RULES)
    rules: list[dict[str, Any]] = [
        {
            "id": rule.id,
            "name": "".join(word.capitalize() for word in rule.id.split("-")),
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.why},
            "help": {"text": f"{rule.why} Fixes: " + " / ".join(FIX_ADVICE.values())},
            "defaultConfiguration": {"level": "error"},
        }
        for rule in RULES.values()
    ]
    results = [
        {
            "ruleId": found.rule,
            "ruleIndex": rule_ids.index(found.rule),
            "level": "error",
            "message": {"text": f"{found.message}. {found.why} Fix: {found.fix}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": found.path, "uriBaseId": "SRCROOT"},
                        "region": {"startLine": found.line, "startColumn": found.column},
                    }
                }
            ],
            "properties": {"fixes": list(found.fixes)},
        }
        for found in result.findings
    ]
    root = result.root if result.root.is_dir() else result.root.parent
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sessionfix",
                        "version": package_version(),
                        "informationUri": public_url(),
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": root.resolve().as_uri() + "/"}},
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": [
                            {"level": "warning", "message": {"text": error}}
                            for error in result.errors
                        ],
                    }
                ],
            }
        ],
    }
    return json.dumps(document, indent=2)


def render(result: ScanResult, output_format: str) -> str:
    return {"text": as_text, "json": as_json, "sarif": as_sarif}[output_format](result)
