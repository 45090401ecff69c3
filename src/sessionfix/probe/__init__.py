"""`sessionfix probe URL`: the behaviour check. It runs create -> stream -> send flows against a
running deployment, each request on a new connection, and reports what failed and where.

The HTTP client and the flow models are imported when the command runs, not to build `--help`.
"""

import argparse
import asyncio
import sys
from pathlib import Path

FORMATS = ("text", "json")
MAX_FLOWS = 500


class ProbeUsageError(Exception):
    """Bad input: the command exits with status 2 and this message."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the deployment's base URL, e.g. https://my-app.example.com")
    parser.add_argument(
        "--flow",
        type=Path,
        metavar="FILE",
        help="a YAML flow file describing your app's endpoints (default: the generated "
        "projects' contract, detected from the create response)",
    )
    parser.add_argument(
        "--flows",
        type=int,
        default=20,
        metavar="N",
        help=f"how many flows to run, one after another (default 20, at most {MAX_FLOWS})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long one request may take (default 10)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="no new flow or step starts after this many seconds (default 120)",
    )
    parser.add_argument(
        "--instance-header",
        metavar="NAME",
        help="the response header that names the instance that answered (default: the flow's, "
        "X-Instance for the generated projects)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")


def run_probe(args: argparse.Namespace) -> int:
    import httpx

    from .flow import BUILTIN_FLOWS, FlowError, builtin, builtin_for, load_flow
    from .report import render
    from .run import probe

    url = httpx.URL(args.url)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ProbeUsageError(f"{args.url!r} is not an http:// or https:// URL")
    if url.query or url.fragment:
        raise ProbeUsageError(f"{args.url!r}: give the base URL, without ?query or #fragment")
    if not 1 <= args.flows <= MAX_FLOWS:
        raise ProbeUsageError(f"--flows must be between 1 and {MAX_FLOWS}")
    if args.timeout <= 0 or args.deadline <= 0:
        raise ProbeUsageError("--timeout and --deadline must be positive")
    try:
        flow = load_flow(args.flow) if args.flow else None
    except FlowError as error:
        raise ProbeUsageError(str(error)) from None
    create = flow.create if flow else builtin("sessions").create
    header = args.instance_header or (flow.instance_header if flow else "X-Instance")
    longest = max(len(builtin(name).steps) for name in BUILTIN_FLOWS)
    requests = len(flow.steps) + 1 if flow else f"up to {longest + 1}"
    print(
        f"sessionfix probe: sending real traffic to {args.url}: {args.flows} flows of "
        f"{requests} requests, each flow creating a session.",
        file=sys.stderr,
    )
    report = asyncio.run(
        probe(
            str(url),
            create,
            (lambda _: flow) if flow else builtin_for,
            flows=args.flows,
            timeout=args.timeout,
            deadline=args.deadline,
            instance_header=header,
        )
    )
    print(render(report, args.format))
    return report.exit_status
