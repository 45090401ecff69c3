"""Deploy files: each one parses, runs modules and commands the project has, on the port and
health path the app serves, with environment variables the app (or its suite) reads; a
deselected target leaves no file and no README section behind; compose.yaml passes
`docker compose config`."""

import ast
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import generate, uv

ALL_TARGETS = ["docker", "vercel", "render", "fly", "github"]

VARIANTS: dict[str, dict[str, Any]] = {
    "kv_seed": {"fix": "kv_seed"},
    "kv_seed-upstash": {"fix": "kv_seed", "store_backend": "upstash"},
    "stateful": {"fix": "stateful"},
    "client_direct": {"fix": "client_direct"},
    "client_direct-openai": {"fix": "client_direct", "upstream_provider": "openai"},
}

# What each target adds; files every target shares (the Dockerfile) are checked separately.
TARGET_FILES = {
    "docker": ["compose.yaml", "deploy/nginx.conf"],
    "vercel": ["vercel.json", "api/index.py", ".vercelignore"],
    "render": ["render.yaml"],
    "fly": ["fly.toml"],
    "github": [".github/workflows/ci.yml"],
}
README_SECTIONS = {
    "docker": "### Docker Compose",
    "vercel": "### Vercel",
    "render": "### Render",
    "fly": "### Fly.io",
    "github": "### GitHub Actions",
}

# Set by the platform for the process, never read by the app itself.
PLATFORM_VARIABLES = {"PORT", "RENDER_EXTERNAL_HOSTNAME", "FLY_APP_NAME", "PYTHON_VERSION"}
# Read by uvicorn itself: the proxies whose X-Forwarded-For names the client (rate limits).
PLATFORM_VARIABLES |= {"FORWARDED_ALLOW_IPS"}
PORT = 8000
HEALTH = "/healthz"


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("deploy")
    return {
        name: generate(base / name, **answers, deploy_targets=ALL_TARGETS)
        for name, answers in VARIANTS.items()
    }


@pytest.fixture(params=list(VARIANTS))
def project(request: pytest.FixtureRequest, projects: dict[str, Path]) -> Path:
    name: str = request.param
    return projects[name]


def answers_of(project: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers


def package_dir(project: Path) -> Path:
    return project / "src" / str(answers_of(project)["package_name"])


def deploy_texts(project: Path) -> dict[str, str]:
    names = [name for files in TARGET_FILES.values() for name in files] + ["Dockerfile"]
    if answers_of(project)["fix"] == "stateful":
        names.append("fly.realtime.toml")
    return {name: (project / name).read_text() for name in names}


def readme_deploy_section(project: Path) -> str:
    return (project / "README.md").read_text().split("\n## Deploy\n", 1)[1]


def settings_variables(project: Path) -> set[str]:
    """The environment variables the generated `Settings` reads: its fields and aliases, and
    those of the classes it builds on (config.py, store_config.py)."""
    modules = ["settings.py", "config.py", "store_config.py"]
    trees = [
        ast.parse(path.read_text())
        for name in modules
        if (path := package_dir(project) / name).is_file()
    ]
    classes = [node for tree in trees for node in tree.body if isinstance(node, ast.ClassDef)]
    names: set[str] = set()
    for statement in (statement for cls in classes for statement in cls.body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names.add(statement.target.id.upper())
            for node in ast.walk(statement):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "AliasChoices"
                ):
                    names |= {
                        arg.value
                        for arg in node.args
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                    }
    names.discard("MODEL_CONFIG")
    return names


def suite_variables(project: Path) -> set[str]:
    """The variables the generated test suite reads from its environment."""
    text = "\n".join(path.read_text() for path in (project / "tests").glob("*.py"))
    return set(re.findall(r"os\.environ\.get\(\"([A-Z_]+)\"", text))


def module_app_names(path: Path) -> set[str]:
    """Top-level names a module assigns (where an ASGI `app` would be)."""
    tree = ast.parse(path.read_text())
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.Try)
        for statement in ([node] if isinstance(node, ast.Assign) else node.body)
        if isinstance(statement, ast.Assign)
        for target in statement.targets
        if isinstance(target, ast.Name)
    }


