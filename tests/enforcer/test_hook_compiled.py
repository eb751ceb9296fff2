"""The compiled OCI hook (hook.c) against the Python hook (hook.py): the same answers, byte for
byte, for the same scenarios, both run as the runtime runs them (a process, the state on stdin)
against a real unix-socket server played by the test; building it (`hookbuild`); and one real
podman container start through the compiled hook and a real `tidegate enforcer`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import NOW, UNREACHABLE, strict_policy

from conftest import BUSYBOX, EnforcerProcess, Podman
from tidegate.core.bundle import EnforcerGroupInfo, build_bundle, build_image_index, bundle_to_json
from tidegate.core.policy import Mode
from tidegate.core.runtime import default_runtime_policy
from tidegate.enforcer import hook, hookbuild
from tidegate.enforcer.errors import EnforcerError, HookBuildError
from tidegate.enforcer.state import StateDir

STATE = b'{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b/c1"}'
ALLOW_WARN = b"allow\nDETECT: runtime policy 'Default runtime policy', control volume_blacklist\n"
DENY = b"deny\nBLOCK: runtime policy 'strict', control block_root: runs as root\n"


@pytest.fixture(scope="session")
def compiled_hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if hookbuild.find_compiler() is None:
        pytest.skip("the compiled hook needs a C compiler (cc or gcc)")
    return hookbuild.build_hook(tmp_path_factory.mktemp("hook") / hookbuild.HOOK_BINARY)


@pytest.fixture
def hooks(compiled_hook: Path) -> dict[str, list[str]]:
    """Each hook's program, as the runtime runs it (options follow)."""
    python = [sys.executable, "-I", "-S", str(Path(hook.__file__).resolve())]
    return {"python": python, "compiled": [str(compiled_hook)]}


# -- a real enforcer socket, played by the test ------------------------------------------------


@dataclass
class FakeEnforcer:
    """Serves `answer` on a unix socket after reading each request to EOF (`delay` first);
    `dribble` sends it one byte every 0.2 s; `received` keeps what each hook sent."""

    path: Path
    answer: bytes = b"allow\n"
    delay: float = 0.0
    dribble: bool = False
    received: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            # the hook may give up first: what it does then is what the tests check
            with conn, contextlib.suppress(OSError):
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        self.received.append(b"".join(chunks))
        if self._stop.wait(self.delay):
            return
        if not self.dribble:
            conn.sendall(self.answer)
            return
        for byte in self.answer:
            conn.sendall(bytes([byte]))
            if self._stop.wait(0.2):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()


@pytest.fixture
def enforcer(tmp_path: Path) -> Iterator[Callable[..., FakeEnforcer]]:
    started: list[FakeEnforcer] = []

    def start(**kwargs: object) -> FakeEnforcer:
        server = FakeEnforcer(tmp_path / "enforcer.sock", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    stderr: str
    seconds: float


def run_hook(argv: list[str], stdin: bytes) -> Result:
    start = time.monotonic()
    proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=60, check=False)
    return Result(proc.returncode, proc.stderr.decode(errors="replace"), time.monotonic() - start)


def both(hooks: dict[str, list[str]], options: list[str], stdin: bytes) -> Result:
    """Run both hooks the same way; they must agree on exit status and stderr; the result."""
    python, compiled = (run_hook([*hooks[k], *options], stdin) for k in ("python", "compiled"))
    assert (compiled.code, compiled.stderr) == (python.code, python.stderr)
    return compiled


# -- the enforcer answers ---------------------------------------------------------------------

OPEN = "tidegate: allowed without a decision (fail-open): "
CLOSED = "tidegate: refused without a decision (fail-closed): "


