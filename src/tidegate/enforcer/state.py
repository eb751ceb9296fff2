"""The enforcer's state directory: what lives where, and writes that never leave half a file.

STATE_DIR/
  bundle.json      the last policy bundle the console sent (decisions use it when it is away)
  identity.json    the enforcer id the console assigned at registration
  hook.json        what the hook needs without the agent: the fail mode (open | closed)
  spool.sqlite     audit events not yet accepted by the console
  enforcer.sock    the decision socket (default; `--socket` moves it)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidegate.enforcer.errors import StateDirError

__all__ = ["DEFAULT_STATE_DIR", "StateDir", "atomic_write"]

DEFAULT_STATE_DIR = Path("/var/lib/tidegate/enforcer")


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to a temporary file next to `path`, fsync it, rename it over `path`."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StateDirError(f"cannot write {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True, slots=True)
class StateDir:
    """The files of one enforcer's state directory."""

    root: Path

    @property
    def bundle(self) -> Path:
        return self.root / "bundle.json"

    @property
    def identity(self) -> Path:
        return self.root / "identity.json"

    @property
    def hook_settings(self) -> Path:
        return self.root / "hook.json"

    @property
    def spool(self) -> Path:
        return self.root / "spool.sqlite"

    @property
    def socket(self) -> Path:
        return self.root / "enforcer.sock"

    def create(self) -> StateDir:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateDirError(f"cannot create state dir {self.root}: {exc.strerror}") from exc
        return self

    def read_json(self, path: Path) -> dict[str, Any] | None:
        """The object in `path`, None when it does not exist; a clear error when it is damaged."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateDirError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise StateDirError(f"{path} is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise StateDirError(f"{path} does not hold a JSON object")
        return value

    def write_json(self, path: Path, value: dict[str, Any], *, mode: int = 0o600) -> None:
        atomic_write(path, json.dumps(value, sort_keys=True).encode(), mode=mode)
