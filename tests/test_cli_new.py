"""`sessionfix new`: the guide in a real pseudo-terminal, and the non-interactive forms."""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml

from sessionfix import cli
from sessionfix.guide import HOST_TARGETS, HOSTS, Situation, prefilled, recommend
from sessionfix.template import offered_fixes

from .conftest import ROOT
from .releases import git, work_tree_files

ALL_FIXES = ("kv_seed", "client_direct", "stateful")
CONFIG = yaml.safe_load((ROOT / "copier.yml").read_text())
OFFERED = offered_fixes(CONFIG)
DOWN, ENTER = "\x1b[B", "\r"
LABEL_OF = {value: label for label, value in CONFIG["fix"]["choices"].items()}


def template_copy(destination: Path, edit: Callable[[str], str]) -> Path:
    """This work tree (uncommitted changes included) committed in a new git repository, with
    its copier.yml changed by `edit`: an older or different template version, for real."""
    for name in work_tree_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)
    config = destination / "copier.yml"
    config.write_text(edit(config.read_text()))
    git("init", "--quiet", cwd=destination)
    git("add", "--all", cwd=destination)
    git("commit", "--quiet", "-m", "template", cwd=destination)
    return destination


def without(fix: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        line = f'    "{LABEL_OF[fix]}": {fix}\n'
        assert line in text
        return text.replace(line, "")

    return edit


@pytest.fixture(scope="module")
def lacking(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Template versions that do not offer one of the fixes."""
    return {
        fix: template_copy(tmp_path_factory.mktemp(f"without-{fix}"), without(fix))
        for fix in ("stateful", "client_direct")
    }


def sessionfix(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command with no terminal: stdin is not a TTY, as in CI."""
    return subprocess.run(
        [sys.executable, "-m", "sessionfix", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        check=False,
        timeout=300,
    )


def answers(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def spawn(*args: str, cwd: Path | None = None) -> "pexpect.spawn[str]":
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sessionfix", *args],
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 250),
        env={**os.environ, "TERM": "xterm"},
        cwd=cwd,
    )
    return child


def finish(child: "pexpect.spawn[str]") -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, child.before
    return child.exitstatus


def test_the_guide_recommends_and_prefills_then_copier_asks_the_rest(tmp_path: Path) -> None:
    child = spawn("new", str(tmp_path / "app"))
    transcript: list[str] = []
    child.expect("What is a session in your app")
    child.send(ENTER)  # the first choice: data
    child.expect("Does a session hold personal data")
    child.send(ENTER)  # yes, the default
    child.expect("Where will it run")
    child.send(ENTER)  # the first choice: Vercel
    child.expect(r"Recommended: KV \+ seed \(kv_seed\)")
    child.expect("Use the recommended fix")
    transcript.append(str(child.before))
    child.send(ENTER)
    # Copier now asks its own questions, except those the guide answered.
    helps = {
        name: re.escape(spec["help"].split("{")[0][:30])
        for name, spec in CONFIG.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("help")
    }
    names, patterns = list(helps), list(helps.values())
    asked: list[str] = []
    while (index := child.expect([*patterns, pexpect.EOF])) < len(patterns):
        name = names[index]
        if name in asked:
            continue  # the question drawn again with its answer
        asked.append(name)
        child.send("\x15Pty Bot\r" if name == "project_name" else ENTER)  # ^U clears the default
    child.close()
    assert child.exitstatus == 0, child.before
    assert asked[0] == "project_name"
    assert asked.index("package_name") + 1 == asked.index("distribution_name")
    assert "cluster_size" in asked
    assert not {"fix", "store_backend", "seed_encryption"} & set(asked)
    recorded = answers(tmp_path / "app")
    assert recorded["project_name"] == "Pty Bot"
    assert recorded["package_name"] == "pty_bot"
    assert (recorded["fix"], recorded["store_backend"]) == ("kv_seed", "upstash")
    assert recorded["seed_encryption"] is True
    assert "a shared Redis/KV store" in transcript[0]


def test_the_guide_says_when_the_recommended_fix_is_not_offered(
    tmp_path: Path, lacking: dict[str, Path]
) -> None:
    template = lacking["stateful"]
    child = spawn("new", "--defaults", "--template", str(template), str(tmp_path / "app"))
    child.expect("What is a session in your app")
    child.send(DOWN + ENTER)  # a live connection
    child.expect("Can that upstream accept connections straight from a browser")
    child.send(DOWN + ENTER)  # no
    child.expect("Does a session hold personal data")
    child.send("n")
    child.expect("Where will it run")
    child.send(ENTER)  # Vercel
    child.expect(r"Recommended: stateful server \(stateful\)")
    child.expect("Vercel functions cannot hold it")
    child.expect(
        "The recommended fix, stateful, is not offered by this template version, which offers: "
        "kv_seed, client_direct"
    )
    child.expect("Which offered fix should the project use")
    child.send(DOWN + ENTER)  # the second offered fix
    assert finish(child) == 0, child.before
    assert answers(tmp_path / "app")["fix"] == "client_direct"


def test_yes_the_upstream_takes_browser_connections_recommends_client_direct(
    tmp_path: Path,
) -> None:
    child = spawn("new", "--defaults", str(tmp_path / "app"))
    child.expect("What is a session in your app")
    child.send(DOWN + ENTER)  # a live connection
    child.expect("Can that upstream accept connections straight from a browser")
    child.send(ENTER)  # yes
    child.expect("Does a session hold personal data")
    child.send("n")
    child.expect("Where will it run")
    child.send(ENTER)
    child.expect(r"Recommended: client-direct \(client_direct\)")
    child.expect("Use the recommended fix")
    child.send(ENTER)
    assert finish(child) == 0, child.before
    assert answers(tmp_path / "app")["fix"] == "client_direct"


def test_not_sure_about_the_upstream_recommends_the_safe_stateful_server(tmp_path: Path) -> None:
    child = spawn("new", "--defaults", str(tmp_path / "app"))
    child.expect("What is a session in your app")
    child.send(DOWN + ENTER)  # a live connection
    child.expect("Can that upstream accept connections straight from a browser")
    child.send(DOWN + DOWN + ENTER)  # not sure
    child.expect("Does a session hold personal data")
    child.send("n")
    child.expect("Where will it run")
    child.send(DOWN + ENTER)  # Render
    child.expect(r"Recommended: stateful server \(stateful\)")
    child.expect("you were not sure, so this is the safe choice")
    child.expect("Use the recommended fix")
    child.send(ENTER)
    assert finish(child) == 0, child.before
    assert answers(tmp_path / "app")["fix"] == "stateful"


def test_another_fix_can_be_picked_and_keeps_what_the_guide_was_told(tmp_path: Path) -> None:
    child = spawn("new", "--defaults", str(tmp_path / "app"))
    child.expect("What is a session in your app")
    child.send(ENTER)  # data
    child.expect("Does a session hold personal data")
    child.send("n")
    child.expect("Where will it run")
    child.send(ENTER)  # Vercel
    child.expect(r"Recommended: KV \+ seed \(kv_seed\)")
    child.expect("Use the recommended fix")
    child.send(DOWN + ENTER)  # the first other fix
    assert finish(child) == 0, child.before
    others = [fix for fix in OFFERED if fix != "kv_seed"]
    recorded = answers(tmp_path / "app")
    assert recorded["fix"] == others[0]
    assert "store_backend" not in recorded  # a kv_seed question, not asked for another fix


def test_without_dest_the_guide_asks_for_the_folder(tmp_path: Path) -> None:
    child = spawn("new", "--defaults", "--fix", "kv_seed", cwd=tmp_path)
    child.expect("Where should the project go")
    child.send("\x15voice-app" + ENTER)  # ^U clears the suggested name
    assert finish(child) == 0, child.before
    assert answers(tmp_path / "voice-app")["fix"] == "kv_seed"
    assert not (tmp_path / "session-app").exists()


def test_ctrl_c_at_a_copier_question_stops_without_a_trace(tmp_path: Path) -> None:
    child = spawn("new", "--fix", "kv_seed", str(tmp_path / "app"))
    child.expect(re.escape(CONFIG["project_name"]["help"][:30]))
    child.sendcontrol("c")
    assert finish(child) == 130
    assert "Traceback" not in str(child.before)
    assert "Stopped." in str(child.before)
    assert not (tmp_path / "app").exists()


def test_ctrl_c_stops_without_a_trace(tmp_path: Path) -> None:
    child = spawn("new", str(tmp_path / "app"))
    child.expect("What is a session in your app")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert not (tmp_path / "app").exists()


def test_without_a_terminal_missing_answers_are_an_error_not_a_hang(tmp_path: Path) -> None:
    result = sessionfix("new", str(tmp_path / "app"))
    assert result.returncode == 2
    assert "no terminal to ask questions on: pass --defaults" in result.stderr
    assert not (tmp_path / "app").exists()
    result = sessionfix("new", "--defaults")
    assert result.returncode == 2
    assert "name the new project's directory" in result.stderr


def test_defaults_and_data_generate_without_questions(tmp_path: Path) -> None:
    result = sessionfix(
        "new",
        "--defaults",
        "--data",
        "project_name=Voice Bot",
        "--data",
        "cluster_size=5",
        str(tmp_path / "app"),
    )
    assert result.returncode == 0, result.stderr
    recorded = answers(tmp_path / "app")
    assert (recorded["project_name"], recorded["cluster_size"]) == ("Voice Bot", 5)
    assert recorded["fix"] == CONFIG["fix"]["default"]
    assert (tmp_path / "app" / "src" / "voice_bot" / "main.py").is_file()


def test_the_destination_folder_names_the_project(tmp_path: Path) -> None:
    result = sessionfix("new", "--defaults", "--fix", "kv_seed", str(tmp_path / "my-voice-bot"))
    assert result.returncode == 0, result.stderr
    recorded = answers(tmp_path / "my-voice-bot")
    assert (recorded["project_name"], recorded["package_name"]) == ("my-voice-bot", "my_voice_bot")
    assert "uv run python -m my_voice_bot cluster" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("fix", "host", "targets"),
    [
        ("kv_seed", "vercel", ["vercel", "github"]),
        ("kv_seed", "render", ["render", "github"]),
        ("client_direct", "fly", ["fly", "github"]),
        ("stateful", "containers", ["docker", "github"]),
        ("stateful", "vercel", ["vercel", "docker", "render", "fly", "github"]),
        ("kv_seed", "other", None),
    ],
)
def test_where_it_will_run_picks_the_deploy_files(
    fix: str, host: str, targets: list[str] | None
) -> None:
    offered = list(CONFIG["deploy_targets"]["choices"].values())
    situation = Situation(live=fix != "kv_seed", host=host)
    assert prefilled(fix, situation, offered).get("deploy_targets") == targets
    assert set(HOST_TARGETS) | {"other"} == set(HOSTS)  # every host the guide offers
    # A template version without the question gets no such answer.
    assert "deploy_targets" not in prefilled(fix, situation, None)


def test_the_host_answer_reaches_the_generated_deploy_files(tmp_path: Path) -> None:
    result = sessionfix(
        "new", "--defaults", "--session", "data", "--host", "fly", str(tmp_path / "app")
    )
    assert result.returncode == 0, result.stderr
    assert set(answers(tmp_path / "app")["deploy_targets"]) == {"fly", "github"}
    assert (tmp_path / "app" / "fly.toml").is_file()
    assert (tmp_path / "app" / ".github").is_dir()
    assert not (tmp_path / "app" / "vercel.json").exists()
    assert not (tmp_path / "app" / "compose.yaml").exists()


def test_vercel_for_the_stateful_fix_says_where_the_realtime_service_goes(tmp_path: Path) -> None:
    result = sessionfix(
        "new", "--defaults", "--fix", "stateful", "--host", "vercel", str(tmp_path / "app")
    )
    assert result.returncode == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "Vercel can run the API but not the realtime service" in message
    assert "also gets Docker, Render and Fly.io files" in message
    recorded = answers(tmp_path / "app")
    assert set(recorded["deploy_targets"]) == {"vercel", "docker", "render", "fly", "github"}
    assert (tmp_path / "app" / "vercel.json").is_file()
    assert (tmp_path / "app" / "fly.realtime.toml").is_file()


def test_the_guide_answers_can_be_given_as_options(tmp_path: Path) -> None:
    result = sessionfix(
        "new",
        "--defaults",
        "--session",
        "data",
        "--host",
        "render",
        "--personal-data",
        "no",
        str(tmp_path / "app"),
    )
    assert result.returncode == 0, result.stderr
    assert "Fix: kv_seed. Your session is data" in result.stderr
    recorded = answers(tmp_path / "app")
    assert (recorded["fix"], recorded["store_backend"]) == ("kv_seed", "redis")


@pytest.mark.parametrize("fix", ALL_FIXES)
def test_fix_must_be_one_the_template_offers(
    tmp_path: Path, fix: str, lacking: dict[str, Path]
) -> None:
    template = str(lacking["stateful"])
    result = sessionfix(
        "new", "--defaults", "--template", template, "--fix", fix, str(tmp_path / "app")
    )
    if fix != "stateful":
        assert result.returncode == 0, result.stderr
        assert answers(tmp_path / "app")["fix"] == fix
    else:
        assert result.returncode == 2
        assert "does not offer the fix 'stateful'" in result.stderr
        assert "available fixes: kv_seed, client_direct" in result.stderr
        assert not (tmp_path / "app").exists()


def test_a_recommendation_the_template_lacks_is_an_error_without_a_terminal(
    tmp_path: Path, lacking: dict[str, Path]
) -> None:
    args = ["--session", "live", "--browser-direct", "yes", str(tmp_path / "app")]
    result = sessionfix("new", "--defaults", *args)
    assert result.returncode == 0, result.stderr
    assert answers(tmp_path / "app")["fix"] == "client_direct"
    shutil.rmtree(tmp_path / "app")
    result = sessionfix("new", "--defaults", "--template", str(lacking["client_direct"]), *args)
    assert result.returncode == 2
    assert "the guide recommends client_direct" in result.stderr
    assert "available fixes: kv_seed, stateful (choose one with --fix)" in result.stderr
    assert not (tmp_path / "app").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fix", "kv_seed", "--host", "vercel"], {"store_backend": "upstash"}),
        (["--host", "vercel"], {"fix": "kv_seed", "store_backend": "upstash"}),
        (
            ["--host", "fly", "--personal-data", "yes"],
            {"store_backend": "redis", "seed_encryption": True},
        ),
        (
            ["--fix", "kv_seed", "--host", "vercel", "--data", "store_backend=redis"],
            {"store_backend": "redis"},
        ),
        (["--browser-direct", "yes", "--host", "vercel"], {"fix": "client_direct"}),
    ],
    ids=["fix-and-host", "host-alone", "host-and-personal-data", "data-wins", "browser-direct"],
)
def test_every_guide_answer_counts_without_a_terminal(
    tmp_path: Path, args: list[str], expected: dict[str, Any]
) -> None:
    result = sessionfix("new", "--defaults", *args, str(tmp_path / "app"))
    assert result.returncode == 0, result.stderr
    recorded = answers(tmp_path / "app")
    assert {key: recorded.get(key) for key in expected} == expected


