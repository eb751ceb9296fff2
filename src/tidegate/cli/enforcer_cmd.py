"""`tidegate enforcer`: run the host's enforcer agent; `install-hook` writes the OCI hook JSON;
`hook` is the hook program itself. The installed hook is the compiled forwarder
(`enforcer/hook.c`, built by `install-hook` when a C compiler is there) or the same protocol as a
standalone Python file (`python -I -S .../enforcer/hook.py`): its start-up time is every
container's.

    tidegate enforcer --console URL --group-token T [--state-dir DIR] [--socket PATH]
                      [--admission-listen HOST:PORT --tls-cert PEM --tls-key PEM]
                      [--no-monitor] [--podman CMD] [--exec-budget SECONDS]
    tidegate enforcer install-hook [--hooks-dir DIR] [--socket PATH] [--stage createRuntime]
                                   [--compiled auto|yes|no]
    tidegate enforcer hook [--socket PATH] [--state-dir DIR]   (state JSON on stdin)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from tidegate.cli.exit_codes import ExitCode
from tidegate.client.base import ConsoleClient
from tidegate.core.errors import UsageError
from tidegate.enforcer import hook as hook_program
from tidegate.enforcer.hookbuild import hook_command
from tidegate.enforcer.state import DEFAULT_STATE_DIR, StateDir, atomic_write

HOOK_FILE = "tidegate-enforcer.json"
DEFAULT_HOOKS_DIR = Path("/usr/share/containers/oci/hooks.d")


def register(commands: Any) -> None:
    p = commands.add_parser(
        "enforcer", help="run the host's enforcer (OCI hook, admission webhook)"
    )
    p.add_argument(
        "--console",
        default=os.environ.get("TIDEGATE_CONSOLE"),
        help="console URL (or $TIDEGATE_CONSOLE)",
    )
    p.add_argument(
        "--group-token",
        default=os.environ.get("TIDEGATE_GROUP_TOKEN"),
        help="enforcer group token (or $TIDEGATE_GROUP_TOKEN)",
    )
    _state_options(p)
    p.add_argument(
        "--hostname", default=socket.gethostname(), help="host name reported (default: this host's)"
    )
    p.add_argument(
        "--poll-interval", type=float, default=5.0, help="seconds between console syncs (default 5)"
    )
    p.add_argument(
        "--admission-listen",
        metavar="HOST:PORT",
        help="serve the Kubernetes admission webhook (TLS) here",
    )
    p.add_argument("--tls-cert", type=Path, help="PEM certificate of the admission webhook")
    p.add_argument("--tls-key", type=Path, help="PEM key of the admission webhook")
    p.add_argument("--ca-file", help="CA bundle to verify the console's TLS certificate")
    p.add_argument(
        "--no-monitor",
        dest="monitor",
        action="store_false",
        help="do not run the runtime monitor (fanotify exec control inside containers)",
    )
    p.add_argument(
        "--podman",
        default="podman",
        metavar="CMD",
        help="podman command and global options to list the containers already running "
        "(default 'podman'; '' lists none)",
    )
    p.add_argument(
        "--exec-budget",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="time to decide one exec before the group's fail mode answers (default 0.25)",
    )
    p.set_defaults(run=run_enforcer)
    sub = p.add_subparsers(dest="enforcer_command", metavar="SUBCOMMAND")
    install = sub.add_parser("install-hook", help="write the OCI hook JSON for podman / CRI-O")
    install.add_argument(
        "--hooks-dir", type=Path, default=DEFAULT_HOOKS_DIR, help=f"default {DEFAULT_HOOKS_DIR}"
    )
    install.add_argument("--stage", choices=("createRuntime", "prestart"), default="createRuntime")
    install.add_argument(
        "--compiled",
        choices=tuple(_COMPILED),
        default="auto",
        help="the compiled hook (a few ms per start) or the Python one (~15-20 ms): "
        "auto (default) builds it with the C compiler when there is one",
    )
    _state_options(install)
    install.set_defaults(run=run_install_hook)
    hook = sub.add_parser("hook", help="the OCI hook program (container state JSON on stdin)")
    _state_options(hook)
    hook.set_defaults(run=run_hook)


_COMPILED: dict[str, bool | None] = {"auto": None, "yes": True, "no": False}


def _state_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=f"default {DEFAULT_STATE_DIR}"
    )
    p.add_argument("--socket", type=Path, help="decision socket (default STATE_DIR/enforcer.sock)")


def _socket_path(args: argparse.Namespace) -> Path:
    return Path(args.socket) if args.socket else StateDir(args.state_dir).socket


def hook_document(*, argv: list[str], stage: str) -> dict[str, Any]:
    """The OCI hook JSON (hooks.d format 1.0.0) that runs the hook program `argv`."""
    return {
        "version": "1.0.0",
        "hook": {"path": argv[0], "args": argv, "timeout": 10},
        "when": {"always": True},
        "stages": [stage],
    }


def run_install_hook(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    state_dir: Path = args.state_dir
    bin_dir = state_dir / "bin"
    try:
        # root-only: the runtime runs the compiled hook as root (hookbuild refuses a looser dir)
        bin_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--state-dir {state_dir}: {exc.strerror}") from exc
    argv = hook_command(
        socket_path=_socket_path(args),
        state_dir=state_dir,
        compiled=_COMPILED[args.compiled],
        dest_dir=bin_dir,
    )
    doc = hook_document(argv=argv, stage=args.stage)
    try:
        args.hooks_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--hooks-dir {args.hooks_dir}: {exc.strerror}") from exc
    path = args.hooks_dir / HOOK_FILE
    atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o644)
    out.write(f"{path}\n")
    return ExitCode.OK


def run_hook(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    argv = ["--socket", str(_socket_path(args)), "--state-dir", str(args.state_dir)]
    return hook_program.run(argv, sys.stdin.buffer)


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--admission-listen {value!r}: expected HOST:PORT")
    return host, int(port)


def run_enforcer(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from tidegate.enforcer.admission import AdmissionServer
    from tidegate.enforcer.agent import Agent
    from tidegate.enforcer.server import DecisionServer

    if args.enforcer_command is None and (not args.console or not args.group_token):
        raise UsageError("tidegate enforcer: --console and --group-token are required")
    admission = _listen(args.admission_listen) if args.admission_listen else None
    if admission and not (args.tls_cert and args.tls_key):
        raise UsageError(
            "--admission-listen needs --tls-cert and --tls-key (the API server speaks TLS only)"
        )
    if not 0 < args.exec_budget <= 30:
        raise UsageError(f"--exec-budget {args.exec_budget}: expected 0 < SECONDS <= 30")
    try:
        podman = shlex.split(args.podman)
    except ValueError as exc:
        raise UsageError(f"--podman {args.podman!r}: {exc}") from exc
    client = ConsoleClient(args.console, args.group_token, timeout=10, verify=args.ca_file or True)
    agent = Agent(
        client,
        StateDir(args.state_dir),
        hostname=args.hostname,
        poll_interval=args.poll_interval,
        log=err,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    servers: list[Any] = []
    try:
        agent.start()
        if args.monitor:
            agent.start_monitor(podman=podman or None, budget=args.exec_budget)
        servers.append(DecisionServer(agent, _socket_path(args)).start())
        if admission:
            servers.append(
                AdmissionServer(agent, *admission, cert=args.tls_cert, key=args.tls_key).start()
            )
        err.write(f"tidegate enforcer: deciding on {_socket_path(args)}\n")
        err.flush()
        stop.wait()
    finally:
        for server in servers:
            server.close()
        agent.stop()
        client.close()
    return ExitCode.OK
