"""Read `.tidegateignore.yaml`: a list of ignore rules, validated entry by entry.

ignore:
  - id: CVE-2023-5678
    package: libssl3            # optional: a name or purl prefix (or `packages: [...]`)
    paths: ["/usr/lib/**"]      # optional globs over package locations
    expires: 2027-01-31         # optional date or RFC 3339 time
    reason: not reachable, openssl only used for hashing
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from tidegate.core.errors import UsageError
from tidegate.core.ignore import IgnoreRule

DEFAULT_NAME = ".tidegateignore.yaml"
_FIELDS = {"id", "package", "packages", "purl", "paths", "expires", "reason"}


def load_ignore_file(path: Path) -> tuple[IgnoreRule, ...]:
    """Parse an ignore file; any bad entry is an error naming the file, the entry and the field."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"ignore file {path}: cannot read it ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"ignore file {path}: not valid YAML ({exc})") from exc
    if doc is None:
        return ()
    entries = doc.get("ignore") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise UsageError(f"ignore file {path}: expected a list under `ignore:`")
    return tuple(_rule(path, i, e) for i, e in enumerate(entries))


def _rule(path: Path, index: int, entry: Any) -> IgnoreRule:
    where = f"ignore file {path}, entry {index + 1}"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a mapping with at least `id`")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    vuln_id = entry.get("id")
    if not isinstance(vuln_id, str) or not vuln_id.strip():
        raise UsageError(f"{where}: `id` must be a vulnerability id such as CVE-2023-5678")
    packages = _strings(where, "packages", entry.get("packages", []))
    for single in ("package", "purl"):
        if single in entry:
            packages += _strings(where, single, [entry[single]])
    return IgnoreRule(
        id=vuln_id.strip(),
        packages=tuple(packages),
        paths=tuple(_strings(where, "paths", entry.get("paths", []))),
        expires=_expires(where, entry.get("expires")),
        reason=str(entry.get("reason") or ""),
    )


def _strings(where: str, name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: `{name}` must be a string or a list of strings")
    return list(value)


def _expires(where: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise UsageError(f"{where}: `expires` must be a date (2027-01-31) or an RFC 3339 time")
