"""The unix-socket decision server that the OCI hook asks on every container start.

Protocol (see `hook`): the hook sends the OCI state bytes and shuts its write side; the server
reads `config.json` and the runtime metadata itself, decides through the agent, and answers
`allow` or `deny` on the first line, then the text for the runtime's stderr. A state that cannot
be read is answered by the group's fail mode. The socket is made mode 0600: only root may ask.

A start that is let through is handed to the agent's runtime monitor before the answer goes
back: the runtime starts the container's process only after the hook, so its first exec is
already decided by the monitor. Its environment (TIDEGATE_PROFILE) and volume mounts go to the
profiler with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import threading
from pathlib import Path

from tidegate.enforcer.agent import Agent, Outcome
from tidegate.enforcer.errors import EnforcerError
from tidegate.enforcer.hook import MAX_STATE
from tidegate.enforcer.oci import read_container, request_from_oci, watched_from_oci
from tidegate.enforcer.profiler import facts_from_config

__all__ = ["DecisionServer", "answer_text", "decide_oci_state"]

SOURCE = "oci-hook"


def decide_oci_state(agent: Agent, raw: bytes) -> Outcome:
    """The outcome for one OCI state as the hook sent it (hostile: fail mode on bad input)."""
    try:
        state = json.loads(raw)
        if not isinstance(state, dict):
            raise EnforcerError("the OCI state is not a JSON object")
        config, metadata = read_container(state)
    except (ValueError, EnforcerError) as exc:
        return agent.undecidable(f"bad container state: {exc}")
    request = request_from_oci(state, config, metadata, host=agent.hostname, enforcer_group="")
    outcome = agent.decide(request, source=SOURCE)
    if outcome.allowed and agent.monitor is not None:
        try:
            agent.watch(watched_from_oci(state, config, request), facts_from_config(config))
        except EnforcerError as exc:
            agent.say(f"container {request.container_id[:12]} not watched: {exc}")
    return outcome


def answer_text(outcome: Outcome) -> bytes:
    lines = ["allow" if outcome.allowed else "deny"]
    lines += list(outcome.warnings)
    if not outcome.allowed or outcome.decision is None:
        lines.append(outcome.message)
    return ("\n".join(lines) + "\n").encode()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.request.settimeout(10)
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := self.request.recv(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_STATE:
                    break
        except OSError:
            return  # the hook gave up (timeout): it applies the fail mode itself
        if size > MAX_STATE:
            outcome = self.server.agent.undecidable("container state larger than 1 MiB")
        else:
            outcome = decide_oci_state(self.server.agent, b"".join(chunks))
        with contextlib.suppress(OSError):  # the hook gave up waiting: nothing to tell
            self.request.sendall(answer_text(outcome))


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    agent: Agent


class DecisionServer:
    """Serve decisions on `path` in a background thread until `close()`."""

    def __init__(self, agent: Agent, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_socket():
            path.unlink()  # left by a previous enforcer that did not stop cleanly
        old = os.umask(0o177)
        try:
            self._server = _Server(str(path), _Handler)
        except OSError as exc:
            raise EnforcerError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
        finally:
            os.umask(old)
        self._server.agent = agent
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="enforcer-socket", daemon=True
        )

    def start(self) -> DecisionServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
