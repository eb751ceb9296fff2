"""The format registry: one list of writers, feeding the CLI's --format choices and help."""

from __future__ import annotations

import io

import pytest
from report_results import minimal_result

from tidegate.core.errors import UsageError
from tidegate.report import ReportOptions, Writer, get_writer, writers


def test_formats_in_help_order() -> None:
    assert list(writers()) == ["table", "json", "cyclonedx", "spdx", "sarif", "junit", "html"]


@pytest.mark.parametrize(
    ("name", "media_type", "extension"),
    [
        ("table", "text/plain", ".txt"),
        ("json", "application/json", ".json"),
        ("cyclonedx", "application/vnd.cyclonedx+json; version=1.6", ".cdx.json"),
        ("spdx", "application/spdx+json", ".spdx.json"),
        ("sarif", "application/sarif+json", ".sarif"),
        ("junit", "application/xml", ".junit.xml"),
        ("html", "text/html", ".html"),
    ],
)
def test_writer_describes_itself(name: str, media_type: str, extension: str) -> None:
    writer: Writer = get_writer(name)
    assert writer.name == name
    assert writer.media_type == media_type
    assert writer.file_extension == extension
    assert writer.description
    assert "\n" not in writer.description


@pytest.mark.parametrize("spelling", ["JSON", " json ", "Json"])
def test_format_names_are_forgiving_about_case_and_blanks(spelling: str) -> None:
    assert get_writer(spelling).name == "json"


@pytest.mark.parametrize("bad", ["sarif2", "", "xml", "cyclone", "junit.xml"])
def test_unknown_format_names_it_and_lists_the_valid_ones(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        get_writer(bad)
    message = str(caught.value)
    assert repr(bad) in message
    for name in ("table", "json", "cyclonedx", "spdx", "sarif", "junit", "html"):
        assert name in message


def test_registry_returns_fresh_writers_that_write() -> None:
    assert writers()["json"] is not writers()["json"]
    for writer in writers().values():
        out = io.StringIO()
        writer.write(minimal_result(), out, ReportOptions(color=False))
        assert out.getvalue().endswith("\n")


@pytest.mark.parametrize("name", ["cyclonedx", "spdx"])
def test_a_lazy_writer_describes_itself_as_the_writer_it_loads(name: str) -> None:
    from tidegate.report import LazyWriter

    lazy = get_writer(name)
    assert isinstance(lazy, LazyWriter)
    real = lazy.load()
    assert not isinstance(real, LazyWriter)
    for field in ("name", "description", "media_type", "file_extension"):
        assert getattr(lazy, field) == getattr(real, field), field


def test_the_cli_starts_without_the_sbom_libraries_or_the_console() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tidegate.cli.main as m; m.build_parser(); "
        "print(sorted(x for x in ('cyclonedx', 'spdx_tools', 'fastapi', 'sqlalchemy') "
        "if x in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
