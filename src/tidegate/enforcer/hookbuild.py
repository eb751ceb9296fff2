"""The compiled OCI hook: building `hook.c` on this host, and choosing the hook command.

The hook runs on every container start, so its start-up is every container's latency: the
Python hook (`hook.py` under `python -I -S`) spends most of its time starting CPython, the
compiled one (`hook.c`, the same program in C on libc only) almost none. The C source ships
inside the package and is compiled where the enforcer is installed, with the host's own C
compiler: nothing platform-specific is shipped, and a host without a compiler keeps the
Python hook.

- `find_compiler()`: $CC when set, else `cc` or `gcc` on PATH.
- `build_hook(dest)`: compile hook.c to `dest` (atomically: a hook run during a rebuild sees
  the old binary or the new one), then run it once to prove it executes here (a `noexec`
  mount or a cross compiler would otherwise refuse every container start).
- `hook_command(...)`: the argv the runtime runs as the hook, compiled or Python.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tidegate.enforcer import hook
from tidegate.enforcer.errors import HookBuildError

__all__ = [
    "CFLAGS",
    "HOOK_BINARY",
    "HOOK_SOURCE",
    "build_hook",
    "find_compiler",
    "hook_command",
    "python_hook_command",
]

HOOK_SOURCE = Path(__file__).with_name("hook.c")
HOOK_BINARY = "tidegate-oci-hook"
"""The compiled hook's file name inside `dest_dir`."""
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror")
BUILD_TIMEOUT = 120.0
"""Seconds a compile (or the trial run) may take before the build is abandoned."""
COMPILERS = ("cc", "gcc")


def find_compiler(environ: Mapping[str, str] | None = None) -> str | None:
    """$CC when set (it may carry words: `ccache gcc`), else `cc` or `gcc` on PATH, else None."""
    env = os.environ if environ is None else environ
    chosen = env.get("CC", "").strip()
    if chosen:
        return chosen
    path = env.get("PATH", os.defpath)
    for name in COMPILERS:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def build_hook(dest: Path, *, cc: str | None = None) -> Path:
    """Compile hook.c to `dest` (mode 0755) with `cc` (default: `find_compiler()`); `dest`.

    HookBuildError names the compiler and carries its stderr when the build fails, and says
    so when no compiler is found, the result cannot run here, or `dest`'s directory is
    writable by group or others (the runtime runs the hook as root)."""
    compiler = cc or find_compiler()
    if not compiler:
        raise HookBuildError(
            "no C compiler to build the compiled OCI hook: set $CC or install cc/gcc"
        )
    if not HOOK_SOURCE.is_file():
        raise HookBuildError(f"the hook source {HOOK_SOURCE} is missing from the package")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if dest.parent.stat().st_mode & 0o022:
            # the runtime runs this program as root on every container start
            raise HookBuildError(
                f"{dest.parent} is writable by group or others: whoever can write there could "
                "replace the hook the container runtime runs as root"
            )
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
    except OSError as exc:
        raise HookBuildError(f"cannot write the compiled hook in {dest.parent}: {exc}") from exc
    tmp = Path(name)
    try:
        _compile(compiler, tmp)
        tmp.chmod(0o755)
        _try_run(tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        raise HookBuildError(f"cannot install the compiled hook as {dest}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _compile(compiler: str, out: Path) -> None:
    try:
        words = shlex.split(compiler)
    except ValueError as exc:
        raise HookBuildError(f"C compiler {compiler!r} cannot be read as a command: {exc}") from exc
    if not words:
        raise HookBuildError(f"C compiler {compiler!r} names no command")
    argv = [*words, *CFLAGS, "-o", str(out), str(HOOK_SOURCE)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=BUILD_TIMEOUT
        )
    except OSError as exc:
        raise HookBuildError(f"C compiler {compiler!r} cannot be run: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise HookBuildError(
            f"C compiler {compiler!r} did not finish compiling {HOOK_SOURCE} "
            f"within {BUILD_TIMEOUT:g} s"
        ) from exc
    if proc.returncode != 0:
        raise HookBuildError(
            f"C compiler {compiler!r} failed to compile {HOOK_SOURCE} "
            f"(exit status {proc.returncode}): {proc.stderr.strip() or '(no output)'}"
        )


def _try_run(binary: Path) -> None:
    """Run the fresh binary with an option it refuses: exit 2 proves it executes on this host."""
    try:
        proc = subprocess.run(
            [str(binary), "--build-check", "x"],
            input=b"",
            capture_output=True,
            timeout=BUILD_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HookBuildError(f"the compiled hook {binary} cannot run here: {exc}") from exc
    if proc.returncode != 2 or b"unknown option --build-check" not in proc.stderr:
        said = proc.stderr.decode(errors="replace").strip()
        raise HookBuildError(
            f"the compiled hook {binary} does not behave as built "
            f"(exit status {proc.returncode}): {said or '(no output)'}"
        )


def python_hook_command(*, socket_path: Path, state_dir: Path) -> list[str]:
    """The Python hook's argv: this interpreter, isolated and without site-packages."""
    program = Path(hook.__file__).resolve()
    return [sys.executable, "-I", "-S", str(program), *_hook_options(socket_path, state_dir)]


def hook_command(
    *, socket_path: Path, state_dir: Path, compiled: bool | None, dest_dir: Path
) -> list[str]:
    """The argv the runtime runs as the hook (argv[0] is the program's path).

    `compiled`: None builds the compiled hook in `dest_dir` when a C compiler is found and
    otherwise keeps the Python hook; True requires the compiled hook (HookBuildError without a
    compiler); False is the Python hook. A compiler that is found but fails is an error in
    both compiled modes: the operator sees why, and may choose the Python hook."""
    if compiled is False:
        return python_hook_command(socket_path=socket_path, state_dir=state_dir)
    compiler = find_compiler()
    if compiler is None:
        if compiled:
            raise HookBuildError(
                "the compiled OCI hook needs a C compiler: set $CC or install cc/gcc"
            )
        return python_hook_command(socket_path=socket_path, state_dir=state_dir)
    binary = build_hook(dest_dir / HOOK_BINARY, cc=compiler)
    return [str(binary.resolve()), *_hook_options(socket_path, state_dir)]


def _hook_options(socket_path: Path, state_dir: Path) -> list[str]:
    return ["--socket", str(socket_path.resolve()), "--state-dir", str(state_dir.resolve())]