@pytest.mark.parametrize(
    ("answer", "fail_mode", "code", "stderr"),
    [
        (b"allow\n", None, 0, ""),
        (b"allow", None, 0, ""),
        (ALLOW_WARN, None, 0, ALLOW_WARN.decode().partition("\n")[2]),
        (DENY, None, 1, DENY.decode().partition("\n")[2]),
        (b"deny\nno newline at the end", None, 1, "no newline at the end\n"),
        (b"deny\n \n\t\n", None, 1, ""),
        (b"maybe\nsome", None, 0, "some\n" + OPEN + "enforcer at {sock} answered b'maybe'\n"),
        (b"maybe\n", "closed", 1, CLOSED + "enforcer at {sock} answered b'maybe'\n"),
        (b"ALLOW\n", "closed", 1, CLOSED + "enforcer at {sock} answered b'ALLOW'\n"),
        (b"", "closed", 1, CLOSED + "enforcer at {sock} answered b''\n"),
        (b"it's\n", None, 0, OPEN + 'enforcer at {sock} answered b"it\'s"\n'),
        (
            b"a'b\"c\\\x00\x7f\xff\t\r\n",
            None,
            0,
            OPEN + "enforcer at {sock} answered b'a\\'b\"c\\\\\\x00\\x7f\\xff\\t\\r'\n",
        ),
        (b"v" * 200 + b"\n", None, 0, OPEN + f"enforcer at {{sock}} answered b'{'v' * 80}'\n"),
    ],
    ids=[
        "allow", "allow-no-newline", "allow-warnings", "deny-message", "deny-unterminated",
        "deny-blank-text", "strange-verdict-open", "strange-verdict-closed", "verdict-case",
        "empty-answer", "repr-double-quotes", "repr-escapes", "repr-first-80-bytes",
    ],
)  # fmt: skip
def test_same_answer_from_both_hooks(
    hooks: dict[str, list[str]],
    enforcer: Callable[..., FakeEnforcer],
    tmp_path: Path,
    answer: bytes,
    fail_mode: str | None,
    code: int,
    stderr: str,
) -> None:
    server = enforcer(answer=answer)
    if fail_mode:
        (tmp_path / hook.FAIL_MODE_FILE).write_text(fail_mode)
    result = both(hooks, ["--socket", str(server.path), "--state-dir", str(tmp_path)], STATE)
    assert (result.code, result.stderr) == (code, stderr.format(sock=server.path))
    assert server.received == [STATE, STATE]  # passed on as it came, once per hook


@pytest.mark.parametrize(
    "size", [hook.MAX_STATE, hook.MAX_STATE + 1], ids=["at-the-cap", "over-the-cap"]
)
def test_state_size_cap(
    hooks: dict[str, list[str]], enforcer: Callable[..., FakeEnforcer], tmp_path: Path, size: int
) -> None:
    server = enforcer(answer=b"allow\n")
    (tmp_path / hook.FAIL_MODE_FILE).write_text("closed")
    state = b'{"id": "' + b"x" * (size - 11) + b'"}\n'
    assert len(state) == size
    result = both(hooks, ["--socket", str(server.path), "--state-dir", str(tmp_path)], state)
    if size <= hook.MAX_STATE:
        assert (result.code, result.stderr) == (0, "")
        assert server.received == [state, state]
    else:
        assert result.code == 1
        assert result.stderr == CLOSED + "no container state on stdin (or more than 1 MiB)\n"
        assert server.received == []


def test_answer_is_read_up_to_its_cap(
    hooks: dict[str, list[str]], enforcer: Callable[..., FakeEnforcer], tmp_path: Path
) -> None:
    server = enforcer(answer=b"deny\n" + b"m" * (2 * hook.MAX_ANSWER))
    result = both(hooks, ["--socket", str(server.path), "--state-dir", str(tmp_path)], STATE)
    assert result.code == 1
    assert result.stderr == "m" * (hook.MAX_ANSWER - len(b"deny\n")) + "\n"


