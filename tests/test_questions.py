"""The questionnaire: defaults, each answer's effect, every validator, and a clean render."""

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, assert_fully_rendered, generate


def test_a_plain_copier_copy_needs_no_trust(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    result = subprocess.run(
        [*command, str(ROOT), str(tmp_path / "app")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "uv run python -m session_app cluster" in result.stderr + result.stdout
    assert (tmp_path / "app" / "src" / "session_app" / "main.py").is_file()


def test_copier_yml_needs_no_trust_and_helps_every_question() -> None:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert "_tasks" not in config
    assert "_jinja_extensions" not in config
    questions = {name: spec for name, spec in config.items() if not name.startswith("_")}
    for name, spec in questions.items():
        if spec.get("when") is False:
            continue
        assert spec.get("help"), f"question {name} has no help text"


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"store_backend": "upstash"},
        {"seed_encryption": False, "seed_in_query": True},
        {"project_name": "A very long project name for voice agents", "python_version": "3.13"},
    ],
    ids=["defaults", "upstash", "signed-seed-in-query", "long-name"],
)
def test_every_file_is_rendered_and_none_is_empty(tmp_path: Path, answers: dict[str, Any]) -> None:
    assert_fully_rendered(generate(tmp_path / "app", **answers))


def test_the_answers_file_records_the_answers(tmp_path: Path) -> None:
    project = generate(tmp_path / "app", seed_encryption=False)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["seed_encryption"] is False
    assert answers["fix"] == "kv_seed"
    assert "key_prefix" not in answers, "computed values must not be stored"


def test_names_derive_from_the_project_name(tmp_path: Path) -> None:
    omit = ("package_name", "distribution_name")
    project = generate(tmp_path / "app", omit=omit, project_name="Voice Agent-2")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "voice-agent-2"
    assert (project / "src" / "voice_agent_2" / "main.py").is_file()


def test_each_answer_reaches_the_generated_code(tmp_path: Path) -> None:
    default = generate(tmp_path / "default")
    changed = generate(
        tmp_path / "changed",
        python_version="3.13",
        store_backend="upstash",
        seed_encryption=False,
        seed_in_query=True,
        session_ttl_hours=2,
        cluster_size=5,
    )

    def read(project: Path, path: str) -> str:
        return (project / path).read_text()

    pyproject = tomllib.loads(read(changed, "pyproject.toml"))
    assert pyproject["project"]["requires-python"] == ">=3.13"
    assert pyproject["tool"]["ruff"]["target-version"] == "py313"
    assert any(dep.startswith("upstash-redis") for dep in pyproject["project"]["dependencies"])
    assert not (default / "src/session_app/sessions/upstash.py").exists()
    assert (changed / "src/session_app/sessions/upstash.py").is_file()
    assert (changed / "tests/test_upstash_rest.py").is_file()
    assert "seed_encryption: bool = False" in read(changed, "src/session_app/settings.py")
    assert "seed_encryption: bool = True" in read(default, "src/session_app/settings.py")
    assert "default=7200" in read(changed, "src/session_app/store_config.py")
    assert 'Query(alias="seed")' in read(changed, "src/session_app/routes/deps.py")
    assert "Query" not in read(default, "src/session_app/routes/deps.py")
    assert "CLUSTER_SIZE = 5" in read(changed, "src/session_app/__main__.py")


@pytest.mark.parametrize(
    ("answer", "value", "message"),
    [
        ("project_name", "!", "starting with a letter"),
        ("package_name", "1app", "is not a valid import name"),
        ("package_name", "redis", "would shadow"),
        ("distribution_name", "Bad_Name", "is not a normalised distribution name"),
        ("author_email", "nobody", "does not look like an e-mail address"),
        ("session_ttl_hours", 0, "between 1 and 720 hours"),
        ("session_ttl_hours", 721, "between 1 and 720 hours"),
        ("cluster_size", 1, "2 to 16 instances"),
        ("cluster_size", 17, "2 to 16 instances"),
    ],
)
def test_validators_explain_bad_answers(
    tmp_path: Path, answer: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "app", **{answer: value})
    assert not (tmp_path / "app" / "pyproject.toml").exists()


def test_pytest_copie_generates_the_default_project(copie: Any) -> None:
    result = copie.copy(extra_answers={"project_name": "Copie App"})
    assert result.exit_code == 0, result.exception
    assert (result.project_dir / "src" / "copie_app" / "sessions" / "seed.py").is_file()
