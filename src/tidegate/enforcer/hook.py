"""The OCI runtime hook: run by the container runtime (podman, CRI-O, runc) on every start.

The runtime executes it at the `createRuntime` stage with the container state on stdin (id,
pid, bundle, annotations). The hook passes that state, as it came, to the local enforcer over
its unix socket; the enforcer reads `BUNDLE/config.json` and the runtime's metadata itself
(it runs on the same host, as root) and answers. The hook exits 0 to let the start go on, or
1 with the enforcer's message on stderr (naming policy and control) to refuse it. When the
enforcer cannot be asked, the group's fail mode (kept by the agent in STATE_DIR/hook-fail-mode)
decides: `open` lets the container start, `closed` refuses it.

Its start-up time is the hook's latency on every container start, so this file is a standalone
program on the interpreter's own modules only (`_socket`, `os`, `sys`, `time`: no json, no
enum, no tidegate imports) and runs as `python -I -S .../hook.py`, which skips site-packages.
`hook.c` is the same program compiled (no interpreter start-up at all; see `hookbuild`): the
two keep the same options, messages, exit codes and limits, and the tests run both.

    hook.py [--socket PATH] [--state-dir DIR] [--timeout SECONDS]

The socket protocol: the hook sends the state bytes and shuts its write side; the answer is
one line `allow` or `deny`, then the text for stderr (warnings, or the deny message). The
timeout bounds the whole exchange (connect, send, answer), so an enforcer that dribbles its
answer still leaves the decision to the fail mode within it; answer bytes past MAX_ANSWER
are not read.
"""

import _socket
import os
import sys
import time

DEFAULT_SOCKET = "/var/lib/tidegate/enforcer/enforcer.sock"
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 3600.0
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
            timeout = parse_timeout(value)
        else:
            raise ValueError(f"unknown option {arg}")
    return sock, state_dir or os.path.dirname(sock), timeout


def parse_timeout(value: str) -> float:
    """Seconds above 0 and at most MAX_TIMEOUT, in decimal (no "inf", "nan", "1_0", spaces)."""
    if value and all(c in "0123456789.eE+-" for c in value):
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0
        if 0 < seconds <= MAX_TIMEOUT:
            return seconds
    raise ValueError(
        f"option --timeout needs seconds above 0 and at most {MAX_TIMEOUT:g}, not {value}"
    )


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def ask(path: str, state: bytes, timeout: float) -> bytes:
    """Send the state to the enforcer's socket; its whole answer. OSError when unreachable."""
    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(_left(deadline))
        sock.connect(path)
        sock.settimeout(_left(deadline))
        sock.sendall(state)
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        size = 0
        while size < MAX_ANSWER:
            sock.settimeout(_left(deadline))
            chunk = sock.recv(min(65536, MAX_ANSWER - size))
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


def say(data: bytes) -> None:
    """All of `data` to stderr; a closed stderr must not change the verdict."""
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass


def undecided(reason: str, state_dir: str) -> int:
    # fsencode: paths from argv may hold bytes that are not UTF-8 (kept as surrogates)
    if fail_open(state_dir):
        say(os.fsencode(f"tidegate: allowed without a decision (fail-open): {reason}\n"))
        return 0
    say(os.fsencode(f"tidegate: refused without a decision (fail-closed): {reason}\n"))
    return 1


def run(argv: list[str], stdin: "BinaryIO") -> int:
    try:
        sock, state_dir, timeout = parse_args(argv)
    except ValueError as exc:
        say(os.fsencode(f"tidegate hook: {exc}\n"))
        return 2
    try:
        state = stdin.read(MAX_STATE + 1)
    except OSError as exc:
        return undecided(f"cannot read the container state on stdin: {exc}", state_dir)
    if not state.strip() or len(state) > MAX_STATE:
        return undecided("no container state on stdin (or more than 1 MiB)", state_dir)
    try:
        answer = ask(sock, state, timeout)
    except OSError as exc:
        return undecided(f"enforcer at {sock} cannot be asked: {exc}", state_dir)
    verdict, _, text = answer.partition(b"\n")
    if text.strip():
        say(text if text.endswith(b"\n") else text + b"\n")
    if verdict == b"allow":
        return 0
    if verdict == b"deny":
        return 1
    return undecided(f"enforcer at {sock} answered {verdict[:80]!r}", state_dir)


def main(argv: "list[str] | None" = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
