"""The applier: which findings survive the layers above them."""

from __future__ import annotations

import pytest

from tidegate.core.models import FileFindings, Unknown
from tidegate.scan.apply import layer_unknowns, visible_findings
from tidegate.scan.layers import LayerAnalysis


def layer(
    files: tuple[str, ...] = (),
    *,
    dirs: tuple[str, ...] = (),
    links: tuple[str, ...] = (),
    whiteouts: tuple[str, ...] = (),
    opaques: tuple[str, ...] = (),
    name: str = "l",
) -> LayerAnalysis:
    return LayerAnalysis(
        digest=f"sha256:{name}",
        diff_id=f"sha256:{name}",
        paths=(*dirs, *files, *links),
        non_dirs=(*files, *links),
        whiteouts=whiteouts,
        opaques=opaques,
        findings=tuple(
            FileFindings(analyzer="t", path=p, unknowns=(Unknown(p, name),)) for p in files
        ),
        unknowns=(),
    )


CASES = [
    ("one layer keeps its files", [layer(("/a", "/b/c"))], {"/a": "l", "/b/c": "l"}),
    (
        "an upper file replaces the lower one",
        [layer(("/etc/x",), name="low"), layer(("/etc/x",), name="up")],
        {"/etc/x": "up"},
    ),
    (
        "a whiteout removes the file",
        [layer(("/etc/x", "/etc/y")), layer(whiteouts=("/etc/x",), name="up")],
        {"/etc/y": "l"},
    ),
    (
        "a whiteout of a directory removes what is below it",
        [layer(("/opt/app/bin/run", "/opt/keep")), layer(whiteouts=("/opt/app",), name="up")],
        {"/opt/keep": "l"},
    ),
    (
        "an opaque directory hides lower entries below it but not its own",
        [
            layer(("/var/lib/old", "/var/other"), name="low"),
            layer(("/var/lib/new",), opaques=("/var/lib",), name="up"),
        ],
        {"/var/other": "low", "/var/lib/new": "up"},
    ),
    (
        "a symlink replacing a directory hides what was below it",
        [layer(("/usr/lib/x/y",), name="low"), layer(links=("/usr/lib/x",), name="up")],
        {},
    ),
    (
        "a directory entry above does not hide files below it",
        [layer(("/usr/bin/tool",), name="low"), layer(dirs=("/usr/bin",), name="up")],
        {"/usr/bin/tool": "low"},
    ),
    (
        "a file whited out then re-added in a third layer is back",
        [layer(("/x",), name="a"), layer(whiteouts=("/x",), name="b"), layer(("/x",), name="c")],
        {"/x": "c"},
    ),
    (
        "a prefix that is not a parent does not hide",
        [layer(("/usr/binary",), name="low"), layer(whiteouts=("/usr/bin",), name="up")],
        {"/usr/binary": "low"},
    ),
]


@pytest.mark.parametrize(("layers", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_visible_findings(layers: list[LayerAnalysis], expected: dict[str, str]) -> None:
    got = {f.path: f.unknowns[0].reason for f in visible_findings(layers)}
    assert got == expected


def test_layer_unknowns_are_kept_whatever_is_above() -> None:
    bad = Unknown("/../etc/passwd", "path escapes the image root", None, "sha256:a")
    low = LayerAnalysis("d", "d", (), (), (), (), (), (bad,))
    assert layer_unknowns([low, layer(whiteouts=("/etc",))]) == [bad]
