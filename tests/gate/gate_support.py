"""Values the gate tests share (conftest modules are not importable by name across folders)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from helpers import images


@dataclass(frozen=True, slots=True)
class ScanRun:
    """One in-process run of `tidegate scan`."""

    code: int
    out: str
    err: str


ScanFn = Callable[..., ScanRun]
"""`scan(*args, env=None) -> ScanRun` (the `scan` fixture)."""


def closed_port_url() -> str:
    """A local URL where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{images.free_port()}"