def declares_health_route(path: Path) -> bool:
    """The module routes GET /healthz (a FastAPI decorator or a Starlette Route)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            name = node.func.id if isinstance(node.func, ast.Name) else name
            constant = isinstance(first, ast.Constant) and first.value == HEALTH
            if name in {"get", "Route"} and constant:
                return True
    return False


# -- each file parses ---------------------------------------------------------------------------


def test_every_deploy_file_parses(project: Path) -> None:
    texts = deploy_texts(project)
    for name in ("compose.yaml", "render.yaml", ".github/workflows/ci.yml"):
        assert isinstance(yaml.safe_load(texts[name]), dict), name
    for name in ("fly.toml", "fly.realtime.toml"):
        if name in texts:
            tomllib.loads(texts[name])
    vercel = json.loads(texts["vercel.json"])
    assert vercel["rewrites"] == [{"source": "/(.*)", "destination": "/api/index"}]
    assert "api/index.py" in vercel["functions"]
    ast.parse(texts["api/index.py"])


# -- what they run exists -----------------------------------------------------------------------

RUNS_MODULE = re.compile(r"uvicorn\"?,?\s+\"?([\w.]+):(\w+)")
RUNS_PACKAGE = re.compile(r"python -m (\w+) (\w+)")
# A module with a command of its own: `python -m <package>.realtime --host ...`.
RUNS_SCRIPT = re.compile(r"python -m (\w+\.[\w.]+)\s")


def test_every_command_names_a_module_and_app_of_the_project(project: Path) -> None:
    texts = deploy_texts(project) | {"README.md": readme_deploy_section(project)}
    ran: set[str] = set()
    for name, text in texts.items():
        for module, attribute in RUNS_MODULE.findall(text):
            path = project / "src" / (module.replace(".", "/") + ".py")
            assert path.is_file(), f"{name} runs {module}, which the project does not have"
            assert attribute in module_app_names(path), f"{name}: {module} has no `{attribute}`"
            ran.add(module.rsplit(".", 1)[1])
        for package, command in RUNS_PACKAGE.findall(text):
            main = project / "src" / package / "__main__.py"
            assert main.is_file(), f"{name} runs `python -m {package}`, which does not exist"
            assert f'"{command}"' in main.read_text(), f"{name}: `{package} {command}` unknown"
        for module in RUNS_SCRIPT.findall(text):
            path = project / "src" / (module.replace(".", "/") + ".py")
            if not path.is_file():  # a package: its __main__.py is the command
                path = project / "src" / module.replace(".", "/") / "__main__.py"
            assert path.is_file(), f"{name} runs `python -m {module}`, which does not exist"
            assert 'if __name__ == "__main__":' in path.read_text(), f"{module} is no command"
            ran.add(module.rsplit(".", 1)[1])
    fix = answers_of(project)["fix"]
    assert "main" in ran
    if fix == "stateful":
        assert {"realtime", "dev_upstream"} <= ran
    index = texts["api/index.py"]
    assert f"from {answers_of(project)['package_name']}.main import app" in index


def test_the_realtime_service_is_never_a_function(projects: dict[str, Path]) -> None:
    project = projects["stateful"]
    texts = deploy_texts(project)
    function = texts["vercel.json"] + texts["api/index.py"].split('"""')[2]
    assert "realtime:app" not in function and ".realtime" not in function
    assert "a function cannot hold a connection" in texts["api/index.py"]
    assert "fly-replay" in texts["fly.realtime.toml"] and "fly-replay" in (
        readme_deploy_section(project)
    )
    # Each owner is addressed on its own: a service of its own, never a replica.
    compose = yaml.safe_load(texts["compose.yaml"])["services"]
    owners = [name for name in compose if name.startswith("realtime-")]
    assert len(owners) == answers_of(project)["realtime_instances"]
    public = {compose[name]["environment"]["REALTIME_PUBLIC_URL"] for name in owners}
    assert len(public) == len(owners)
    assert all("deploy" not in compose[name] for name in owners)
    render = yaml.safe_load(texts["render.yaml"])["services"]
    render_owners = [s for s in render if ".realtime --host" in s.get("startCommand", "")]
    assert len(render_owners) == len(owners)
    assert all(s["numInstances"] == 1 for s in render_owners)


# -- ports and health paths agree with the app --------------------------------------------------