@pytest.mark.parametrize(
    ("delay", "dribble"), [(5.0, False), (0.0, True)], ids=["silent", "dribbling"]
)
def test_slow_enforcer_times_out_to_the_fail_mode(
    hooks: dict[str, list[str]],
    enforcer: Callable[..., FakeEnforcer],
    tmp_path: Path,
    delay: float,
    dribble: bool,
) -> None:
    # The dribbling enforcer sends a byte every 0.2 s: only a deadline on the whole exchange
    # (not one per read) stops it within the timeout.
    server = enforcer(answer=b"allow\n" + b"w" * 100, delay=delay, dribble=dribble)
    (tmp_path / hook.FAIL_MODE_FILE).write_text("closed\n")
    options = ["--socket", str(server.path), "--state-dir", str(tmp_path), "--timeout", "0.8"]
    result = both(hooks, options, STATE)
    assert result.code == 1
    assert result.stderr == CLOSED + f"enforcer at {server.path} cannot be asked: timed out\n"
    assert result.seconds < 4.0  # the timeout, plus start-up on a loaded machine


# -- the enforcer cannot be asked: the fail mode decides ----------------------------------------


@pytest.mark.parametrize(
    ("fail_mode", "code"),
    [
        (None, 0),
        ("open", 0),
        ("closed", 1),
        ("  closed\n", 1),
        ("closedX", 0),
        ("CLOSED", 0),
        ("closed" + " " * 100, 1),
    ],
    ids=["no-agent-ever", "open", "closed", "closed-padded", "garbage", "case", "long-padding"],
)
def test_unreachable_enforcer_follows_fail_mode(
    hooks: dict[str, list[str]], tmp_path: Path, fail_mode: str | None, code: int
) -> None:
    if fail_mode is not None:
        (tmp_path / hook.FAIL_MODE_FILE).write_text(fail_mode)
    sock = tmp_path / "missing.sock"
    result = both(hooks, ["--socket", str(sock), "--state-dir", str(tmp_path)], STATE)
    assert result.code == code
    head = CLOSED if code else OPEN
    assert result.stderr == head + (
        f"enforcer at {sock} cannot be asked: [Errno 2] No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("socket_name", "says"),
    [
        ("plain-file", "[Errno 111] Connection refused"),
        ("d" * 120, "AF_UNIX path too long"),
        ("", "[Errno 22] Invalid argument"),
    ],
    ids=["not-a-socket", "path-too-long", "empty-path"],
)
def test_socket_path_problems_are_named(
    hooks: dict[str, list[str]], tmp_path: Path, socket_name: str, says: str
) -> None:
    sock = str(tmp_path / socket_name) if socket_name else ""
    if socket_name == "plain-file":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(sock)  # a socket file nobody listens on
    (tmp_path / hook.FAIL_MODE_FILE).write_text("closed")
    result = both(hooks, ["--socket", sock, "--state-dir", str(tmp_path)], STATE)
    assert (result.code, result.stderr) == (
        1,
        CLOSED + f"enforcer at {sock} cannot be asked: {says}\n",
    )


@pytest.mark.parametrize("stdin", [b"", b" \n\t\r\x0b\x0c"], ids=["empty", "whitespace"])
def test_no_state_on_stdin(hooks: dict[str, list[str]], tmp_path: Path, stdin: bytes) -> None:
    result = both(hooks, ["--state-dir", str(tmp_path)], stdin)
    assert (result.code, result.stderr) == (
        0,
        OPEN + "no container state on stdin (or more than 1 MiB)\n",
    )


def test_state_dir_defaults_to_the_socket_dir(hooks: dict[str, list[str]], tmp_path: Path) -> None:
    (tmp_path / hook.FAIL_MODE_FILE).write_text("closed")
    for sock in (f"{tmp_path}/gone.sock", f"{tmp_path}//gone.sock"):  # dirname drops the //
        result = both(hooks, ["--socket", sock], STATE)
        assert result.code == 1, sock


