"""The client-direct fix: its questions, and every combination of its answers generated,
installed in its own venv, and put through its own tool chain and multi-instance test suite
(real uvicorn processes, a real Redis for rate limits and refresh chains, and a headless
Chromium)."""

import base64
import secrets
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import yaml

from .conftest import (
    app_instances,
    assert_fully_rendered,
    generate,
    passes_its_own_checks_and_suite,
    uv,
)

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
    # The suite sets UPSTREAM_PROVIDER for every instance it starts, so the answer changes only
    # the defaults, the demo page and the wiring: the whole suite runs once, on the default
    # project; the other checks its code and runs the tests of what the answer changes.
    changed: tuple[str, ...] = ("tests/test_openai_provider.py", "tests/test_demo_page.py")
    if provider == "local":
        changed = ()
    # Its rate limits and refresh chains are shared by every instance through the store.
    passes_its_own_checks_and_suite(project, redis_url, *changed)


def test_it_starts_on_a_redis_cluster_and_shares_its_refresh_chains_there(
    tmp_path: Path, redis_cluster_url: str
) -> None:
    """REDIS_URL at one node of a Redis Cluster: the app finds the cluster itself (no
    REDIS_CLUSTER), and a session minted on one instance refreshes on the other, its refresh
    chain and the rate limit's count kept on the cluster."""
    project = generate_client_direct(tmp_path / "app")
    uv(project, "sync")
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    env = {
        "APP_ENV": "development",
        "REDIS_URL": redis_cluster_url,
        "KEY_PREFIX": f"cd-{secrets.token_hex(4)}",
        "SESSION_KEYS": key,
    }
    with app_instances(project, env, 2) as (first, second):
        created = httpx.post(f"{first}/api/sessions", timeout=10)
        assert created.status_code == 201, created.text
        session = created.json()
        refresh = session["refresh"]["token"]
        for url in (second, first):
            refreshed = httpx.post(
                f"{url}/api/sessions/{session['session_id']}/token",
                headers={"Authorization": f"Bearer {refresh}"},
                timeout=10,
            )
            assert refreshed.status_code == 200, refreshed.text
            refresh = refreshed.json()["refresh"]["token"]
        # The refresh token just spent is refused on every instance: the chain is shared.
        spent = httpx.post(
            f"{second}/api/sessions/{session['session_id']}/token",
            headers={"Authorization": f"Bearer {session['refresh']['token']}"},
            timeout=10,
        )
        assert spent.status_code in (401, 409), spent.text
