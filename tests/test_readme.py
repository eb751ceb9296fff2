"""README.md stays true: the exit-code table is the CLI's own, and it opens with the two commands
a newcomer types."""

from __future__ import annotations

import re
from pathlib import Path

from tidegate.cli.exit_codes import ExitCode, exit_code_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- exit-codes -->", "<!-- /exit-codes -->"


def _between_markers(text: str) -> str:
    assert START in text, f"README.md needs the {START} ... {END} markers"
    assert END in text, f"README.md needs the {START} ... {END} markers"
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def test_exit_code_table_is_the_clis() -> None:
    assert _between_markers(README.read_text()) == exit_code_table()


def test_every_exit_code_is_documented_once() -> None:
    table = _between_markers(README.read_text())
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)]
    assert codes == [c.value for c in ExitCode]


def test_readme_starts_with_make_run_and_make_test() -> None:
    head = "\n".join(README.read_text().splitlines()[:10])
    assert re.search(r"^make run\b", head, flags=re.MULTILINE)
    assert re.search(r"^make test\b", head, flags=re.MULTILINE)
    assert head.index("make run") < head.index("make test")
