"""The `sessionfix` command: `new` generates a project, `scan` checks an existing one's code,
`probe` a running deployment's behaviour.

Exit status: 0 success (for `scan`: no findings; for `probe`: every flow passed), 1 findings, a
failed step or failed follow-ups, 2 usage error, 130 stopped with Ctrl+C.
"""

import argparse
import sys
from importlib.metadata import version
from pathlib import Path

from . import probe
from .new import StepError, UsageError, add_arguments, run_new
from .scan import scan
from .scan.javascript import EXTENSIONS
from .scan.report import FORMATS, render


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="sessionfix",
        description="Sessions that survive serverless and multi-instance deployment.",
    )
    main_parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('sessionfix')}"
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new_parser = commands.add_parser(
        "new",
        help="choose a fix with a short guide and generate a project",
        description="Ask what a session is in your app, recommend a fix, and generate a "
        "project with Copier (which asks the remaining questions).",
    )
    add_arguments(new_parser)
    scan_parser = commands.add_parser(
        "scan",
        help="find session state that breaks on several instances",
        description="Find, in Python and JavaScript/TypeScript code, session state kept in one "
        "process's memory. Exit status: 0 no findings, 1 findings, 2 usage error.",
    )
    scan_parser.add_argument("path", type=Path, help="a directory or a file")
    scan_parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    probe_parser = commands.add_parser(
        "probe",
        help="check that a running deployment keeps sessions across instances",
        description="Send create -> stream -> send flows to a running deployment, each request "
        "on a new connection so a load balancer spreads them, and report per step how many "
        "follow-ups failed, with what status, and which instances answered. This sends real "
        "traffic to URL. Exit status: 0 every flow passed, 1 follow-ups failed (or no session "
        "could be created), 2 usage error (such as an invalid flow file).",
    )
    probe.add_arguments(probe_parser)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "scan":
            if not args.path.exists():
                raise UsageError(f"{args.path} does not exist")
            if args.path.is_file() and not args.path.name.endswith((".py", *EXTENSIONS)):
                raise UsageError(f"{args.path} is not a Python, JavaScript or TypeScript file")
            result = scan(args.path)
            print(render(result, args.format))
            return 1 if result.findings else 0
        if args.command == "probe":
            return probe.run_probe(args)
        return run_new(args)
    except (UsageError, probe.ProbeUsageError) as error:
        print(f"sessionfix {args.command}: error: {error}", file=sys.stderr)
        return 2
    except StepError as error:
        print(f"sessionfix {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130
