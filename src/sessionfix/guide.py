"""The decision guide: from what a person knows about their app to a fix.

The questions avoid the fixes' own vocabulary: is the session a live connection or data, can
the upstream take connections straight from a browser, does the session hold personal data, and
where will the app run. The answers also prefill the chosen fix's own Copier questions where they
say something (Vercel -> the Upstash REST store; personal data -> encrypted seeds; the host ->
its deploy files), whichever fix the person ends up with.
"""

from dataclasses import dataclass, field
from typing import Any

FIX_LABELS = {
    "kv_seed": "KV + seed",
    "client_direct": "client-direct",
    "stateful": "stateful server",
}
HOSTS = {
    "vercel": "Vercel (serverless functions)",
    "render": "Render",
    "fly": "Fly.io",
    "containers": "Containers (Docker, Kubernetes, Cloud Run) or my own servers",
    "other": "Not decided yet",
}
# The deploy files (`deploy_targets`) each host needs; the CI workflow comes with every one.
HOST_TARGETS = {
    "vercel": ["vercel", "github"],
    "render": ["render", "github"],
    "fly": ["fly", "github"],
    "containers": ["docker", "github"],
}
# A Vercel function cannot hold the stateful fix's realtime connections: its service gets the
# files of every host that can.
STATEFUL_ON_VERCEL = ["vercel", "docker", "render", "fly", "github"]


@dataclass(frozen=True)
class Situation:
    live: bool
    browser_direct: bool | None = None  # asked only for live sessions; None: not sure
    personal_data: bool | None = None
    host: str | None = None


@dataclass(frozen=True)
class Recommendation:
    fix: str
    why: str
    answers: dict[str, Any] = field(default_factory=dict)  # Copier answers for that fix


def deploy_targets(fix: str, host: str | None) -> list[str] | None:
    """The deploy files for where the app will run; None: undecided, the template's default."""
    if host not in HOST_TARGETS:
        return None
    if fix == "stateful" and host == "vercel":
        return list(STATEFUL_ON_VERCEL)
    return list(HOST_TARGETS[host])


def host_caveat(fix: str, host: str | None) -> str | None:
    """What the person must know when the chosen host cannot run all of the chosen fix."""
    if fix == "stateful" and host == "vercel":
        return (
            "Vercel can run the API but not the realtime service, whose connections outlive a "
            "function call: the project also gets Docker, Render and Fly.io files to run that "
            "service elsewhere."
        )
    return None


def prefilled(
    fix: str, situation: Situation, offered_targets: list[str] | None = None
) -> dict[str, Any]:
    """The Copier answers of `fix` that the guide's answers decide. `offered_targets` are the
    deploy targets the template offers (None: it has no such question)."""
    answers: dict[str, Any] = {}
    if fix == "kv_seed":
        if situation.host is not None and situation.host != "other":
            answers["store_backend"] = "upstash" if situation.host == "vercel" else "redis"
        if situation.personal_data:
            answers["seed_encryption"] = True
    targets = deploy_targets(fix, situation.host)
    if targets is not None and offered_targets is not None:
        answers["deploy_targets"] = [target for target in targets if target in offered_targets]
    return answers


def recommend(situation: Situation) -> Recommendation:
    if not situation.live:
        answers = prefilled("kv_seed", situation)
        second = "A signed seed in every response lets a cold instance recover a session"
        if situation.personal_data:
            second += ", encrypted because sessions hold personal data"
        return Recommendation(
            "kv_seed",
            "Your session is data, so a shared Redis/KV store that every instance reads can hold "
            f"it. {second}, so any instance can serve any request, serverless included.",
            answers,
        )
    if situation.browser_direct:
        return Recommendation(
            "client_direct",
            "Your upstream accepts connections from the browser, so the browser can hold the live "
            "session itself. Your server stays stateless and only mints short-lived, "
            "session-scoped tokens, which works on any host, serverless included.",
        )
    unsure = " (you were not sure, so this is the safe choice)" * (situation.browser_direct is None)
    where = (
        "; Vercel functions cannot hold it, so run that service on Render, Fly or a container"
        if situation.host == "vercel"
        else ""
    )
    return Recommendation(
        "stateful",
        "A live connection cannot be stored in Redis or KV, and the browser cannot open it "
        f"itself{unsure}, so one long-lived process must own it. The template runs a realtime "
        f"service that routes every request of a session to its owner{where}.",
    )


def ask_situation(known: dict[str, Any]) -> Situation:
    """Ask what `known` (from the command line) does not already say."""
    # Imported only to ask: `sessionfix --help` and the other commands never load a prompt.
    import questionary

    live = known.get("live")
    if live is None:
        live = (
            questionary.select(
                "What is a session in your app?",
                choices=[
                    questionary.Choice(
                        "Data: chat turns, form answers, a cart, agent state", "data"
                    ),
                    questionary.Choice(
                        "A live connection: a WebSocket, WebRTC, or a streaming SDK session to an "
                        "upstream service",
                        "live",
                    ),
                ],
            ).unsafe_ask()
            == "live"
        )
    browser = known.get("browser_direct")
    if live and "browser_direct" not in known:
        browser = questionary.select(
            "Can that upstream accept connections straight from a browser, with short-lived "
            "credentials?",
            choices=[
                questionary.Choice(
                    "Yes (for example OpenAI Realtime client secrets, or a service that takes "
                    "tokens)",
                    "yes",
                ),
                questionary.Choice(
                    "No: it needs a server-side secret or a server-only protocol", "no"
                ),
                # A value of None would make questionary return the title, which is truthy.
                questionary.Choice("Not sure", "unsure"),
            ],
        ).unsafe_ask()
        browser = {"yes": True, "no": False}.get(browser)
    personal = known.get("personal_data")
    if personal is None:
        personal = questionary.confirm(
            "Does a session hold personal data (names, contact details, health or money matters)?",
            default=True,
        ).unsafe_ask()
    host = known.get("host")
    if host is None:
        host = questionary.select(
            "Where will it run?",
            choices=[questionary.Choice(label, key) for key, label in HOSTS.items()],
        ).unsafe_ask()
    return Situation(bool(live), browser, personal, host)


def choose_fix(recommendation: Recommendation, offered: list[str]) -> str:
    """Let the person accept the recommendation or pick another fix this template offers."""
    import questionary

    label = FIX_LABELS.get(recommendation.fix, recommendation.fix)
    print(f"\nRecommended: {label} ({recommendation.fix}).\n{recommendation.why}\n")
    choices = []
    if recommendation.fix in offered:
        choices.append(questionary.Choice(f"Use {label} (recommended)", recommendation.fix))
        question = "Use the recommended fix?"
    else:
        available = ", ".join(offered)
        print(
            f"The recommended fix, {recommendation.fix}, is not offered by this template "
            f"version, which offers: {available}. Pick one of those, or stop here (Ctrl+C) and "
            "use a template version that has it (--vcs-ref)."
        )
        question = "Which offered fix should the project use?"
    choices += [
        questionary.Choice(f"{FIX_LABELS.get(fix, fix)} ({fix})", fix)
        for fix in offered
        if fix != recommendation.fix
    ]
    fix: str = questionary.select(question, choices=choices).unsafe_ask()
    return fix
