"""The contract of report writers: one output format, one `Writer`, one `ReportOptions`.

A writer maps a `ScanResult` (and, from the assurance gate, its `Verdict`) to one document and
writes it to a text stream. It never reaches past the result's public values, never reads the
clock or a random source: what a document needs beyond the result (its id, the tool version, the
policies behind the verdict) comes in through `ReportOptions`, so the same result, verdict and
options always give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TextIO
from uuid import UUID

from tidegate import __version__
from tidegate.core.models import ScanResult
from tidegate.core.policy import AssurancePolicy, Verdict


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """How to write a report; every field has a default that suits a command-line user."""

    color: bool | None = None
    """Colored table output: True forces it, False forbids it, None follows the terminal."""
    width: int | None = None
    """Table width in columns; None follows the terminal (100 when it is not one)."""
    include_executables: bool = True
    """List every executable (path, mode, hash) in machine-readable documents."""
    document_id: UUID | None = None
    """Id of the document (CycloneDX serialNumber, SPDX namespace); None derives a stable one
    from the image identity and the scan time, so that re-writing a result changes nothing."""
    tool_version: str = __version__
    """The Tidegate version named as the document's author tool."""
    policies: tuple[AssurancePolicy, ...] = ()
    """The policies the verdict was computed from. A verdict names only the controls that
    failed; with the policies, JUnit and HTML can also list the enabled controls that passed."""


class Writer(Protocol):
    """One output format."""

    @property
    def name(self) -> str:
        """Format name as the user types it (`--format NAME`)."""
        ...

    @property
    def description(self) -> str:
        """One line for the command-line help."""
        ...

    @property
    def media_type(self) -> str:
        """IANA media type of the document (for uploads and HTTP responses)."""
        ...

    @property
    def file_extension(self) -> str:
        """Customary file name ending, dot included (".cdx.json")."""
        ...

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        """Write the document for `result` (and the gate's `verdict`, when there is one) to
        `out`; raises `ReportError` when it cannot."""
        ...
