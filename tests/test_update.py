"""`copier update`, as a user runs it: from a tagged release to the work tree under test.

Each project is generated from a release, committed, edited the way users edit (a new route that
uses the fix's session dependency, a changed `reply()`, an extra dependency), committed again and
updated. The update must need no `--trust`, keep every edit, and leave every file the user did
not touch exactly as a fresh copy of the new release has it.
"""

import base64
import os
import re
import secrets
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import httpx
import pytest
from packaging.version import Version

from .conftest import DEFAULTS, app_instances, generate, passes_its_own_checks_and_suite, uv
from .releases import ROOT, build_template_repo, current_version, git, released

BIN = Path(sys.executable).parent
SEED_HEADER = "X-Session-Seed"
PREVIOUS = "0.3.0"  # the newest release before this one

# The answers each fix is generated with; questions of other fixes are not asked.
FIXES: dict[str, dict[str, Any]] = {
    "kv_seed": {},
    "stateful": {"fix": "stateful"},
    "client_direct": {"fix": "client_direct"},
}

# A new route on the fix's own dependency for routes that take `{session_id}`.
NEW_ROUTE = {
    "kv_seed": '''

@router.get("/{session_id}/summary")
async def session_summary(stored: HydratedSession) -> dict[str, int]:
    """How far a conversation has got, for our dashboard."""
    return {"rev": stored.session.rev, "turns": len(stored.session.turns)}
''',
    "stateful": '''

@router.get("/{session_id}/summary")
async def session_summary(owned: OwnedSession) -> dict[str, int]:
    """How far a conversation has got, for our dashboard."""
    return {"rev": owned.session.rev, "turns": len(owned.session.turns)}
''',
    "client_direct": '''

@router.get("/{session_id}/expiry")
async def refresh_expiry(claims: RefreshClaims) -> dict[str, int]:
    """When the session's refresh token lapses, for our dashboard."""
    return {"expires_at": claims.expires_at}
''',
}

# The same replies (the generated suite asserts on them), written the way its user prefers.
REPLY_BEFORE = """    number = sum(1 for turn in history if turn.role == "user") + 1
    return f'Message {number} received: "{text}"'
"""
REPLY_AFTER = """    # Our model will answer here; until then, count the user's messages.
    asked = [turn for turn in history if turn.role == "user"]
    return f'Message {len(asked) + 1} received: "{text}"'
"""
EXTRA_DEPENDENCY = '    "anyio>=4.4",  # our background jobs\n'
# 0.4.0 made KV + seed's `reply` an async stream, so the user's edit of the old one conflicts;
# the user ports it to the new one, as the CHANGELOG's "On update" says.
STREAMED_REPLY_BEFORE = """    number = sum(1 for turn in history if turn.role == "user") + 1
    answer = f'Message {number} received: "{text}"'
"""
STREAMED_REPLY_AFTER = """    # Our model will answer here; until then, count the user's messages.
    asked = [turn for turn in history if turn.role == "user"]
    answer = f'Message {len(asked) + 1} received: "{text}"'
"""
CONFLICT = re.compile(r"<<<<<<< before updating\n.*?=======\n(.*?)>>>>>>> after updating\n", re.S)

PACKAGE = Path("src") / "session_app"
# The generated tests that run the session routes and the assistant's replies, by fix.
TESTS_OF_THE_EDITS = {
    "kv_seed": ("tests/test_multi_instance.py", "tests/test_streamed_replies.py"),
    "stateful": ("tests/test_session_routes.py", "tests/test_streamed_replies.py"),
    "client_direct": ("tests/test_multi_instance.py", "tests/test_realtime_protocol.py"),
}
USER_FILES = {
    PACKAGE / "routes" / "sessions.py",
    PACKAGE / "assistant.py",
    Path("pyproject.toml"),
}
# As git writes them: at the start of a line.
MARKERS = ("<<<<<<< ", "=======\n", ">>>>>>> ")


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template_repo(tmp_path_factory.mktemp("releases") / "sessionfix")


def copy(template: Path, destination: Path, ref: str, **answers: Any) -> Path:
    data = {**DEFAULTS, **answers}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(
            str(template), destination, data=data, defaults=True, vcs_ref=ref, quiet=True
        )
    return destination


