"""`sessionfix new`: the decision guide, then Copier with the guide's answers prefilled.

Copier, the prompts and the setup scripts are imported where they are used, so that building the
command line (`sessionfix --help`, `probe`, `scan`) does not load them.
"""

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from .guide import (
    FIX_LABELS,
    HOSTS,
    Situation,
    ask_situation,
    choose_fix,
    host_caveat,
    prefilled,
    recommend,
)
from .template import Source, TemplateError, default_source, offered_fixes, read_config


class UsageError(Exception):
    """Bad or missing input: the command exits with status 2 and this message."""


class StepError(Exception):
    """A step failed (Copier, the setup scripts): the command exits with status 1 and this
    message."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", nargs="?", type=Path, help="the new project's directory")
    parser.add_argument(
        "--fix", help="the fix to use, skipping the guide (one the template offers)"
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="accept the default of every Copier question not answered by --fix or --data",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="answer one Copier question (repeatable), e.g. --data project_name='Voice Bot'",
    )
    parser.add_argument(
        "--template",
        help="the template: a path or git URL (default: the checkout this package runs from, "
        "else $SESSIONFIX_TEMPLATE, else the project's public repository)",
    )
    parser.add_argument(
        "--vcs-ref",
        help="the template's git tag, branch or commit (default: HEAD for a local checkout, "
        "else the newest release)",
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help="afterwards create the venv, install, and run the generated test suite once",
    )
    guide = parser.add_argument_group("the guide's answers (asked when not given)")
    guide.add_argument("--session", choices=["data", "live"], help="what a session is")
    guide.add_argument(
        "--browser-direct",
        choices=["yes", "no"],
        help="for live sessions: can the upstream take connections straight from a browser",
    )
    guide.add_argument("--personal-data", choices=["yes", "no"], help="sessions hold personal data")
    guide.add_argument("--host", choices=list(HOSTS), help="where the app will run")


def parse_data(pairs: list[str]) -> dict[str, str]:
    data = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--data takes KEY=VALUE, not {pair!r}")
        data[key.strip()] = value
    return data


def known_situation(args: argparse.Namespace) -> dict[str, Any]:
    known: dict[str, Any] = {}
    if args.session:
        known["live"] = args.session == "live"
    if args.browser_direct:
        known["browser_direct"] = args.browser_direct == "yes"
        known.setdefault("live", True)  # only a live session has an upstream to connect to
    if args.personal_data:
        known["personal_data"] = args.personal_data == "yes"
    if args.host:
        known["host"] = args.host
    return known


def offered_targets(config: dict[str, Any]) -> list[str] | None:
    """The deploy targets the template offers; None when it does not ask for them."""
    choices = config.get("deploy_targets", {}).get("choices")
    return [str(value) for value in choices.values()] if isinstance(choices, dict) else None


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def run_new(args: argparse.Namespace) -> int:
    tty = interactive()
    if not tty and not args.defaults:
        raise UsageError(
            "there is no terminal to ask questions on: pass --defaults to accept the default of "
            "every question you do not answer with --fix or --data KEY=VALUE"
        )
    data = parse_data(args.data)
    fix = args.fix or data.get("fix")
    dest: Path | None = args.dest
    if dest is None:
        if not tty:
            raise UsageError("name the new project's directory: sessionfix new DEST")
        import questionary

        dest = Path(
            questionary.text("Where should the project go?", default="session-app").unsafe_ask()
        )
    dest = dest.expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} exists and is not an empty directory; pick another")

    source = default_source(args.template, args.vcs_ref)
    try:
        config = read_config(source)
        offered = offered_fixes(config)
    except (TemplateError, OSError) as error:
        raise UsageError(f"cannot read the template at {source.location}: {error}") from None
    known = known_situation(args)
    if fix is None and (tty or "live" in known):
        situation = ask_situation(known) if tty else Situation(**known)
        recommendation = recommend(situation)
        if tty:
            fix = choose_fix(recommendation, offered)
        elif recommendation.fix in offered:
            fix = recommendation.fix
            print(f"Fix: {fix}. {recommendation.why}", file=sys.stderr)
        else:
            raise UsageError(
                f"the guide recommends {recommendation.fix}, which this template version does "
                f"not offer; available fixes: {', '.join(offered)} (choose one with --fix)"
            )
    else:
        # --fix, or no terminal and no --session: the guide is not run, but what it was told
        # still decides the chosen (or default) fix's own questions.
        situation = Situation(
            bool(known.get("live")), None, known.get("personal_data"), known.get("host")
        )
    if fix is not None and fix not in offered:
        raise UsageError(
            f"this template version does not offer the fix {fix!r}; available fixes: "
            f"{', '.join(offered)}"
        )
    chosen = fix or str(config.get("fix", {}).get("default", ""))
    answers: dict[str, Any] = prefilled(chosen, situation, offered_targets(config))
    if fix is not None:
        answers["fix"] = fix
    answers.update(data)  # --data has the last word
    caveat = host_caveat(chosen, situation.host)
    if caveat and "deploy_targets" not in data:
        print(caveat, file=sys.stderr)
    generate(source, dest, answers, defaults=args.defaults)
    if not args.setup:
        return 0
    from rich.console import Console

    from .postcopy import SetupError, run_setup

    console = Console(stderr=True)
    console.print(f"\nSetting up {dest}")
    try:
        if not run_setup(dest, console):
            return 1
    except SetupError as error:
        raise StepError(f"{dest} was generated, but its setup cannot run: {error}") from None
    package = yaml.safe_load((dest / ".copier-answers.yml").read_text())["package_name"]
    console.print(
        f"\nReady. Next:\n  cd {dest}\n  uv run python -m {package} cluster   "
        "# the local multi-instance cluster\n  uv run pytest                        "
        "# the multi-instance test suite",
        highlight=False,
        soft_wrap=True,  # a long path stays one line that a person can copy
    )
    return 0


def generate(source: Source, dest: Path, answers: dict[str, Any], defaults: bool) -> None:
    label = FIX_LABELS.get(str(answers.get("fix")), "the template's default fix")
    print(f"Generating {dest} with {label} from {source.location}", file=sys.stderr)
    import copier
    import copier.errors

    with warnings.catch_warnings():
        # A local checkout with uncommitted changes is copied as it is; the warning is noise.
        warnings.filterwarnings("ignore", message=".*[Dd]irty.*")
        try:
            copier.run_copy(
                source.location,
                dest,
                data=answers,
                defaults=defaults,
                vcs_ref=source.vcs_ref,
                unsafe=False,
            )
        except KeyboardInterrupt:
            raise  # Ctrl+C at one of Copier's questions (CopierAnswersInterrupt): "Stopped."
        except ValueError as error:  # an answer a validator refuses, a bad --data value
            raise UsageError(str(error).strip()) from None
        except (copier.errors.CopierError, OSError) as error:
            # Copier's own errors, a git command it runs (plumbum's error is an OSError), a
            # destination it cannot write.
            message = str(error).strip() or type(error).__name__
            raise StepError(f"Copier could not generate {dest}: {message}") from None