def test_ports_and_health_paths_agree_with_the_app(project: Path) -> None:
    texts = deploy_texts(project)
    answers = answers_of(project)
    package = package_dir(project)

    dockerfile = texts["Dockerfile"]
    assert f"EXPOSE {PORT}" in dockerfile
    assert f"http://127.0.0.1:{PORT}{HEALTH}" in dockerfile
    assert f'"--port", "{PORT}"' in dockerfile
    assert "USER app" in dockerfile and "uv sync" in dockerfile

    compose = yaml.safe_load(texts["compose.yaml"])["services"]
    for name, service in compose.items():
        if "uvicorn" in service.get("command", "") or ".realtime" in service.get("command", ""):
            assert f"--port {PORT}" in service["command"], name
    assert compose["api"]["deploy"]["replicas"] == answers["cluster_size"]
    assert compose["proxy"]["ports"][0] == f"{PORT}:{PORT}"
    nginx = texts["deploy/nginx.conf"]
    assert f"server api:{PORT};" in nginx and f"listen {PORT};" in nginx
    assert "proxy_buffering off;" in nginx
    if answers["fix"] != "kv_seed":
        assert "proxy_set_header Upgrade $http_upgrade;" in nginx or answers.get(
            "upstream_provider"
        ) == ("openai")

    fly_files = [name for name in texts if name.startswith("fly.")]
    for name in fly_files:
        service = tomllib.loads(texts[name])["http_service"]
        assert service["internal_port"] == PORT, name
        assert [check["path"] for check in service["checks"]] == [HEALTH], name

    render = yaml.safe_load(texts["render.yaml"])["services"]
    for service in render:
        if service["type"] == "web":
            assert service["healthCheckPath"] == HEALTH
            assert "--port $PORT" in service["startCommand"]
    api = next(s for s in render if s["name"].endswith("-api"))
    assert api["numInstances"] == answers["cluster_size"]

    # Every process a deploy file runs answers the health path the files probe.
    served = [package / "routes" / "health.py"]
    if answers["fix"] == "stateful":
        served += [package / "realtime" / "app.py", package / "dev_upstream.py"]
    if answers.get("upstream_provider") == "local":
        served.append(package / "dev_upstream.py")
    for path in served:
        assert declares_health_route(path), f"{path.name} does not route {HEALTH}"


def test_stores_match_the_fix(project: Path) -> None:
    texts = deploy_texts(project)
    compose = yaml.safe_load(texts["compose.yaml"])["services"]
    render = yaml.safe_load(texts["render.yaml"])["services"]
    workflow = yaml.safe_load(texts[".github/workflows/ci.yml"])["jobs"]["test"]
    # Every fix keeps something in the store: sessions, or client-direct's rate limits and
    # refresh chains.
    assert compose["api"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    # Only the proxy reaches the replicas: uvicorn takes the client's address from it.
    assert compose["api"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    store = next(service for service in render if service["type"] == "keyvalue")
    assert store["ipAllowList"] == []
    reference = next(v for v in render[0]["envVars"] if v.get("key") == "REDIS_URL")
    assert reference["fromService"] == {
        "type": "keyvalue",
        "name": store["name"],
        "property": "connectionString",
    }
    assert workflow["services"]["redis"]["ports"] == ["6379:6379"]
    assert workflow["env"]["REDIS_URL"] == "redis://localhost:6379/0"


def test_the_workflow_runs_the_projects_own_checks(project: Path) -> None:
    workflow = yaml.safe_load(deploy_texts(project)[".github/workflows/ci.yml"])
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("uses", "").startswith("astral-sh/setup-uv@") for step in steps)
    commands = [step["run"] for step in steps if "run" in step]
    assert commands == [
        "uv sync",
        "uv run ruff check .",
        "uv run ruff format --check .",
        "uv run mypy",
        "uv run pytest",
    ]
    image = [step["run"] for step in workflow["jobs"]["image"]["steps"] if "run" in step]
    assert image == ["docker compose config --quiet", "docker build ."]


# -- environment variables agree with the settings ----------------------------------------------


def deploy_variables(project: Path) -> dict[str, set[str]]:
    """Every environment variable each deploy file sets or refers to, by file."""
    texts = deploy_texts(project)
    found: dict[str, set[str]] = {}
    compose = yaml.safe_load(texts["compose.yaml"])
    found["compose.yaml"] = {
        name for service in compose["services"].values() for name in service.get("environment", {})
    } | set(re.findall(r"\$\{(\w+)", texts["compose.yaml"]))
    render = yaml.safe_load(texts["render.yaml"])
    entries = [v for group in render["envVarGroups"] for v in group["envVars"]]
    entries += [v for service in render["services"] for v in service.get("envVars", [])]
    commands = "\n".join(service.get("startCommand", "") for service in render["services"])
    found["render.yaml"] = {v["key"] for v in entries if "key" in v}
    found["render.yaml"] |= set(re.findall(r"\$\{?(\w+)", commands))
    found["render.yaml"] |= set(re.findall(r"(\b[A-Z_]+)=", commands))
    for name in [n for n in texts if n.startswith("fly.")]:
        config = tomllib.loads(texts[name])
        found[name] = set(config.get("env", {})) | set(re.findall(r"\$\{?(\w+)", texts[name]))
        found[name] |= set(re.findall(r"(\b[A-Z_]+)=", texts[name]))
    workflow = yaml.safe_load(texts[".github/workflows/ci.yml"])
    found["ci.yml"] = set(workflow["jobs"]["test"]["env"])
    found["api/index.py"] = set(
        re.findall(r"environ\.setdefault\(\"(\w+)\"", texts["api/index.py"])
    )
    found["README.md"] = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme_deploy_section(project)))
    return found