def test_later_options_win(
    hooks: dict[str, list[str]], enforcer: Callable[..., FakeEnforcer], tmp_path: Path
) -> None:
    server = enforcer(answer=DENY)
    options = ["--socket", str(tmp_path / "nope.sock"), "--timeout", "9", "--socket",
               str(server.path), "--timeout", "2.5e0"]  # fmt: skip
    assert both(hooks, options, STATE).code == 1
    assert len(server.received) == 2


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--socket"], "option --socket needs a value"),
        (["--state-dir", "/x", "--timeout"], "option --timeout needs a value"),
        (["--colour", "x"], "unknown option --colour"),
        (["--socket=/x.sock", "x"], "unknown option --socket=/x.sock"),
        (["-s", "/x.sock"], "unknown option -s"),
        *[
            (["--timeout", v], f"option --timeout needs seconds above 0 and at most 3600, not {v}")
            for v in ("soon", "0", "-1", "0.0", "inf", "nan", "1_0", "0x10", " 5", "1e9", "", ".",
                      "1e", "5e-400", "3600.5")
        ],
    ],
)  # fmt: skip
def test_bad_options(hooks: dict[str, list[str]], argv: list[str], says: str) -> None:
    result = both(hooks, argv, STATE)
    assert (result.code, result.stderr) == (2, f"tidegate hook: {says}\n")


# -- the same limits in both programs ----------------------------------------------------------


def test_c_constants_match_the_python_hook() -> None:
    source = hookbuild.HOOK_SOURCE.read_text()
    defines = dict(re.findall(r"^#define (\w+) (.+?)(?:\s*/\*.*)?$", source, re.MULTILINE))
    assert json.loads(defines["DEFAULT_SOCKET"]) == hook.DEFAULT_SOCKET
    assert json.loads(defines["FAIL_MODE_FILE"]) == hook.FAIL_MODE_FILE
    assert float(defines["DEFAULT_TIMEOUT"]) == hook.DEFAULT_TIMEOUT
    assert float(defines["MAX_TIMEOUT"]) == hook.MAX_TIMEOUT
    assert hook.MAX_STATE == hook.MAX_ANSWER == 1024 * 1024
    assert defines["MAX_STATE"] == defines["MAX_ANSWER"] == "(1024 * 1024)"


# -- building it ------------------------------------------------------------------------------