def test_a_copier_error_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    def newer(text: str) -> str:
        return text.replace('_min_copier_version: "9.4"', '_min_copier_version: "99.0"')

    template = template_copy(tmp_path / "template", newer)
    result = sessionfix("new", "--defaults", "--template", str(template), str(tmp_path / "app"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "sessionfix new: error: Copier could not generate" in result.stderr
    assert "99.0" in result.stderr
    assert not (tmp_path / "app").exists()


def test_setup_without_uv_or_hooks_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_uv() -> str:
        raise FileNotFoundError("uv")

    monkeypatch.setattr("sessionfix.postcopy.uv.find_uv_bin", no_uv)
    assert cli.main(["new", "--defaults", "--setup", str(tmp_path / "one")]) == 1
    error = capsys.readouterr().err
    assert "one was generated, but its setup cannot run: the uv executable" in error
    assert "uv sync && uv run pytest" in error
    monkeypatch.undo()
    monkeypatch.setattr("sessionfix.postcopy.CHECKOUT", tmp_path / "nowhere")
    assert cli.main(["new", "--defaults", "--setup", str(tmp_path / "two")]) == 1
    error = capsys.readouterr().err
    assert "the post-copy scripts (hooks/post-copy) are not installed" in error
    assert (tmp_path / "two" / ".copier-answers.yml").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "cluster_size=1"], "2 to 16 instances"),
        (["--data", "no-equals-sign"], "--data takes KEY=VALUE"),
        (["--template", "/nonexistent/template"], "cannot read the template"),
    ],
)
def test_bad_input_exits_2_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    result = sessionfix("new", "--defaults", *args, str(tmp_path / "app"))
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "app").exists()