def test_environment_variables_are_ones_the_app_reads(project: Path) -> None:
    settings = settings_variables(project)
    readable = settings | PLATFORM_VARIABLES
    for name, variables in deploy_variables(project).items():
        if name == "ci.yml":
            unknown = variables - suite_variables(project)
        elif name == "README.md":
            unknown = variables - readable - suite_variables(project)
        else:
            unknown = variables - readable
        assert not unknown, f"{name} sets {sorted(unknown)}, which nothing in the project reads"
    assert {"APP_ENV", "SESSION_KEYS"} <= settings


def test_production_files_set_production_and_never_a_literal_key(project: Path) -> None:
    texts = deploy_texts(project)
    compose = yaml.safe_load(texts["compose.yaml"])["services"]
    for name, service in compose.items():
        environment = service.get("environment")
        if environment and "SESSION_KEYS" in environment:
            assert environment["APP_ENV"] == "production", name
            assert environment["SESSION_KEYS"].startswith("${SESSION_KEYS:?"), name
    render = yaml.safe_load(texts["render.yaml"])
    shared = {v["key"]: v for v in render["envVarGroups"][0]["envVars"]}
    assert shared["APP_ENV"]["value"] == "production"
    assert shared["SESSION_KEYS"] == {"key": "SESSION_KEYS", "generateValue": True}
    for service in render["services"]:
        if service["type"] == "web":
            assert {"fromGroup": render["envVarGroups"][0]["name"]} in service["envVars"]
    for name in [n for n in texts if n.startswith("fly.")]:
        assert tomllib.loads(texts[name])["env"]["APP_ENV"] == "production"
        assert "SESSION_KEYS" not in tomllib.loads(texts[name])["env"]
    assert "ENV " in texts["Dockerfile"] and "APP_ENV=production" in texts["Dockerfile"]
    assert 'os.environ.setdefault("APP_ENV", "production")' in texts["api/index.py"]
    for ignore in (".dockerignore", ".vercelignore"):
        assert ".env" in (project / ignore).read_text().splitlines(), ignore
    answers = answers_of(project)
    # The stateful fix's owners hold the upstream's key; client-direct's server only with OpenAI.
    openai = answers.get("upstream_provider") == "openai" or answers.get("fix") == "stateful"
    assert ("OPENAI_API_KEY" in texts["compose.yaml"]) is openai
    assert ("OPENAI_API_KEY" in texts["render.yaml"]) is openai


def test_the_readme_lists_each_targets_variables(projects: dict[str, Path]) -> None:
    upstash = readme_deploy_section(projects["kv_seed-upstash"])
    vercel = upstash.split("### Vercel", 1)[1].split("\n### ", 1)[0]
    assert "`KV_REST_API_URL`, `KV_REST_API_TOKEN`" in vercel and "`SESSION_KEYS`" in vercel
    redis = readme_deploy_section(projects["kv_seed"]).split("### Vercel", 1)[1]
    assert "| `KV_URL` |" in redis.split("\n### ", 1)[0]
    openai = readme_deploy_section(projects["client_direct-openai"])
    for section in ("### Docker Compose", "### Vercel", "### Render", "### Fly.io"):
        text = openai.split(section, 1)[1].split("\n### ", 1)[0]
        assert "`OPENAI_API_KEY`" in text, section
        assert "`REDIS_URL`" in text or "`KV_URL`" in text, section
    stateful = readme_deploy_section(projects["stateful"])
    assert "`REALTIME_PUBLIC_URL`" in stateful.split("### Render", 1)[1]


# -- choosing targets ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_one_target_brings_its_files_and_section_only(tmp_path: Path, target: str) -> None:
    project = generate(tmp_path / "app", fix="stateful", deploy_targets=[target, "fly"])
    readme = (project / "README.md").read_text()
    for other, files in TARGET_FILES.items():
        chosen = other in {target, "fly"}
        for name in files:
            assert (project / name).exists() is chosen, f"{name} with {target}"
        assert (README_SECTIONS[other] in readme) is chosen, README_SECTIONS[other]
    assert (project / "fly.realtime.toml").is_file()
    assert (project / "Dockerfile").is_file(), "Fly builds from the Dockerfile"


