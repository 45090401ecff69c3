"""What `sessionfix probe` found: per step, how many requests failed and how; which instances
answered; and the verdict, as text or JSON."""

import json
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # only for annotations: the report itself needs no HTTP client
    from .flow import Request
    from .run import Outcome

EXAMPLES_KEPT = 3

Verdict = Literal["pass", "sessions-lost", "failures", "inconclusive"]


@dataclass
class StepTally:
    name: str
    method: str
    path: str
    stream: bool
    attempted: int = 0
    passed: int = 0
    lost: int = 0  # failures of the bug's kind: 401/403/404/410, a stream not opened, ...
    failures: Counter[str] = field(default_factory=Counter)
    instances: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.attempted - self.passed


@dataclass
class Example:
    """One failed follow-up, as a person would want to see it."""

    step: str
    failure: str
    instance: str | None
    created_on: str | None
    excerpt: str


@dataclass
class ProbeReport:
    url: str
    flows_requested: int
    instance_header: str | None
    flow: str | None = None
    flows_run: int = 0
    created: int = 0
    stopped: str | None = None
    steps: dict[str, StepTally] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)

    def plan(self, steps: "list[Request]") -> None:
        """Lists the steps in the flow's order, whenever each one's first answer comes."""
        for step in steps:
            self.steps.setdefault(
                step.name, StepTally(step.name, step.method, step.path, step.stream)
            )

    def tally(self, step: "Request", outcome: "Outcome", created_on: str | None = None) -> None:
        self.plan([step])
        tally = self.steps[step.name]
        tally.attempted += 1
        if outcome.instance:
            tally.instances[outcome.instance] += 1
        if outcome.ok:
            tally.passed += 1
            return
        tally.failures[outcome.failure] += 1
        tally.lost += outcome.lost
        # One example per step: the first failure of each kind tells the most.
        shown = {example.step for example in self.examples}
        if step.name not in {"create", *shown} and len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(
                Example(step.name, outcome.failure, outcome.instance, created_on, outcome.excerpt)
            )

    @property
    def follow_ups(self) -> list[StepTally]:
        return [tally for name, tally in self.steps.items() if name != "create"]

    @property
    def instances(self) -> Counter[str]:
        return sum((tally.instances for tally in self.steps.values()), Counter())

    @property
    def verdict(self) -> Verdict:
        if self.created == 0 or not any(tally.attempted for tally in self.follow_ups):
            return "inconclusive"
        if any(tally.lost for tally in self.follow_ups):
            return "sessions-lost"
        if any(tally.failed for tally in self.follow_ups):
            return "failures"
        return "pass"

    @property
    def exit_status(self) -> int:
        return 0 if self.verdict == "pass" else 1

    def summary(self) -> str:
        attempted = sum(tally.attempted for tally in self.follow_ups)
        failed = sum(tally.failed for tally in self.follow_ups)
        lost = sum(tally.lost for tally in self.follow_ups)
        if self.verdict == "inconclusive" and self.created:
            return f"No follow-up was sent ({self.stopped}), so nothing was checked."
        if self.verdict == "inconclusive":
            create = self.steps.get("create")
            why = _failures(create.failures) if create else "nothing was sent"
            return f"No session could be created ({why}), so nothing was checked."
        if self.verdict == "sessions-lost":
            return (
                f"Sessions are lost between requests: {lost} of {attempted} follow-ups failed "
                "as they do when the instance that answers does not have the session just "
                "created (kept in one process's memory). Choose a fix: `sessionfix new`."
            )
        if self.verdict == "failures":
            return (
                f"{failed} of {attempted} follow-ups failed, though not the way lost sessions "
                "fail; see the failures per step."
            )
        passed = f"All {attempted} follow-ups on {self.created} new sessions passed"
        seen = len(self.instances)
        if seen == 1:
            return (
                f"{passed}, but every answer came from one instance, which shows little about "
                "several. Check that the URL reaches more than one."
            )
        if seen == 0:
            return f"{passed}; no response named its instance, so none shows where it ran."
        return f"{passed} across {seen} instances."

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "flow": self.flow,
            "verdict": self.verdict,
            "summary": self.summary(),
            "flows": {
                "requested": self.flows_requested,
                "run": self.flows_run,
                "created": self.created,
            },
            "stopped": self.stopped,
            "steps": [
                {
                    "name": tally.name,
                    "request": f"{tally.method} {tally.path}",
                    "stream": tally.stream,
                    "attempted": tally.attempted,
                    "passed": tally.passed,
                    "failed": tally.failed,
                    "lost": tally.lost,
                    "failures": dict(tally.failures.most_common()),
                    "instances": dict(tally.instances.most_common()),
                }
                for tally in self.steps.values()
            ],
            "instance_header": self.instance_header,
            "instances": dict(self.instances.most_common()),
            "examples": [vars(example) for example in self.examples],
        }


def render(report: ProbeReport, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(report.to_json(), indent=2)
    return render_text(report)


def render_text(report: ProbeReport) -> str:
    lines = [f"sessionfix probe {report.url}: flow {report.flow or '(none)'}, "]
    lines[0] += f"{report.flows_run} of {report.flows_requested} flows run"
    if report.stopped:
        lines[0] += f" (stopped: {report.stopped})"
    rows = [("step", "request", "passed", "failed", "instances", "failures")]
    for tally in report.steps.values():
        rows.append(
            (
                tally.name,
                f"{tally.method} {tally.path}",
                f"{tally.passed}/{tally.attempted}",
                str(tally.failed),
                str(len(tally.instances)) if tally.instances else "-",
                _failures(tally.failures),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    instances = report.instances
    if not report.instance_header:
        lines.append("Instances: not named (no instance header given).")
    elif instances:
        named = ", ".join(f"{name} ({count})" for name, count in sorted(instances.items()))
        lines.append(f"Instances ({report.instance_header}): {named}")
    else:
        lines.append(
            f"Instances: no response named one ({report.instance_header} absent); "
            "--instance-header NAME reads another header."
        )
    if report.examples:
        lines += ["", "For example:"]
        for example in report.examples:
            where = ""
            if example.instance or example.created_on:
                where = f" on {example.instance or '?'} (created on {example.created_on or '?'})"
            excerpt = f": {example.excerpt}" if example.excerpt else ""
            lines.append(f"  {example.step}: {example.failure}{where}{excerpt}")
    lines += ["", *textwrap.wrap(f"Verdict: {report.verdict}. {report.summary()}", width=100)]
    return "\n".join(lines)


def _failures(failures: Counter[str]) -> str:
    return ", ".join(f"{failure} ({count})" for failure, count in failures.most_common())