def commit_all(project: Path, message: str) -> None:
    if not (project / ".git").exists():
        git("init", "--quiet", "--initial-branch=main", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "--quiet", "-m", message, cwd=project)


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text()
    after = change(before)
    assert after != before, f"the edit of {path.name} changed nothing"
    path.write_text(after)


def make_user_edits(project: Path, fix: str) -> None:
    edit(project / PACKAGE / "routes" / "sessions.py", lambda text: text + NEW_ROUTE[fix])
    edit(project / PACKAGE / "assistant.py", lambda text: text.replace(REPLY_BEFORE, REPLY_AFTER))
    edit(
        project / "pyproject.toml",
        lambda text: text.replace("dependencies = [\n", "dependencies = [\n" + EXTRA_DEPENDENCY, 1),
    )


def assert_user_edits_kept(project: Path, fix: str) -> None:
    assert NEW_ROUTE[fix] in (project / PACKAGE / "routes" / "sessions.py").read_text()
    assert REPLY_AFTER in (project / PACKAGE / "assistant.py").read_text()
    assert EXTRA_DEPENDENCY in (project / "pyproject.toml").read_text()


def copier_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `copier` command in the project's directory, without --trust, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return subprocess.run(
        [str(BIN / "copier"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def update(project: Path, *args: str) -> str:
    result = copier_cli(project, "update", "--defaults", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"copier update failed:\n{output[-4000:]}"
    assert not (project / ".git" / "MERGE_HEAD").exists()
    return output


def project_files(project: Path) -> dict[Path, str]:
    return {
        path.relative_to(project): path.read_text()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def assert_matches_a_fresh_copy(project: Path, fresh: Path, edited: set[Path]) -> None:
    """Every file the user did not touch is what a fresh copy has; none is left over or missing."""
    updated, expected = project_files(project), project_files(fresh)
    assert not [name for name in updated if name.suffix == ".rej"], "Copier left .rej files"
    assert sorted(updated) == sorted(expected), "the file set differs from a fresh copy"
    for name, text in updated.items():
        if name in edited:
            continue
        conflicted = [line for line in text.splitlines(True) if line.startswith(MARKERS)]
        assert not conflicted, f"conflict markers in {name}: {conflicted}"
        assert text == expected[name], f"{name} differs from a fresh copy"


def test_the_changelog_names_a_commit_of_this_repository_for_every_release() -> None:
    releases = released()
    assert PREVIOUS in releases and "0.1.0" in releases
    versions = [Version(version) for version in releases]
    assert versions == sorted(versions, reverse=True), "newest release first"
    assert Version(current_version()) > versions[0], "pyproject.toml names an unreleased version"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{current_version()}]" in changelog
    for sha in releases.values():
        git("cat-file", "-e", f"{sha}^{{commit}}", cwd=ROOT)
    for section in changelog.split("\n## [")[1:]:
        assert "### On update" in section or section.startswith("0.1.0]"), section.split("\n")[0]


def test_the_template_repo_holds_the_releases_and_the_work_tree(template_repo: Path) -> None:
    tags = git("tag", "--list", cwd=template_repo).split()
    assert sorted(tags) == sorted([*released(), current_version()])
    # The newest tag is the work tree as it is now, uncommitted changes included.
    for name in ("copier.yml", "CHANGELOG.md", "template/.pre-commit-config.yaml"):
        shown = git("show", f"{current_version()}:{name}", cwd=template_repo)
        assert shown == (ROOT / name).read_text(), name


@pytest.mark.matrix
@pytest.mark.parametrize("fix", FIXES)
def test_an_update_from_the_previous_release_keeps_the_users_edits(
    tmp_path: Path, template_repo: Path, redis_url: str, fix: str
) -> None:
    project = copy(template_repo, tmp_path / "app", PREVIOUS, **FIXES[fix])
    commit_all(project, "Generated")
    make_user_edits(project, fix)
    commit_all(project, "Our dashboard route, our reply, our dependency")

    output = update(project)

    assert f"now on sessionfix {current_version()}" in output
    assert "CHANGELOG.md" in output and "<<<<<<<" in output
    assert f"_commit: {current_version()}" in (project / ".copier-answers.yml").read_text()
    assert_user_edits_kept(project, fix)
    fresh = copy(template_repo, tmp_path / "fresh", current_version(), **FIXES[fix])
    assert_matches_a_fresh_copy(project, fresh, USER_FILES)
    if fix == "kv_seed":
        port_the_reply_to_a_stream(project / PACKAGE / "assistant.py")
    # Every file but the user's is a fresh copy's, whose whole suite runs in this suite already:
    # here the checks, and the tests of the routes and replies the user edited.
    passes_its_own_checks_and_suite(project, redis_url, *TESTS_OF_THE_EDITS[fix])


def port_the_reply_to_a_stream(path: Path) -> None:
    """What a KV + seed user does with the conflict in `reply`: take the new, streamed one, and
    make the same edit in it."""
    taken = CONFLICT.sub(r"\1", path.read_text())
    assert STREAMED_REPLY_BEFORE in taken, "the update's side of the conflict is the new reply"
    path.write_text(taken.replace(STREAMED_REPLY_BEFORE, STREAMED_REPLY_AFTER))


def test_a_kv_seed_project_of_0_1_0_updates_to_this_release_without_trust(
    tmp_path: Path, template_repo: Path
) -> None:
    """0.1.0 to now crosses the template's renamed files; no migration is needed, none runs."""
    project = copy(template_repo, tmp_path / "app", "0.1.0")
    assert not (project / PACKAGE / "instance.py").exists()
    commit_all(project, "Generated")
    make_user_edits(project, "kv_seed")
    commit_all(project, "Our dashboard route, our reply, our dependency")

    update(project)

    assert_user_edits_kept(project, "kv_seed")
    fresh = copy(template_repo, tmp_path / "fresh", current_version())
    assert_matches_a_fresh_copy(project, fresh, USER_FILES)


def test_an_update_can_switch_seed_encryption_off(tmp_path: Path, template_repo: Path) -> None:
    project = copy(template_repo, tmp_path / "app", current_version())
    assert "AESGCM" in (project / PACKAGE / "sessions" / "seed.py").read_text()
    commit_all(project, "Generated")

    update(project, "--data", "seed_encryption=false")

    assert "seed_encryption: false" in (project / ".copier-answers.yml").read_text()
    fresh = copy(template_repo, tmp_path / "fresh", current_version(), seed_encryption=False)
    assert_matches_a_fresh_copy(project, fresh, set())


def test_a_relative_template_path_is_recorded_so_that_update_finds_it(
    tmp_path: Path, template_repo: Path
) -> None:
    relative = os.path.relpath(template_repo, tmp_path)
    copied = copier_cli(
        tmp_path, "copy", "--defaults", "--vcs-ref", current_version(), relative, "app"
    )
    assert copied.returncode == 0, copied.stderr
    message = " ".join(copied.stderr.split())
    assert f"You gave the template as a relative path ({relative})" in message
    assert f".copier-answers.yml records it as {template_repo.resolve()}" in message
    project = tmp_path / "app"
    answers = (project / ".copier-answers.yml").read_text()
    assert f"_src_path: {template_repo.resolve()}\n" in answers
    commit_all(project, "Generated")

    # From inside the project, where a relative path would have pointed elsewhere.
    update(project)
    assert git("status", "--porcelain", cwd=project) == ""


def test_a_relative_template_path_of_an_older_release_is_what_the_changelog_warns_of(
    tmp_path: Path, template_repo: Path
) -> None:
    """0.2.0 recorded a relative path as given; the changelog says what to do, and it works."""
    relative = os.path.relpath(template_repo, tmp_path)
    copied = copier_cli(tmp_path, "copy", "--defaults", "--vcs-ref", "0.2.0", relative, "app")
    assert copied.returncode == 0, copied.stderr
    project = tmp_path / "app"
    answers = project / ".copier-answers.yml"
    assert f"_src_path: {relative}\n" in answers.read_text()
    commit_all(project, "Generated")
    failed = copier_cli(project, "update", "--defaults")
    assert failed.returncode != 0
    assert "Local template must be a directory" in failed.stderr

    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "set `_src_path` in that file to the template's absolute path" in changelog
    answers.write_text(answers.read_text().replace(relative, str(template_repo.resolve())))
    commit_all(project, "Template path: absolute")
    update(project)
    assert f"_commit: {current_version()}" in answers.read_text()


def with_hooks(home: Path) -> dict[str, str]:
    # The ruff and mypy hooks run `uv run`, which installs the project: the suite covers them.
    return os.environ | {"PRE_COMMIT_HOME": str(home), "SKIP": "ruff,ruff-format,mypy"}


def run(project: Path, *command: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, env=with_hooks(home), check=False
    )


def test_a_half_resolved_update_cannot_be_committed(tmp_path: Path) -> None:
    project = generate(tmp_path / "app")
    commit_all(project, "Generated")
    home = tmp_path / "pre-commit-home"
    assert run(project, str(BIN / "pre-commit"), "install", home=home).returncode == 0
    readme = project / "README.md"
    ours = readme.read_text() + "\nOur team's notes.\n"
    theirs = readme.read_text() + "\nThe template's new notes.\n"
    readme.write_text(f"<<<<<<< before updating\n{ours}=======\n{theirs}>>>>>>> after updating\n")
    (project / "pyproject.toml.rej").write_text("@@ -1 +1 @@\n-old\n+new\n")
    git("add", "-A", cwd=project)
    commit = ("git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-m", "Up")

    refused = run(project, *commit, home=home)

    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "README.md:1: Merge conflict string" in output, output
    assert "pyproject.toml.rej" in output, output
    readme.write_text(ours)
    (project / "pyproject.toml.rej").unlink()
    git("add", "-A", cwd=project)
    accepted = run(project, *commit, home=home)
    hooks = accepted.stdout + accepted.stderr
    assert accepted.returncode == 0, hooks
    assert re.search(r"no unresolved conflict markers\.+Passed", hooks), hooks


def test_sessions_created_before_an_update_from_the_previous_release_are_still_served(
    tmp_path: Path, template_repo: Path, redis_url: str
) -> None:
    """0.4.0 gives every key of a session the `{session_id}` hash tag: a session stored under
    the old names moves to the new ones when it is first missed, so a user who comes back after
    the deploy finds it, with or without a seed; a deleted one stays deleted."""
    project = copy(template_repo, tmp_path / "app", PREVIOUS)
    uv(project, "sync")
    commit_all(project, "Generated and locked")
    env = {
        "APP_ENV": "development",
        "REDIS_URL": redis_url,
        "KEY_PREFIX": f"update-{uuid.uuid4().hex[:12]}",
        "SESSION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
    }
    with app_instances(project, env, 1) as [url], httpx.Client(base_url=url) as old:
        sessions = [old.post("/api/sessions").json()["session_id"] for _ in range(3)]
        seeds = {}
        for session_id in sessions:
            sent = old.post(f"/api/sessions/{session_id}/messages", json={"text": "before"})
            assert sent.status_code == 200, sent.text
            seeds[session_id] = sent.headers[SEED_HEADER]
        with_seed, without_seed, deleted = sessions
        assert old.delete(f"/api/sessions/{deleted}").status_code == 204

    update(project)
    uv(project, "sync")

    with app_instances(project, env, 2) as urls:
        new = [httpx.Client(base_url=url) for url in urls]
        read = new[0].get(f"/api/sessions/{without_seed}")
        assert read.status_code == 200, read.text
        assert read.json()["turns"][0]["text"] == "before"
        sent = new[1].post(
            f"/api/sessions/{with_seed}/messages",
            json={"text": "after"},
            headers={SEED_HEADER: seeds[with_seed]},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["reply"] == 'Message 2 received: "after"'
        # Written in 0.4.0's form (the session as its seed), in place of the old JSON document.
        after = new[0].get(f"/api/sessions/{with_seed}")
        assert [turn["text"] for turn in after.json()["turns"]] == [
            "before",
            'Message 1 received: "before"',
            "after",
            'Message 2 received: "after"',
        ]
        gone = new[0].get(f"/api/sessions/{deleted}", headers={SEED_HEADER: seeds[deleted]})
        assert gone.json()["code"] == "session_deleted"
        for client in new:
            client.close()
