"""Output documents and their writers: one `Writer` per format, listed by `writers()`.

`writers()` is the single list of formats: the CLI builds `--format` choices and help from it,
and `get_writer` resolves a user's choice. A new format is a module with a writer class and one
line in `_FACTORIES`.

The SBOM writers stand behind `LazyWriter`: their libraries (cyclonedx-python-lib, spdx-tools)
take ~0.3 s to import, which every `tidegate` command would otherwise pay at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from tidegate.core.errors import UsageError
from tidegate.core.models import ScanResult
from tidegate.core.policy import Verdict
from tidegate.report.html import HtmlWriter
from tidegate.report.interface import ReportOptions, Writer
from tidegate.report.json_doc import JsonWriter
from tidegate.report.junit import JUnitWriter
from tidegate.report.sarif import SarifWriter
from tidegate.report.table import TableWriter


@dataclass(frozen=True, slots=True)
class LazyWriter:
    """A writer whose module is imported on the first `write` (tests check that its
    name, description, media type and extension are the real writer's)."""

    name: str
    description: str
    media_type: str
    file_extension: str
    target: str
    """"module:Class" of the real writer."""

    def load(self) -> Writer:
        module, _, cls = self.target.partition(":")
        made: Writer = getattr(importlib.import_module(module), cls)()
        return made

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        self.load().write(result, out, options, verdict)


def _cyclonedx() -> Writer:
    return LazyWriter(
        name="cyclonedx",
        description="CycloneDX 1.6 JSON SBOM, with findings as vulnerabilities",
        media_type="application/vnd.cyclonedx+json; version=1.6",
        file_extension=".cdx.json",
        target="tidegate.report.cyclonedx:CycloneDxWriter",
    )


def _spdx() -> Writer:
    return LazyWriter(
        name="spdx",
        description="SPDX 2.3 JSON SBOM",
        media_type="application/spdx+json",
        file_extension=".spdx.json",
        target="tidegate.report.spdx:SpdxWriter",
    )


_FACTORIES: tuple[Callable[[], Writer], ...] = (
    TableWriter,
    JsonWriter,
    _cyclonedx,
    _spdx,
    SarifWriter,
    JUnitWriter,
    HtmlWriter,
)


def writers() -> dict[str, Writer]:
    """Every output format by name, in the order the help lists them (default first)."""
    made = [factory() for factory in _FACTORIES]
    return {w.name: w for w in made}


def get_writer(name: str) -> Writer:
    """The writer for `name`; a `UsageError` naming the valid formats for anything else."""
    available = writers()
    try:
        return available[name.strip().lower()]
    except KeyError:
        valid = ", ".join(available)
        raise UsageError(f"unknown report format {name!r}: choose one of {valid}") from None


__all__ = ["LazyWriter", "ReportOptions", "Writer", "get_writer", "writers"]
