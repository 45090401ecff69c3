"""Flows: the requests `sessionfix probe` sends, as a YAML file describes them.

A flow creates a session, captures values from the create response (JSON pointers), and sends
follow-up requests whose path, headers and body use them as `{name}` placeholders. The built-in
flows (`flows/*.yaml`) describe the generated projects' contract in the same format.
"""

import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

BUILTIN_DIRECTORY = Path(__file__).parent / "flows"
BUILTIN_FLOWS = ("sessions", "tokens")  # they share one create request
PLACEHOLDER_NAME = string.ascii_letters + string.digits + "_"


class FlowError(Exception):
    """A flow file that cannot be used; the message says where and why."""


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, int) else value


Statuses = Annotated[list[Annotated[int, Field(ge=100, le=599)]], BeforeValidator(_one_or_many)]


class Request(BaseModel):
    """One HTTP request of a flow, and what counts as its success."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(pattern="^/", description="appended to URL; may hold {placeholders}")
    headers: dict[str, str] = {}
    body: Any = None  # sent as JSON unless None
    # None: any 2xx status.
    expect: Statuses | None = None
    # The response body must hold these values at these JSON pointers.
    expect_json: dict[str, Any] = {}
    # A stream (server-sent events, chunks): opened, then held open while the later steps run.
    stream: bool = False
    # How long a stream may stay silent and still pass; one that ends before sending anything
    # within this time fails.
    read_seconds: float = Field(default=1.0, gt=0, le=30)

    @model_validator(mode="before")
    @classmethod
    def upper_case_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": data["method"].upper()}
        return data

    def succeeded(self, status: int) -> bool:
        return status in self.expect if self.expect else 200 <= status < 300

    def placeholders(self) -> set[str]:
        texts = [self.path, *self.headers.values(), *_strings(self.body)]
        texts += _strings(list(self.expect_json.values()))
        return {name for text in texts for name in _names(text)}


class Flow(BaseModel):
    """Create a session, then the follow-up steps, each on a fresh connection."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    create: Request
    # Placeholder name -> JSON pointer into the create response's body ("session_id" alone
    # means "/session_id").
    capture: dict[str, str] = {"session_id": "/session_id"}
    # Response headers whose latest value is sent back with every later request of the flow.
    send_back_headers: list[str] = []
    # The response header that names the instance that answered, when the app sends one.
    instance_header: str | None = "X-Instance"
    steps: list[Request] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def name_the_create_request(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("create"), dict):
            data = {**data, "create": {"name": "create", **data["create"]}}
        return data

    @model_validator(mode="after")
    def check_names(self) -> "Flow":
        for name, pointer in list(self.capture.items()):
            if not name or set(name) - set(PLACEHOLDER_NAME):
                raise ValueError(f"capture: {name!r} is not a usable placeholder name")
            self.capture[name] = pointer if pointer.startswith("/") else f"/{pointer}"
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names) or "create" in names:
            raise ValueError("steps: each step needs its own name (and none is 'create')")
        if self.create.placeholders():
            raise ValueError("create: the create request cannot use captured values")
        for step in self.steps:
            unknown = step.placeholders() - set(self.capture)
            if unknown:
                raise ValueError(
                    f"step {step.name!r} uses {', '.join(sorted(unknown))}, which capture does "
                    f"not define (captured: {', '.join(self.capture) or 'nothing'})"
                )
        return self


def load_flow(path: Path) -> Flow:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise FlowError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise FlowError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise FlowError(f"{path}: a flow is a mapping with `create` and `steps`")
    try:
        return Flow.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(_describe(problem) for problem in error.errors())
        raise FlowError(f"{path}: {problems}") from None


def builtin(name: str) -> Flow:
    return load_flow(BUILTIN_DIRECTORY / f"{name}.yaml")


def builtin_for(created: object) -> Flow:
    """The built-in flow that fits a generated project's create response: client-direct
    projects return a refresh token and keep no session to read; the others return the session."""
    has_refresh_token = isinstance(resolve(created, "/refresh/token"), str)
    return builtin("tokens" if has_refresh_token else "sessions")


class Missing:
    """What `resolve` returns when a JSON pointer leads nowhere."""


MISSING = Missing()


def resolve(document: object, pointer: str) -> object:
    """RFC 6901: the value at `pointer` in `document`, or MISSING."""
    value = document
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def fill(template: Any, values: dict[str, str]) -> Any:
    """`template` with `{name}` placeholders replaced, in strings at any depth."""
    if isinstance(template, str):
        return template.format_map(values)
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _names(text: str) -> set[str]:
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as error:
        raise ValueError(f"{text!r}: {error} (write a literal brace as {{{{ or }}}})") from None
    for field in fields:
        # Only plain names: `{a.b}` or `{a[0]}` would reach into Python objects.
        if not field or set(field) - set(PLACEHOLDER_NAME):
            raise ValueError(f"{text!r}: {{{field}}} is not a plain placeholder name")
    return set(fields)


def _describe(problem: Any) -> str:
    where = ".".join(str(part) for part in problem["loc"])
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