def test_no_targets_no_deploy_files(tmp_path: Path) -> None:
    project = generate(tmp_path / "app", deploy_targets=[])
    for name in [n for files in TARGET_FILES.values() for n in files]:
        assert not (project / name).exists(), name
    for name in ("Dockerfile", ".dockerignore", "api", "deploy", ".github", "includes"):
        assert not (project / name).exists(), name
    readme = (project / "README.md").read_text()
    assert not any(section in readme for section in README_SECTIONS.values())
    assert "## Deploy" in readme, "the generic deploy notes stay"
    assert '"api"' not in (project / "pyproject.toml").read_text()
    assert not (project / "includes").exists()


@pytest.mark.parametrize(
    ("fix", "expected"),
    [
        ("kv_seed", ALL_TARGETS),
        ("client_direct", ALL_TARGETS),
        ("stateful", ["docker", "render", "fly", "github"]),
    ],
)
def test_the_default_is_every_target_that_fits_the_fix(
    tmp_path: Path, fix: str, expected: list[str]
) -> None:
    project = generate(tmp_path / "app", fix=fix)
    assert answers_of(project)["deploy_targets"] == expected
    assert (project / "vercel.json").exists() is ("vercel" in expected)
    assert (project / "compose.yaml").is_file()


def test_vercel_alone_cannot_host_the_stateful_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Vercel can run the API but not the realtime service"):
        generate(tmp_path / "app", fix="stateful", deploy_targets=["vercel", "github"])
    project = generate(tmp_path / "ok", fix="stateful", deploy_targets=["vercel", "render"])
    assert "render.yaml" in (project / "api" / "index.py").read_text()


def test_the_vercel_entry_serves_the_app_in_production(tmp_path: Path, redis_url: str) -> None:
    """What Vercel's runtime does: import api/index.py and serve its `app`, as production."""
    project = generate(tmp_path / "app", deploy_targets=["vercel"])
    uv(project, "sync", "--quiet")
    key = uv(project, "run", "--quiet", "python", "-m", "session_app", "keygen").strip()
    script = (
        "import os\n"
        "from fastapi.testclient import TestClient\n"
        "from api.index import app\n"
        "with TestClient(app) as client:\n"
        "    print(os.environ['APP_ENV'], client.get('/healthz').json()['store'],"
        " client.post('/api/sessions').status_code)\n"
    )
    output = uv(
        project, "run", "--quiet", "python", "-c", script, REDIS_URL=redis_url, SESSION_KEYS=key
    )
    assert "production ok 201" in output.splitlines()
    # Production, so no store means no start, and the reason.
    environment = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "REDIS_URL"}}
    refused = subprocess.run(
        ["uv", "run", "--quiet", "python", "-c", "import api.index"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "no session store configured: set REDIS_URL" in refused.stderr


# -- docker compose config ----------------------------------------------------------------------


def compose_command() -> list[str]:
    """`docker compose` where the plugin is installed, else the standalone `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("checking compose.yaml needs `docker compose` or `docker-compose` (tasks.py test)")


def test_docker_compose_accepts_the_compose_file(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SESSION_KEYS", "OPENAI_API_KEY"}}
    command = [*compose_command(), "config", "--quiet"]
    keys = {"SESSION_KEYS": "placeholder", "OPENAI_API_KEY": "placeholder"}
    result = subprocess.run(
        command, cwd=project, env=env | keys, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # Without the key, compose refuses to start and says what to set.
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "set SESSION_KEYS" in result.stderr


@pytest.mark.parametrize("fix", ["kv_seed", "stateful", "client_direct"])
def test_the_production_install_has_what_deployments_run(
    tmp_path: Path, redis_url: str, fix: str
) -> None:
    """An image or a function installs the dependencies alone, never the development group:
    `keygen` and every entry point the deploy files run must import there."""
    project = generate(tmp_path / "app", fix=fix)
    uv(project, "sync", "--quiet", "--no-dev")
    python = ("run", "--quiet", "--no-dev", "python")
    key = uv(project, *python, "-m", "session_app", "keygen").strip()
    assert len(key) == 43, key
    entries = ["session_app.main", "session_app.realtime" if fix == "stateful" else "api.index"]
    script = "; ".join(f"import {entry}" for entry in entries) + "; print('imported')"
    production = {"APP_ENV": "production", "SESSION_KEYS": key, "REDIS_URL": redis_url}
    production["REALTIME_PUBLIC_URL"] = "ws://127.0.0.1:8101"
    production["ALLOW_ANONYMOUS_SESSIONS"] = "true"
    assert "imported" in uv(project, *python, "-c", script, **production).splitlines()
