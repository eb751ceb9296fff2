"""Version constraints of the package deny list: parsing, validation and evaluation.

Grammar (hostile input: anything else is a `ConstraintError` naming the constraint)::

    constraint   := alternative ("||" alternative)*        OR
    alternative  := comparison ("," comparison)*           AND
    comparison   := [op] version                           op: == = != < <= > >=  (none: ==)

">=1.0, <1.2.5", "==2.3", "!=1.0", "<3", "<1.0 || >=2.0, <2.4". Versions are ordered by the
package's own ecosystem (`tidegate.core.versions.compare`), so "1:2.0-1" is a dpkg epoch and
"1.0a1" a PEP 440 pre-release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import assert_never

from tidegate.core.errors import TidegateError, VersionError
from tidegate.core.models import PackageType
from tidegate.core.versions import VersionKind, compare, parse

__all__ = [
    "Comparison",
    "Constraint",
    "ConstraintError",
    "Op",
    "parse_constraint",
    "satisfies",
    "version_kind",
]

MAX_CONSTRAINT_LENGTH = 1024
"""Longer constraint strings are refused: no real deny list needs them."""


class ConstraintError(TidegateError, ValueError):
    """A version constraint that cannot be parsed, or whose versions its ecosystem rejects."""


class Op(StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


# Operator first (longest first), then a version that holds none of the grammar's characters.
_COMPARISON = re.compile(r"(==|!=|<=|>=|<|>|=)?\s*([^\s,|<>=!]+)")


@dataclass(frozen=True, slots=True)
class Comparison:
    op: Op
    version: str

    def holds(self, kind: VersionKind, version: str) -> bool:
        """Whether `version` satisfies this comparison; raises VersionError for a bad version."""
        order = compare(kind, version, self.version)
        match self.op:
            case Op.EQ:
                return order == 0
            case Op.NE:
                return order != 0
            case Op.LT:
                return order < 0
            case Op.LE:
                return order <= 0
            case Op.GT:
                return order > 0
            case Op.GE:
                return order >= 0
            case _:
                assert_never(self.op)

    def __str__(self) -> str:
        return f"{self.op.value}{self.version}"


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed constraint: alternatives (OR) of comparisons (AND)."""

    text: str
    alternatives: tuple[tuple[Comparison, ...], ...]

    def matches(self, kind: VersionKind, version: str) -> bool:
        """Whether `version` (of ecosystem `kind`) satisfies the constraint.

        Raises VersionError when `version` or a version of the constraint is not a `kind` version.
        """
        return any(all(c.holds(kind, version) for c in group) for group in self.alternatives)

    def validate(self, kind: VersionKind) -> None:
        """Raise ConstraintError when a version of the constraint is not a `kind` version."""
        for group in self.alternatives:
            for comparison in group:
                try:
                    parse(kind, comparison.version)
                except VersionError as exc:
                    raise ConstraintError(f"version constraint {self.text!r}: {exc}") from exc

    def __str__(self) -> str:
        return " || ".join(", ".join(str(c) for c in group) for group in self.alternatives)


@lru_cache(maxsize=4096)
def parse_constraint(text: str, kind: VersionKind | None = None) -> Constraint:
    """Parse a constraint; with `kind`, also check that its versions are versions of that kind.

    Cached: a policy's constraints are parsed once, however many images are evaluated.
    """
    if len(text) > MAX_CONSTRAINT_LENGTH:
        raise ConstraintError(
            f"version constraint {text[:40]!r}... is {len(text)} characters long "
            f"(at most {MAX_CONSTRAINT_LENGTH})"
        )
    if not text.strip():
        raise ConstraintError(f"version constraint {text!r} is empty")
    groups = tuple(_parse_group(text, part) for part in text.split("||"))
    constraint = Constraint(text=text, alternatives=groups)
    if kind is not None:
        constraint.validate(kind)
    return constraint


def _parse_group(text: str, part: str) -> tuple[Comparison, ...]:
    comparisons = []
    for item in part.split(","):
        item = item.strip()
        if not item:
            raise ConstraintError(
                f"version constraint {text!r} has an empty comparison "
                "(expected e.g. '>=1.0, <1.2.5' or '<1.0 || >=2.0')"
            )
        match = _COMPARISON.fullmatch(item)
        if match is None or match.group(2)[0] in "~^*":
            raise ConstraintError(
                f"version constraint {text!r}: cannot parse {item!r} "
                "(expected an operator among == != < <= > >= followed by one version)"
            )
        op = match.group(1) or "=="
        comparisons.append(Comparison(Op("==" if op == "=" else op), match.group(2)))
    return tuple(comparisons)


def version_kind(package_type: PackageType) -> VersionKind:
    """The version ordering of a package ecosystem (their values are the same purl types)."""
    return _KINDS[package_type]


_KINDS = {ptype: VersionKind(ptype.value) for ptype in PackageType}


def satisfies(constraint: str, package_type: PackageType, version: str) -> bool:
    """Whether a package version satisfies a constraint string, in the package's ecosystem.

    Raises ConstraintError for a bad constraint, VersionError for a version the ecosystem rejects.
    """
    return parse_constraint(constraint).matches(version_kind(package_type), version)
