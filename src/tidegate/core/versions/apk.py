"""Alpine package versions, ordered as apk-tools orders them.

A version is `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`: numbers compare as numbers,
except that a later component with a leading zero compares as a string (`1.01 < 1.1`, Gentoo's
rule); one letter may follow a number; suffixes `_alpha _beta _pre _rc` sort before the release and
`_cvs _svn _git _hg _p` after it; `~hash` is a commit hash; `-rN` is the package revision.

Like apk, `compare` accepts a version that goes wrong part way: it compares the valid prefix and
the rest counts as an invalid token (which sorts after the end of a version). `parse`, used to
validate, refuses such versions.
"""

from __future__ import annotations

import re
from enum import IntEnum
from functools import cmp_to_key, lru_cache

from tidegate.core.versions.interface import SortKey, VersionKind, invalid


class _T(IntEnum):
    """Token types, in apk-tools' order: when two versions differ in the type of their next token,
    the one whose token type is greater is the older version (the end of a version, for instance,
    is older than a further number, but newer than a pre-release suffix)."""

    FIRST_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    COMMIT_HASH = 5
    REVISION_NO = 6
    END = 7
    INVALID = 8


_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
_SUFFIX_ORDER = {s: i - len(_PRE_SUFFIXES) for i, s in enumerate(_PRE_SUFFIXES)} | {
    s: i for i, s in enumerate(_POST_SUFFIXES)
}

_Token = tuple[_T, int | str]
ApkKey = tuple[_Token, ...]
"""Tokens, always ending with END or INVALID."""

_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdef")


def _run(text: str, start: int, chars: frozenset[str]) -> int:
    end = start
    while end < len(text) and text[end] in chars:
        end += 1
    return end


def _next_type(prev: _T, text: str, i: int) -> tuple[_T, int]:
    """The type of the token at text[i] after a `prev` token, and where its value starts."""
    c = text[i]
    if prev in (_T.FIRST_DIGIT, _T.DIGIT) and c in _LOWER:
        return _T.LETTER, i
    if prev == _T.LETTER and c in _DIGITS:
        return _T.DIGIT, i
    if prev == _T.SUFFIX and c in _DIGITS:
        return _T.SUFFIX_NO, i
    if c == "." and prev <= _T.LETTER:
        return _T.DIGIT, i + 1
    if c == "_" and prev <= _T.SUFFIX_NO:
        return _T.SUFFIX, i + 1
    if c == "~" and prev < _T.COMMIT_HASH:
        return _T.COMMIT_HASH, i + 1
    if text.startswith("-r", i) and prev < _T.REVISION_NO:
        return _T.REVISION_NO, i + 2
    return _T.INVALID, i


def _value(kind: _T, text: str, i: int) -> tuple[int | str, int] | None:
    """The token's value and where it ends, or None when the text there is not such a token."""
    if kind in (_T.FIRST_DIGIT, _T.DIGIT, _T.SUFFIX_NO, _T.REVISION_NO):
        end = _run(text, i, _DIGITS)
        if end == i:
            return None
        digits = text[i:end]
        # A later number with a leading zero keeps its digits: it compares as a string.
        if kind == _T.DIGIT and digits[0] == "0":
            return digits, end
        return int(digits), end
    if kind == _T.LETTER:
        return text[i], i + 1
    if kind == _T.SUFFIX:
        end = _run(text, i, _LOWER)
        order = _SUFFIX_ORDER.get(text[i:end])
        return None if order is None else (order, end)
    end = _run(text, i, _HEX)  # COMMIT_HASH
    return (text[i:end], end) if end > i else None


_WELL_FORMED = re.compile(
    r"(?P<numbers>[0-9]+(?:\.[0-9]+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>[0-9]+))?"
)
_SUFFIX = re.compile(r"_([a-z]+)([0-9]*)")


@lru_cache(maxsize=65536)
def tokens(version: str) -> ApkKey:
    """Tokenise like apk: stop at the first invalid token, recording it as INVALID."""
    m = _WELL_FORMED.fullmatch(version)
    return _scan(version) if m is None else _tokens_of(m)


def _tokens_of(m: re.Match[str]) -> ApkKey:
    """The tokens of a well-formed version, from one regex match (the common, fast case)."""
    first, *rest = m["numbers"].split(".")
    out: list[_Token] = [(_T.FIRST_DIGIT, int(first))]
    out.extend((_T.DIGIT, n if n[0] == "0" else int(n)) for n in rest)
    if m["letter"]:
        out.append((_T.LETTER, m["letter"]))
    for name, number in _SUFFIX.findall(m["suffixes"]):
        out.append((_T.SUFFIX, _SUFFIX_ORDER[name]))
        if number:
            out.append((_T.SUFFIX_NO, int(number)))
    if m["hash"]:
        out.append((_T.COMMIT_HASH, m["hash"]))
    if m["revision"] is not None:
        out.append((_T.REVISION_NO, int(m["revision"])))
    out.append((_T.END, 0))
    return tuple(out)


def _scan(version: str) -> ApkKey:
    """apk's token-by-token reading, for any string (the slow, general case)."""
    out: list[_Token] = []
    kind, i = _T.FIRST_DIGIT, 0
    while True:
        if i >= len(version):
            out.append((_T.END, 0))
            return tuple(out)
        if out:
            kind, i = _next_type(kind, version, i)
        got = None if kind == _T.INVALID else _value(kind, version, i)
        if got is None:
            out.append((_T.INVALID, 0))
            return tuple(out)
        value, i = got
        out.append((kind, value))


def parse(version: str) -> ApkKey:
    """Validate an Alpine version and return its tokens. Raises VersionError."""
    key = tokens(version)
    if key[-1][0] == _T.INVALID:
        raise invalid(VersionKind.APK, version, f"unexpected text after token {len(key) - 1}")
    return key


def _compare_value(a: int | str, b: int | str) -> int:
    if isinstance(a, int) and isinstance(b, int):
        return (a > b) - (a < b)
    # Letters and hashes; and numbers of which one has a leading zero (Gentoo compares those as
    # strings, so that 1.01 < 1.1).
    sa, sb = str(a), str(b)
    return (sa > sb) - (sa < sb)


def compare(a: str, b: str) -> int:
    """Order two Alpine versions: -1, 0 or 1 (never raises: apk orders any string)."""
    ta, tb = tokens(a), tokens(b)
    for (ka, va), (kb, vb) in zip(ta, tb, strict=False):
        if ka != kb:
            # A pre-release suffix is older than whatever the other version has there.
            if ka == _T.SUFFIX and isinstance(va, int) and va < 0:
                return -1
            if kb == _T.SUFFIX and isinstance(vb, int) and vb < 0:
                return 1
            return -1 if ka > kb else 1
        if ka in (_T.END, _T.INVALID):
            return 0
        result = _compare_value(va, vb)
        if result:
            return result
    return 0


_CmpKey = cmp_to_key(compare)


@lru_cache(maxsize=65536)
def sort_key(version: str) -> SortKey:
    """A key ordered as `compare` orders versions (it calls `compare`; like it, never raises)."""
    return _CmpKey(version)


class ApkComparator:
    """apk-tools version ordering."""

    @property
    def kind(self) -> VersionKind:
        return VersionKind.APK

    def parse(self, version: str) -> object:
        return parse(version)

    def compare(self, a: str, b: str) -> int:
        return compare(a, b)

    def sort_key(self, version: str) -> SortKey:
        return sort_key(version)
