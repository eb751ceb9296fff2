"""The OCI runtime hook: run by the container runtime (podman, CRI-O, runc) on every start.

The runtime executes it at the `createRuntime` stage with the container state on stdin (id,
pid, bundle, annotations). The hook passes that state, as it came, to the local enforcer over
its unix socket; the enforcer reads `BUNDLE/config.json` and the runtime's metadata itself
(it runs on the same host, as root) and answers. The hook exits 0 to let the start go on, or
1 with the enforcer's message on stderr (naming policy and control) to refuse it. When the
enforcer cannot be asked, the group's fail mode (kept by the agent in STATE_DIR/hook-fail-mode)
decides: `open` lets the container start, `closed` refuses it.

Its start-up time is the hook's latency on every container start, so this file is a standalone
program on the interpreter's built-in modules only (`_socket`, `os`, `sys`: no json, no
enum, no tidegate imports) and runs as `python -I -S .../hook.py`, which skips site-packages.

    hook.py [--socket PATH] [--state-dir DIR] [--timeout SECONDS]

The socket protocol: the hook sends the state bytes and shuts its write side; the answer is
one line `allow` or `deny`, then the text for stderr (warnings, or the deny message).
"""

import _socket
import os
import sys

DEFAULT_SOCKET = "/var/lib/tidegate/enforcer/enforcer.sock"
DEFAULT_TIMEOUT = 5.0
MAX_STATE = 1024 * 1024
MAX_ANSWER = 1024 * 1024
FAIL_MODE_FILE = "hook-fail-mode"

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: never imported when the hook runs
    from typing import BinaryIO


def parse_args(argv: list[str]) -> tuple[str, str, float]:
    """(socket path, state dir, timeout); ValueError naming a bad option."""
    sock, state_dir, timeout = DEFAULT_SOCKET, "", DEFAULT_TIMEOUT
    for i in range(0, len(argv), 2):
        arg = argv[i]
        if i + 1 >= len(argv):
            raise ValueError(f"option {arg} needs a value")
        value = argv[i + 1]
        if arg == "--socket":
            sock = value
        elif arg == "--state-dir":
            state_dir = value
        elif arg == "--timeout":
            timeout = float(value)
        else:
            raise ValueError(f"unknown option {arg}")
    return sock, state_dir or os.path.dirname(sock), timeout


def ask(path: str, state: bytes, timeout: float) -> bytes:
    """Send the state to the enforcer's socket; its whole answer. OSError when unreachable."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(state)
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        size = 0
        while size <= MAX_ANSWER:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def fail_open(state_dir: str) -> bool:
    """The group's fail mode as the agent last wrote it; open when no agent ever ran here."""
    try:
        with open(os.path.join(state_dir, FAIL_MODE_FILE), "rb") as handle:
            return handle.read(64).strip() != b"closed"
    except OSError:
        return True


def undecided(reason: str, state_dir: str) -> int:
    if fail_open(state_dir):
        os.write(2, f"tidegate: allowed without a decision (fail-open): {reason}\n".encode())
        return 0
    os.write(2, f"tidegate: refused without a decision (fail-closed): {reason}\n".encode())
    return 1


def run(argv: list[str], stdin: "BinaryIO") -> int:
    try:
        sock, state_dir, timeout = parse_args(argv)
    except ValueError as exc:
        os.write(2, f"tidegate hook: {exc}\n".encode())
        return 2
    state = stdin.read(MAX_STATE + 1)
    if not state.strip() or len(state) > MAX_STATE:
        return undecided("no container state on stdin (or more than 1 MiB)", state_dir)
    try:
        answer = ask(sock, state, timeout)
    except OSError as exc:
        return undecided(f"enforcer at {sock} cannot be asked: {exc}", state_dir)
    verdict, _, text = answer.partition(b"\n")
    if text.strip():
        os.write(2, text if text.endswith(b"\n") else text + b"\n")
    if verdict == b"allow":
        return 0
    if verdict == b"deny":
        return 1
    return undecided(f"enforcer at {sock} answered {verdict[:80]!r}", state_dir)


def main(argv: "list[str] | None" = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
