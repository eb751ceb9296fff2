"""Output documents and their writers: one `Writer` per format, listed by `writers()`.

`writers()` is the single list of formats: the CLI builds `--format` choices and help from it,
and `get_writer` resolves a user's choice. A new format is a module with a writer class and one
line in `_FACTORIES`.
"""

from __future__ import annotations

from collections.abc import Callable

from tidegate.core.errors import UsageError
from tidegate.report.cyclonedx import CycloneDxWriter
from tidegate.report.html import HtmlWriter
from tidegate.report.interface import ReportOptions, Writer
from tidegate.report.json_doc import JsonWriter
from tidegate.report.junit import JUnitWriter
from tidegate.report.sarif import SarifWriter
from tidegate.report.spdx import SpdxWriter
from tidegate.report.table import TableWriter

_FACTORIES: tuple[Callable[[], Writer], ...] = (
    TableWriter,
    JsonWriter,
    CycloneDxWriter,
    SpdxWriter,
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


__all__ = ["ReportOptions", "Writer", "get_writer", "writers"]
