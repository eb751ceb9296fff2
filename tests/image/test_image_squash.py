"""Squashing: overlay semantics of whiteouts, opaque directories and type changes."""

from __future__ import annotations

import pytest

from tidegate.core.files import Entry, EntryKind
from tidegate.image.squash import LayerPaths, squash

F, D, L, W, OPQ = (
    EntryKind.FILE,
    EntryKind.DIR,
    EntryKind.SYMLINK,
    EntryKind.WHITEOUT,
    EntryKind.OPAQUE,
)


def layer(*spec: tuple[str, EntryKind]) -> LayerPaths[str]:
    """A layer whose payload for every non-marker path is "<kind>"."""
    entries = [Entry(path, kind) for path, kind in spec]
    payloads = {e.path: e.kind.value for e in entries if e.kind not in (W, OPQ)}
    return LayerPaths.from_entries(entries, payloads)


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        pytest.param(
            [layer(("/a", F), ("/b", F)), layer(("/a", F))],
            {"/a": 1, "/b": 0},
            id="upper-file-replaces-lower",
        ),
        pytest.param(
            [layer(("/etc", D), ("/etc/x", F), ("/etc/y", F)), layer(("/etc/x", W))],
            {"/etc": 0, "/etc/y": 0},
            id="whiteout-removes-file",
        ),
        pytest.param(
            [layer(("/d", D), ("/d/e", D), ("/d/e/f", F)), layer(("/d", W))],
            {},
            id="whiteout-removes-tree",
        ),
        pytest.param(
            [layer(("/d", D), ("/d/a", F)), layer(("/d", OPQ), ("/d", D), ("/d/b", F))],
            {"/d": 1, "/d/b": 1},
            id="opaque-hides-lower-children-keeps-own",
        ),
        pytest.param(
            [layer(("/d", D), ("/d/a", F)), layer(("/d", L))],
            {"/d": 1},
            id="non-dir-hides-lower-tree",
        ),
        pytest.param(
            [layer(("/d", D), ("/d/a", F)), layer(("/d", F)), layer(("/d", D), ("/d/b", F))],
            {"/d": 2, "/d/b": 2},
            id="dir-file-dir-keeps-only-top-children",
        ),
        pytest.param(
            [layer(("/x", F)), layer(("/x", W), ("/x", F))],
            {"/x": 1},
            id="whiteout-applies-below-only",
        ),
        pytest.param(
            [layer(("/a", F)), layer(("/a", W)), layer(("/a", F))],
            {"/a": 2},
            id="recreated-after-whiteout",
        ),
        pytest.param(
            [layer(("/ab", F), ("/a/b", F)), layer(("/a", W))],
            {"/ab": 0},
            id="prefix-is-not-ancestor",
        ),
        pytest.param(
            [layer(("/x", F)), layer(("/", OPQ), ("/y", F))],
            {"/y": 1},
            id="opaque-root",
        ),
    ],
)
def test_squash(layers: list[LayerPaths[str]], expected: dict[str, int]) -> None:
    assert {path: index for path, (index, _) in squash(layers).items()} == expected


def test_path_without_payload_still_shadows_lower_payload() -> None:
    lower = LayerPaths({"/f": "lower"}, frozenset({"/f"}), frozenset({"/f"}))
    upper: LayerPaths[str] = LayerPaths({}, frozenset({"/f"}), frozenset({"/f"}))
    assert squash([lower, upper]) == {}