def test_a_non_empty_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = sessionfix("new", "--defaults", str(tmp_path))
    assert result.returncode == 2
    assert "is not an empty directory" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_the_template_defaults_to_this_checkout_at_head() -> None:
    from sessionfix.template import default_source

    source = default_source(None, None)
    assert (Path(source.location), source.vcs_ref) == (ROOT, "HEAD")
    assert default_source("gh:someone/fork", None).vcs_ref is None


@pytest.mark.parametrize(
    ("situation", "fix"),
    [
        (Situation(live=False), "kv_seed"),
        (Situation(live=True, browser_direct=True), "client_direct"),
        (Situation(live=True, browser_direct=False), "stateful"),
        (Situation(live=True, browser_direct=None), "stateful"),
    ],
)
def test_the_decision_guide(situation: Situation, fix: str) -> None:
    recommendation = recommend(situation)
    assert recommendation.fix == fix
    assert recommendation.why.count(". ") == 1 and recommendation.why.endswith(".")


@pytest.mark.matrix
def test_setup_installs_and_runs_the_generated_suite_with_no_redis_at_all(tmp_path: Path) -> None:
    """A new user's first run, on a machine with no Redis: the generated suite runs on the
    embedded development store, and passes."""
    project = tmp_path / "session-app"
    hidden = {"VIRTUAL_ENV", "REDIS_URL", "REDIS_CLUSTER_URL"}
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    result = subprocess.run(
        [sys.executable, "-m", "sessionfix", "new", "--defaults", "--setup", str(project)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
        timeout=1_800,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for step in ("[1/3] Create the project's virtual environment", "[2/3] Install", "[3/3] Run"):
        assert f"✓ {step}" in result.stderr
    assert f"cd {project}\n  uv run python -m session_app cluster" in result.stderr
    assert "uv run pytest" in result.stderr
    assert (project / ".venv").is_dir()
    installed = subprocess.run(
        [project / ".venv" / "bin" / "python", "-c", "import session_app.settings"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
