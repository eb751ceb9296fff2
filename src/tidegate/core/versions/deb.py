"""Debian package versions, ordered as `dpkg --compare-versions` orders them.

A version is `[epoch:]upstream[-revision]`. Upstream and revision are compared with dpkg's
`verrevcmp`: alternating runs of non-digits (compared character by character, where `~` sorts
before everything, even the end of the string, and letters sort before all other characters) and
digits (compared as numbers). Like dpkg, only structural problems are errors (an empty version,
spaces, a bad epoch, an empty upstream or revision); odd characters are only warnings to dpkg and
are accepted here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import zip_longest

from tidegate.core.versions.interface import SortKey, VersionKind, invalid

_SPACE = re.compile(r"\s")

_Part = tuple[tuple[int, ...], int]
"""A run of non-digits (as dpkg character weights, ended by 0) and the number that follows it."""

_EMPTY_PART: _Part = ((0,), 0)
"""What a string that ran out compares as: dpkg treats the end as weight 0 and number 0."""

DebKey = tuple[int, tuple[_Part, ...], tuple[_Part, ...]]


def _weight(char: str) -> int:
    # dpkg's order(): letters by their code, '~' before everything, other characters after letters.
    if char.isascii() and char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


_RUNS = re.compile(r"([^0-9]*)([0-9]*)")
_WEIGHTS = {chr(code): _weight(chr(code)) for code in range(128)}
_run_weights: dict[str, tuple[int, ...]] = {}
"""Weights of the non-digit runs seen so far ("." "-" "+deb" "~rc"...: a small set, reused)."""


def _weights(run: str) -> tuple[int, ...]:
    weights = _run_weights.get(run)
    if weights is None:
        weights = (*(_WEIGHTS[c] for c in run), 0)
        if len(_run_weights) < 4096:
            _run_weights[run] = weights
    return weights


def _split(text: str) -> tuple[_Part, ...]:
    return tuple(
        (_weights(letters), int(digits) if digits else 0)
        for letters, digits in _RUNS.findall(text)
        if letters or digits  # findall ends with an empty match
    )


@lru_cache(maxsize=65536)
def parse(version: str) -> DebKey:
    """Parse a Debian version into a comparison key. Raises VersionError."""
    epoch, upstream, revision = _fields(version)
    return (epoch, _split(upstream), _split(revision))


def _fields(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision) of a valid version. Raises VersionError."""
    text = version.strip()
    if not text:
        raise invalid(VersionKind.DEB, version, "empty")
    if _SPACE.search(text):
        raise invalid(VersionKind.DEB, version, "contains whitespace")
    epoch = 0
    if ":" in text:
        epoch_text, text = text.split(":", 1)
        if not epoch_text.isascii() or not epoch_text.isdigit():
            raise invalid(VersionKind.DEB, version, "epoch is not a number")
        epoch = int(epoch_text)
        if not text:
            raise invalid(VersionKind.DEB, version, "nothing after the epoch's colon")
    upstream, dash, revision = text.rpartition("-")
    if not dash:
        upstream, revision = text, ""
    elif not revision:
        raise invalid(VersionKind.DEB, version, "empty revision after '-'")
    if not upstream:
        raise invalid(VersionKind.DEB, version, "empty upstream version")
    if not text.isascii():
        raise invalid(VersionKind.DEB, version, "non-ASCII characters")
    return epoch, upstream, revision


def _compare_parts(a: tuple[_Part, ...], b: tuple[_Part, ...]) -> int:
    for pa, pb in zip_longest(a, b, fillvalue=_EMPTY_PART):
        if pa != pb:
            return -1 if pa < pb else 1
    return 0


_END = 1
"""Where a padded sequence ends: above every `~` token, below every other (see `_padded`)."""


