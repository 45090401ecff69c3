"""The questionnaire: defaults, each answer's effect, every validator, and a clean render."""

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from . import reserved_names
from .conftest import ROOT, assert_fully_rendered, generate

BIN = Path(sys.executable).parent

CONFIG = yaml.safe_load((ROOT / "copier.yml").read_text())
QUESTIONS = {name: spec for name, spec in CONFIG.items() if not name.startswith("_")}
FIXES = list(CONFIG["fix"]["choices"].values())
# What questionary draws before a choice's label (pointer, checkbox, spaces): " » ○ ".
CHOICE_INDENT = 5


def copier_copy(destination: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A plain `copier copy --defaults` of this work tree, as a user types it."""
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    return subprocess.run(
        [*command, *args, str(ROOT), destination],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_a_plain_copier_copy_needs_no_trust(tmp_path: Path) -> None:
    result = copier_copy("session-app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "uv run python -m session_app cluster" in result.stderr + result.stdout
    assert (tmp_path / "session-app" / "src" / "session_app" / "main.py").is_file()


@pytest.mark.parametrize(
    ("folder", "project_name", "package_name"),
    [
        ("my-voice-bot", "my-voice-bot", "my_voice_bot"),
        ("2024.Voice Bot!", "Voice Bot", "voice_bot"),
        ("x", "Session App", "session_app"),
    ],
)
def test_the_destination_folder_names_the_project(
    tmp_path: Path, folder: str, project_name: str, package_name: str
) -> None:
    result = copier_copy(folder, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((tmp_path / folder / ".copier-answers.yml").read_text())
    assert (answers["project_name"], answers["package_name"]) == (project_name, package_name)


def test_copying_into_the_current_folder_names_the_project_after_it(tmp_path: Path) -> None:
    (tmp_path / "voice-agent").mkdir()
    result = copier_copy(".", cwd=tmp_path / "voice-agent")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "voice-agent" / "src" / "voice_agent" / "main.py").is_file()


@pytest.mark.parametrize(
    ("project_name", "package_name"),
    [
        ("class", "class_app"),
        ("Test", "test_app"),
        ("Import", "import_app"),
        ("Async", "async_app"),
        ("Json", "json_app"),
        ("Redis", "redis_app"),
        ("Tests", "tests_app"),
        ("App", "app"),
    ],
)
def test_every_project_name_generates(tmp_path: Path, project_name: str, package_name: str) -> None:
    """The derived import name steps around a keyword, a standard module or a dependency
    instead of failing its own validator."""
    result = copier_copy("app", "--data", f"project_name={project_name}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    answers = yaml.safe_load((tmp_path / "app" / ".copier-answers.yml").read_text())
    assert answers["package_name"] == package_name
    assert answers["distribution_name"] == package_name.replace("_", "-")
    assert (tmp_path / "app" / "src" / package_name / "main.py").is_file()
    assert f"uv run python -m {package_name} cluster" in result.stderr + result.stdout


@pytest.mark.parametrize("fix", ["kv_seed", "stateful", "client_direct"])
def test_the_longest_names_pass_the_generated_projects_own_linters(
    tmp_path: Path, fix: str
) -> None:
    """A 64-character project name (the folder's, by default), the longest package name it
    derives and a 160-character description land in docstrings, titles, imports and commands;
    the project must still pass its own ruff and format check."""
    name = "A" + "b" * 62 + "c"
    description = ("Keeps every voice session alive across instances " * 4)[:160].strip()
    data = ["--data", f"project_name={name}", "--data", f"description={description}"]
    result = copier_copy("derived", *data, "--data", f"fix={fix}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((tmp_path / "derived" / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "a" + "b" * 29  # cut to 30, leaving room for "_app"
    longest = ["--data", "package_name=" + "p" * 34]  # the most the validator accepts
    result = copier_copy("longest", *data, *longest, "--data", f"fix={fix}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    too_long = ["--data", "package_name=" + "p" * 35]
    refused = copier_copy("too-long", *data, *too_long, cwd=tmp_path)
    assert refused.returncode != 0 and "longer than 34 characters" in refused.stderr
    for project in ("derived", "longest"):
        for check in (["check", "."], ["format", "--check", "."]):
            lint = subprocess.run(
                [str(BIN / "ruff"), *check], cwd=tmp_path / project, capture_output=True, text=True
            )
            assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_reserved_names_are_what_their_script_writes() -> None:
    """includes/reserved-names.jinja is regenerated from this Python and the generated
    project's resolved dependencies; a new dependency or Python version shows up here."""
    written = reserved_names.DATA_FILE.read_text()
    assert written == reserved_names.render(written), (
        "includes/reserved-names.jinja is out of date: run `uv run python -m tests.reserved_names`"
    )
    lists = reserved_names.written_lists(written)
    assert {"class", "match", "async"} <= set(lists["python_keywords"])
    assert {"json", "asyncio", "typing", "test"} <= set(lists["standard_library"])
    expected = {"fastapi", "starlette", "pydantic", "pydantic_settings", "redis", "uvicorn"}
    assert expected | {"httpx", "anyio", "yaml", "pytest"} <= set(lists["dependencies"])
    assert {"src", "tests"} <= set(lists["project_folders"])


def rendered(text: str, fix: str) -> str:
    environment = jinja2.Environment(autoescape=False)  # noqa: S701 (terminal text, not HTML)
    return environment.from_string(text).render(fix=fix)


def asked_for(fix: str) -> dict[str, dict[str, Any]]:
    """The questions Copier asks when `fix` is chosen, with help and labels as shown."""
    asked = {}
    for name, spec in QUESTIONS.items():
        when = spec.get("when", True)
        if when is False or rendered(str(when), fix).strip() in {"False", "false"}:
            continue
        labels = [rendered(label, fix) for label in spec.get("choices", {})]
        asked[name] = {"help": " ".join(rendered(spec["help"], fix).split()), "labels": labels}
    return asked


def test_the_fix_is_asked_right_after_the_project_name() -> None:
    assert list(QUESTIONS)[:2] == ["project_name", "fix"]
    for fix in FIXES:
        assert list(asked_for(fix))[:2] == ["project_name", "fix"]


@pytest.mark.parametrize("fix", FIXES)
def test_every_choice_fits_80_columns_with_when_to_pick_it_first(fix: str) -> None:
    for name, question in asked_for(fix).items():
        for label in question["labels"]:
            assert CHOICE_INDENT + len(label) <= 80, f"{name}: {label!r} is {len(label)} long"
            if name in {"fix", "store_backend", "upstream_provider"}:
                # The situation comes first, the fix or backend it leads to after the colon.
                assert ": " in label, f"{name}: {label!r} does not say when to pick it first"


FOREIGN = {
    "kv_seed": ("realtime", "owner", "token", "upstream"),
    "stateful": ("seed", "Vercel KV", "token"),
    "client_direct": ("seed", "owner", "Vercel KV"),
}


@pytest.mark.parametrize("fix", FIXES)
def test_help_and_labels_speak_only_of_the_chosen_fix(fix: str) -> None:
    for name, question in asked_for(fix).items():
        if name == "fix":
            continue  # the one question that compares the fixes
        for text in [question["help"], *question["labels"]]:
            foreign = [word for word in FOREIGN[fix] if word.lower() in text.lower()]
            assert not foreign, f"{name} mentions {foreign} to a {fix} user: {text!r}"


def test_copier_yml_needs_no_trust_and_helps_every_question() -> None:
    assert "_tasks" not in CONFIG
    assert "_jinja_extensions" not in CONFIG
    for name, spec in QUESTIONS.items():
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
        ("package_name", "redis", "would shadow the redis module that the project installs"),
        ("package_name", "yaml", "would shadow the yaml module that the project installs"),
        ("package_name", "class", "is a Python keyword"),
        ("package_name", "json", "would shadow the standard library's json module"),
        ("package_name", "tests", "would shadow the project's own tests/ folder"),
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
