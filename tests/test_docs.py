"""The documentation site: it builds strictly, renders offline, and reads as written."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

PAGES = sorted((ROOT / "docs").glob("*.md"))
SEED_FILE_NUMBER = re.compile(r"\bseeds?\s*0\d\d\b", re.IGNORECASE)
EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"(?:https?:)?//", re.IGNORECASE)
EXTERNAL_STYLE = re.compile(r"<link[^>]*\bhref=\"(?:https?:)?//[^\"]*\"[^>]*>", re.IGNORECASE)
CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.DOTALL)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `mkdocs build --strict` writes it: any warning fails the build."""
    destination = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(destination)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return destination


def built_pages(site: Path) -> dict[str, str]:
    return {str(path.relative_to(site)): path.read_text() for path in site.rglob("*.html")}


def test_table_cells_show_no_escaping_backslashes(site: Path) -> None:
    for name, built in built_pages(site).items():
        for cell in CELL.findall(built):
            text = html.unescape(re.sub(r"<[^>]+>", "", cell))
            assert "\\|" not in text, f"{name}: a table cell shows {text!r}"
    for source in PAGES:
        rows = [line for line in source.read_text().splitlines() if line.startswith("|")]
        escaped = [row for row in rows if "\\|" in row]
        assert not escaped, f"{source.name}: a table row escapes a pipe: {escaped[0]}"


def test_pages_describe_the_problem_without_seed_file_numbers(site: Path) -> None:
    for source in PAGES:
        found = SEED_FILE_NUMBER.findall(source.read_text())
        assert not found, f"{source.name} mentions {found}"
    for name, text in built_pages(site).items():
        assert not SEED_FILE_NUMBER.search(text), name


def test_the_site_renders_offline(site: Path) -> None:
    """No script, style sheet or font from another host; diagrams are text, not mermaid."""
    config = (ROOT / "mkdocs.yml").read_text()
    assert "mermaid" not in config
    loaded = yaml.safe_load(config.replace("!!python/name:", ""))
    for key in ("extra_javascript", "extra_css"):
        assert not [url for url in loaded.get(key, []) if "//" in str(url)], key
    for source in PAGES:
        assert "```mermaid" not in source.read_text(), source.name
    for name, built in built_pages(site).items():
        assert not EXTERNAL_SCRIPT.search(built), f"{name} loads a script from another host"
        assert not EXTERNAL_STYLE.search(built), f"{name} loads a style sheet from another host"
        assert 'class="mermaid"' not in built, f"{name} needs mermaid.js to draw a diagram"
