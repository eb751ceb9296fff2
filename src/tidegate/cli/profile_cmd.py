"""`tidegate profile ...`: image profiling from the command line, through a console.

    tidegate profile start IMAGE --name N [--append] [--duration 2h]
    tidegate profile stop NAME|SESSION_ID
    tidegate profile list
    tidegate profile show NAME
    tidegate profile mode NAME audit|enforce
    tidegate profile readiness NAME
    tidegate profile export NAME

Every command talks to the console (`--console URL --token T`, or $TIDEGATE_CONSOLE and
$TIDEGATE_TOKEN); `--duration` makes the automatic profiler, which applies in audit mode only.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import httpx
import yaml

from tidegate.cli.exit_codes import ExitCode
from tidegate.client import profiles as api
from tidegate.client.base import ConsoleClient
from tidegate.core.errors import UsageError
from tidegate.core.policy import Mode

ENV_CONSOLE = "TIDEGATE_CONSOLE"
ENV_TOKEN = "TIDEGATE_TOKEN"
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")
Runner = Callable[[ConsoleClient, argparse.Namespace, TextIO], int]


def parse_duration(text: str) -> int:
    """Seconds of "2h", "90m", "1d12h", "45s" or a plain number of seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise UsageError(f"--duration {text!r}: write it like 2h, 90m, 1d12h or 3600")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total < 1:
        raise UsageError(f"--duration {text!r}: must be at least one second")
    return total


def _client(
    args: argparse.Namespace, env: Mapping[str, str], transport: httpx.BaseTransport | None
) -> ConsoleClient:
    console = args.console or env.get(ENV_CONSOLE)
    token = args.token or env.get(ENV_TOKEN)
    if not console or not token:
        raise UsageError(
            f"profile: give --console URL and --token T (or ${ENV_CONSOLE} and ${ENV_TOKEN})"
        )
    return ConsoleClient(console, token, transport=transport)


def _start(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    duration = None if args.duration is None else parse_duration(args.duration)
    session = api.start_session(
        client, image=args.image, profile=args.name, append=args.append, duration_seconds=duration
    )
    how = "appending to" if session["append"] else "replacing"
    out.write(
        f"profiling {session['repository']} for profile {session['profile']!r} "
        f"({how} it): session {session['id']}\n"
    )
    if session.get("ends_at"):
        out.write(f"the automatic profiler applies it (audit mode) at {session['ends_at']}\n")
    else:
        out.write(f"run the application's tests, then: tidegate profile stop {args.name}\n")
    return ExitCode.OK


def _stop(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    active = api.list_sessions(client, state="active", profile=args.target)
    session_id = active[0]["id"] if active else args.target
    result = api.stop_session(client, session_id=session_id)
    profile = result["profile"]
    out.write(
        f"session {result['session']['id']} stopped: {result['observations']} observation(s); "
        f"profile {profile['name']!r} v{profile['version']} applied in {profile['mode']} mode "
        f"({len(profile['executables'])} executable(s), {len(profile['volumes'])} volume(s), "
        f"{len(profile['listeners'])} listener(s), {len(profile['outbound'])} outbound)\n"
    )
    return ExitCode.OK


def _list(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    rows = [("NAME", "REPOSITORY", "MODE", "VERSION", "EXECUTABLES", "SOURCE")]
    for p in api.list_profiles(client):
        rows.append(
            (
                p["name"],
                p["repository"],
                p["mode"],
                str(p["version"]),
                str(len(p["executables"])),
                p["source"],
            )
        )
    _table(rows, out)
    active = api.list_sessions(client, state="active")
    if active:
        out.write("\nprofiling now:\n")
        sessions = [("SESSION", "PROFILE", "REPOSITORY", "ORIGIN", "STARTED", "ENDS")]
        for s in active:
            sessions.append(
                (
                    s["id"],
                    s["profile"],
                    s["repository"],
                    s["origin"],
                    s["started_at"],
                    s["ends_at"] or "-",
                )
            )
        _table(sessions, out)
    return ExitCode.OK


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def _show(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    yaml.safe_dump(api.get_profile(client, name=args.name), out, sort_keys=False)
    return ExitCode.OK


def _mode(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    profile = api.set_mode(client, name=args.name, mode=Mode(args.mode))
    out.write(f"profile {profile['name']!r} is in {profile['mode']} mode (v{profile['version']})\n")
    return ExitCode.OK


def _readiness(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    ready: dict[str, Any] = api.readiness(client, name=args.name, latest=args.latest)
    out.write(
        f"profile {ready['profile']!r} v{ready['version']} ({ready['mode']}): "
        f"{ready['total']} DETECT event(s) since {ready['since']}\n"
    )
    if ready["executables"]:
        rows = [("EXECUTABLE", "COUNT", "FIRST SEEN", "LAST SEEN")]
        rows += [
            (e["path"], str(e["count"]), e["first_seen"], e["last_seen"])
            for e in ready["executables"]
        ]
        _table(rows, out)
    else:
        out.write("nothing outside the profile ran: ready to enforce\n")
    for session in ready["sessions"]:
        out.write(
            f"learned from session {session['id']} ({session['origin']}, "
            f"{session['started_at']} .. {session['stopped_at']}, "
            f"{len(session['containers'])} container(s))\n"
        )
    return ExitCode.OK


def _export(client: ConsoleClient, args: argparse.Namespace, out: TextIO) -> int:
    document = api.export_profile(client, name=args.name)
    yaml.safe_dump([document], out, sort_keys=False, allow_unicode=True)
    return ExitCode.OK


def _add_console(p: argparse.ArgumentParser) -> None:
    p.add_argument("--console", metavar="URL", help=f"the console (or ${ENV_CONSOLE})")
    p.add_argument("--token", help=f"an API token (or ${ENV_TOKEN})")


def register(commands: Any) -> None:
    profile = commands.add_parser("profile", help="learn, review and enforce image profiles")
    sub = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    p = sub.add_parser("start", help="start profiling an image's repository")
    p.add_argument("image", metavar="IMAGE", help="registry image name (host/repository:tag)")
    p.add_argument("--name", required=True, help="the profile's name")
    p.add_argument("--append", action="store_true", help="add to the existing profile")
    p.add_argument(
        "--duration", help="automatic profiler: learn this long (2h, 90m, 1d), then apply"
    )
    p.set_defaults(profile_run=_start)
    p = sub.add_parser("stop", help="stop profiling: the profile is applied in audit mode")
    p.add_argument("target", metavar="NAME|SESSION", help="the profile (or a session id)")
    p.set_defaults(profile_run=_stop)
    p = sub.add_parser("list", help="profiles and the sessions learning now")
    p.set_defaults(profile_run=_list)
    for action, helptext, runner in (
        ("show", "a profile, as the console holds it", _show),
        ("readiness", "DETECT events against a profile since it was applied", _readiness),
        ("export", "a profile as a `kind: RuntimeProfile` YAML document", _export),
    ):
        p = sub.add_parser(action, help=helptext)
        p.add_argument("name", metavar="NAME")
        p.set_defaults(profile_run=runner)
        if action == "readiness":
            p.add_argument("--latest", type=int, default=10, help="list the N latest events")
    p = sub.add_parser("mode", help="switch a profile to audit or enforce")
    p.add_argument("name", metavar="NAME")
    p.add_argument("mode", choices=[m.value for m in Mode])
    p.set_defaults(profile_run=_mode)
    for action_parser in sub.choices.values():
        _add_console(action_parser)
    profile.set_defaults(run=run)


def run(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    runner: Runner = args.profile_run
    with _client(args, os.environ if env is None else env, transport) as client:
        return runner(client, args, out)
