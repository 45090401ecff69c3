"""`sessionfix scan` precision and recall on tests/scan_corpus, real code and hand-written apart.

Run by hand from the repository root, with the root environment:

    uv run python bench/scan_accuracy.py
    uv run python bench/scan_accuracy.py --show   # also list every miss and false alarm

The real-code part (the apps that pinned PyPI and npm archives ship, listed in
`tests/scan_corpus/real/cases.toml` and fetched into a cache by `tests/real_code.py` on first
use) says how the scanner does on code it was not written for; the hand-written part (every other
app) pins the patterns it was written for. A finding counts when its app, file, line and rule
match an entry of the part's list (`cases.toml`, `manifest.json`); every finding in a clean app
(`fixed/`, `negatives/`) is a false alarm.
Targets: at least 95 % precision and recall on real code; 100 % on the hand-written part.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sessionfix.scan import scan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import real_code  # noqa: E402  (the repository root, put on the path above)

CORPUS = ROOT / "tests" / "scan_corpus"
REAL = CORPUS / "real"
Key = tuple[str, str, int, str]


@dataclass
class Score:
    part: str
    apps: int
    expected: set[Key]
    found: set[Key]

    @property
    def precision(self) -> float:
        return len(self.expected & self.found) / len(self.found) if self.found else 1.0

    @property
    def recall(self) -> float:
        return len(self.expected & self.found) / len(self.expected) if self.expected else 1.0


def score(part: str, expected: set[Key], apps: dict[str, Path]) -> Score:
    found = set()
    for name, app in apps.items():
        found |= {(name, f.path, f.line, f.rule) for f in scan(app).findings}
    return Score(part, len(apps), expected, found)


def scores() -> list[Score]:
    hand_written = sorted(p for p in CORPUS.glob("*/*") if p.is_dir() and p.parent != REAL)
    entries = json.loads((CORPUS / "manifest.json").read_text())["expected"]
    cases = real_code.cases()
    real = {f"real/{case.name}": real_code.app(case) for case in cases}
    return [
        score(
            "real code",
            {(f"real/{case.name}", *finding) for case in cases for finding in case.expected},
            real,
        ),
        score(
            "hand-written",
            {(e["app"], e["path"], e["line"], e["rule"]) for e in entries},
            {app.relative_to(CORPUS).as_posix(): app for app in hand_written},
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    print("| part | apps | expected findings | found | precision | recall | target |")
    print("|---|---|---|---|---|---|---|")
    for part in scores():
        target = "≥ 95 %" if part.part == "real code" else "100 %"
        print(
            f"| {part.part} | {part.apps} | {len(part.expected)} | {len(part.found)} | "
            f"{part.precision:.1%} | {part.recall:.1%} | {target} |"
        )
        if args.show:
            for key in sorted(part.expected - part.found):
                print(f"  missed: {key}")
            for key in sorted(part.found - part.expected):
                print(f"  false alarm: {key}")


if __name__ == "__main__":
    main()
