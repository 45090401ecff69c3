"""The client-direct fix: its questions, and every combination of its answers generated,
installed in its own venv, and put through its own tool chain and multi-instance test suite
(real uvicorn processes, a real Redis for rate limits and refresh chains, and a headless
Chromium)."""

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from .conftest import assert_fully_rendered, generate, passes_its_own_checks_and_suite

# The other fixes' questions: never asked, never recorded for client_direct.
OTHER_FIXES = (
    *("store_backend", "seed_encryption", "seed_in_query", "session_ttl_hours"),
    *("realtime_instances", "lease_seconds"),
)
PROVIDERS = ["local", "openai"]


def generate_client_direct(destination: Path, **answers: Any) -> Path:
    answers = {"fix": "client_direct", "upstream_provider": "local", **answers}
    return generate(destination, omit=OTHER_FIXES, **answers)


def test_the_fix_is_offered_with_a_label_that_says_when_to_pick_it() -> None:
    config = yaml.safe_load((Path(__file__).parent.parent / "copier.yml").read_text())
    choices = config["fix"]["choices"]
    label = next(label for label, value in choices.items() if value == "client_direct")
    # When to pick it comes first: the upstream takes the browser's own connection.
    assert label.startswith("A live connection the browser can open with a token")
    assert config["fix"]["default"] == "kv_seed"
    for question in ("upstream_provider", "token_ttl_seconds"):
        assert config[question]["when"] == "{{ fix == 'client_direct' }}"
        assert config[question]["help"]
    for question in OTHER_FIXES:
        when = jinja2.Template(config[question]["when"]).render(fix="client_direct")
        assert when == "False", f"{question} is asked for client_direct"


def test_it_generates_an_api_that_keeps_no_session_but_shares_a_store(tmp_path: Path) -> None:
    project = generate_client_direct(tmp_path / "app", token_ttl_seconds=30)
    package = project / "src" / "session_app"
    own = ("app.py", "dev_upstream.py", "sessions/tokens.py", "routes/deps.py", "auth.py")
    # The store the three fixes share: for client-direct, rate limits and refresh chains.
    shared = ("sessions/backend.py", "store_config.py", "dev_store.py", "rate_limits.py")
    for path in (*own, *shared, "sessions/refresh_chains.py"):
        assert (package / path).is_file(), path
    # No session is stored, and nothing of the other fixes comes along.
    for absent in ("sessions/store.py", "sessions/keyspace.py", "sessions/models.py", "seed.py"):
        assert not (package / absent).exists(), absent
    assert not (package / "routes" / "events.py").exists() and not (package / "realtime").exists()
    for test in ("test_openai_provider.py", "test_minting_guards.py", "test_refresh_rotation.py"):
        assert (project / "tests" / test).is_file(), test
    assert not (project / "tests" / "test_hydration_routes.py").exists()
    pyproject = (project / "pyproject.toml").read_text()
    assert '"redis[hiredis]' in pyproject and '"fakeredis[lua]' in pyproject
    assert "sse-starlette" not in pyproject and "httpx-sse" not in pyproject
    settings = (package / "settings.py").read_text()
    assert "default=30, ge=10" in settings
    assert 'upstream_provider: Literal["local", "openai"] = "local"' in settings
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["fix"] == "client_direct"
    assert answers["token_ttl_seconds"] == 30
    assert not set(OTHER_FIXES) & set(answers), "another fix's answers recorded"


def test_the_provider_answer_sets_the_default_provider(tmp_path: Path) -> None:
    project = generate_client_direct(tmp_path / "app", upstream_provider="openai")
    settings = (project / "src" / "session_app" / "settings.py").read_text()
    assert 'upstream_provider: Literal["local", "openai"] = "openai"' in settings
    assert "OPENAI_API_KEY=" in (project / ".env.example").read_text()
    assert "OPENAI_API_KEY" in (project / "README.md").read_text()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_file_is_rendered_and_none_is_empty(tmp_path: Path, provider: str) -> None:
    assert_fully_rendered(generate_client_direct(tmp_path / "app", upstream_provider=provider))


@pytest.mark.parametrize("ttl", [9, 601])
def test_the_token_lifetime_is_validated(tmp_path: Path, ttl: int) -> None:
    with pytest.raises(ValueError, match="between 10 and 600 seconds"):
        generate_client_direct(tmp_path / "app", token_ttl_seconds=ttl)
    assert not (tmp_path / "app" / "pyproject.toml").exists()


def test_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="upstream_provider"):
        generate_client_direct(tmp_path / "app", upstream_provider="azure")


@pytest.mark.matrix
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_generated_project_passes_its_own_checks_and_suite(
    tmp_path: Path, provider: str, redis_url: str
) -> None:
    project = generate_client_direct(tmp_path / "app", upstream_provider=provider)
    # Its rate limits and refresh chains are shared by every instance through the store.
    passes_its_own_checks_and_suite(project, redis_url=redis_url)