def test_find_compiler(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert hookbuild.find_compiler({"PATH": str(bin_dir)}) is None
    assert hookbuild.find_compiler({"PATH": str(bin_dir), "CC": "ccache gcc"}) == "ccache gcc"
    gcc = bin_dir / "gcc"
    gcc.write_text("#!/bin/sh\n")
    gcc.chmod(0o755)
    assert hookbuild.find_compiler({"PATH": str(bin_dir), "CC": " "}) == str(gcc)


@pytest.mark.parametrize(
    ("cc", "says"),
    [
        ("{gcc} -Dmain=not_main", r"(?s)failed to compile .*hook\.c \(exit status 1\): .*`main'"),
        ("{gcc} -DMAX_STATE=", r"(?s)failed to compile .*hook\.c \(exit status 1\): .*MAX_STATE"),
        ("/nonexistent/cc", r"C compiler '/nonexistent/cc' cannot be run: .*No such file"),
        ("gcc '-O2", r"cannot be read as a command: No closing quotation"),
    ],
    ids=["link-error", "compile-error", "missing-compiler", "unreadable-cc"],
)
def test_build_failures_name_the_compiler_and_its_stderr(
    compiled_hook: Path, tmp_path: Path, cc: str, says: str
) -> None:
    gcc = hookbuild.find_compiler() or "cc"
    cc = cc.format(gcc=gcc)
    dest = tmp_path / "out" / hookbuild.HOOK_BINARY
    with pytest.raises(HookBuildError, match=says) as caught:
        hookbuild.build_hook(dest, cc=cc)
    assert isinstance(caught.value, EnforcerError)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no half-written binary left behind


def test_refuses_a_directory_others_may_write(compiled_hook: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(HookBuildError, match="writable by group or others"):
        hookbuild.build_hook(shared / hookbuild.HOOK_BINARY)
    assert list(shared.iterdir()) == []


def test_rebuild_replaces_the_binary(compiled_hook: Path, tmp_path: Path) -> None:
    dest = tmp_path / hookbuild.HOOK_BINARY
    first = hookbuild.build_hook(dest)
    inode = first.stat().st_ino
    assert hookbuild.build_hook(dest) == dest
    assert dest.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert dest.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize(
    ("compiled", "has_cc", "program"),
    [
        (None, True, "compiled"),
        (True, True, "compiled"),
        (False, True, "python"),
        (None, False, "python"),
        (False, False, "python"),
        (True, False, None),
    ],
)
def test_hook_command_choice(
    compiled_hook: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compiled: bool | None,
    has_cc: bool,
    program: str | None,
) -> None:
    monkeypatch.delenv("CC", raising=False)
    if not has_cc:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    sock, state = tmp_path / "state" / "enforcer.sock", tmp_path / "state"
    options = ["--socket", str(sock), "--state-dir", str(state)]
    dest_dir = tmp_path / "libexec"
    if program is None:
        with pytest.raises(HookBuildError, match="needs a C compiler"):
            hookbuild.hook_command(
                socket_path=sock, state_dir=state, compiled=compiled, dest_dir=dest_dir
            )
        return
    argv = hookbuild.hook_command(
        socket_path=sock, state_dir=state, compiled=compiled, dest_dir=dest_dir
    )
    if program == "compiled":
        assert argv == [str(dest_dir / hookbuild.HOOK_BINARY), *options]
        assert os.access(argv[0], os.X_OK)
    else:
        assert argv == [sys.executable, "-I", "-S", str(Path(hook.__file__).resolve()), *options]
        assert not dest_dir.exists()


# -- a real container start through the compiled hook -------------------------------------------


def _use_compiled_hook(enforcer: EnforcerProcess, dest_dir: Path) -> list[str]:
    """Rewrite the hook JSON `install-hook` wrote so that the runtime runs the compiled hook."""
    (path,) = enforcer.hooks_dir.glob("*.json")
    doc = json.loads(path.read_text())
    argv = hookbuild.hook_command(
        socket_path=enforcer.socket, state_dir=enforcer.state_dir, compiled=True, dest_dir=dest_dir
    )
    doc["hook"].update(path=argv[0], args=argv)
    path.write_text(json.dumps(doc))
    return argv


@pytest.mark.parametrize(
    "group_mode", [Mode.ENFORCE, Mode.AUDIT], ids=["enforce-group", "audit-group"]
)
def test_podman_start_through_the_compiled_hook(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    compiled_hook: Path,
    tmp_path: Path,
    group_mode: Mode,
) -> None:
    bundle = build_bundle(
        group=EnforcerGroupInfo(name="podman-hosts", mode=group_mode),
        policies=[default_runtime_policy(), strict_policy(Mode.ENFORCE)],
        services=(),
        images=build_image_index([]),
        now=NOW,
    )
    state = StateDir(tmp_path / "state").create()
    state.bundle.write_bytes(bundle_to_json(bundle))
    enforcer = start_enforcer(UNREACHABLE, "group-token", state.root)
    argv = _use_compiled_hook(enforcer, tmp_path / "libexec")
    assert argv[0] == str(tmp_path / "libexec" / hookbuild.HOOK_BINARY)

    run = podman.run(BUSYBOX, "-c", "echo started", hooks_dir=enforcer.hooks_dir)
    if group_mode is Mode.ENFORCE:  # the busybox image is unknown to the bundle
        assert run.returncode != 0
        assert "started" not in run.stdout
        assert "runtime policy 'strict'" in run.stderr
        assert "control block_unregistered" in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "started"

    enforcer.stop()  # away: the fail mode decides, here closed
    (enforcer.state_dir / hook.FAIL_MODE_FILE).write_text("closed")
    run = podman.run(BUSYBOX, "-c", "echo started", hooks_dir=enforcer.hooks_dir)
    assert run.returncode != 0
    assert "refused without a decision (fail-closed)" in run.stderr