def _padded(text: str) -> tuple[int, ...]:
    """The parts of `text` (`_split`) as integers that Python's tuple order orders exactly as
    `_compare_parts` orders the parts (cached: upstream versions and revisions repeat).

    Flattened (each run's weights, its 0 terminator, its number), parts compare as integer
    sequences padded with zeros for ever (`_EMPTY_PART` is a 0 weight and a 0 number), which
    Python's tuple order does not do: it puts a prefix first, while dpkg puts "1~" before "1".
    So each non-zero value becomes a token with the count of zeros before it, trailing zeros
    are dropped, and the end becomes a token of its own (`_END`). Where two sequences first
    differ, the one with a non-zero value where the other still has a zero (or has ended) is
    the greater exactly when that value is positive: only `~` (-1) is negative. So negative
    tokens 0, zeros, -1 order by fewer zeros first, positive ones 2, -zeros, value by more
    zeros first then by value, and `_END` sits between the two kinds. A token's first integer
    differs from `_END`, so two keys never compare a token against part of another."""
    found = _padded_texts.get(text)
    if found is not None:
        return found
    found = _padded_dotted(text) if _DOTTED.fullmatch(text) else _padded_runs(text)
    if len(_padded_texts) < 16384:
        _padded_texts[text] = found
    return found


def _padded_runs(text: str) -> tuple[int, ...]:
    out: list[int] = []
    zeros = 0
    for letters, digits in _RUNS.findall(text):
        if letters:
            first, rest = _letter_tokens(letters)
            out.extend((0, zeros, first) if first < 0 else (2, -zeros, first))
            out.extend(rest)
            zeros = 0
        number = int(digits) if digits else 0
        if number:
            out.extend((2, -zeros - 1, number))  # the run's 0 terminator comes first
            zeros = 0
        else:
            zeros += 2
    out.append(_END)
    return tuple(out)


_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_DOT = _WEIGHTS["."]


def _padded_dotted(text: str) -> tuple[int, ...]:
    """`_padded_runs` of the most common upstream version, numbers joined by dots, without the
    run splitting: each "." is a one-letter run, and each run ends with its 0 terminator."""
    out: list[int] = []
    zeros = 1  # the empty first run's terminator
    for position, digits in enumerate(text.split(".")):
        if position:
            out.extend((2, -zeros, _DOT))
            zeros = 1
        number = int(digits)
        if number:
            out.extend((2, -zeros, number))
            zeros = 0
        else:
            zeros += 1
    out.append(_END)
    return tuple(out)


_padded_texts: dict[str, tuple[int, ...]] = {}
_letter_runs: dict[str, tuple[int, tuple[int, ...]]] = {}


def _letter_tokens(letters: str) -> tuple[int, tuple[int, ...]]:
    """A non-digit run's first weight (its token depends on the zeros before it) and the
    tokens of the other characters (no zeros before them: weights are never 0)."""
    found = _letter_runs.get(letters)
    if found is None:
        rest: list[int] = []
        for char in letters[1:]:
            weight = _WEIGHTS[char]  # ASCII only: `_fields` refused the rest
            rest.extend((0, 0, weight) if weight < 0 else (2, 0, weight))
        found = (_WEIGHTS[letters[0]], tuple(rest))
        if len(_letter_runs) < 4096:
            _letter_runs[letters] = found
    return found


@lru_cache(maxsize=65536)
def sort_key(version: str) -> tuple[int, ...]:
    """A key that Python orders exactly as `compare` orders versions. Raises VersionError."""
    epoch, upstream, revision = _fields(version)
    return (epoch, *_padded(upstream), *_padded(revision))


def compare(a: str, b: str) -> int:
    """Order two Debian versions: -1, 0 or 1. Raises VersionError."""
    ka, kb = parse(a), parse(b)
    if ka[0] != kb[0]:
        return -1 if ka[0] < kb[0] else 1
    return _compare_parts(ka[1], kb[1]) or _compare_parts(ka[2], kb[2])


class DebComparator:
    """dpkg version ordering."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.DEB

    def parse(self, version: str) -> object:
        return parse(version)

    def compare(self, a: str, b: str) -> int:
        return compare(a, b)

    def sort_key(self, version: str) -> SortKey:
        return sort_key(version)
