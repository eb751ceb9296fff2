"""Installed npm packages: the `package.json` at the root of each package in a `node_modules` dir.

Only installed packages count: `**/node_modules/NAME/package.json` and
`**/node_modules/@SCOPE/NAME/package.json` (pnpm's `.pnpm/*/node_modules/...` layout included).
An application's own package.json and lock files say what was wanted, not what is there.
"""

from __future__ import annotations

import json
from typing import Any

from packageurl import PackageURL

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType


def is_installed_manifest(path: str) -> bool:
    """True for the package.json at the root of a package directory under node_modules."""
    parts = path.split("/")
    if len(parts) < 4 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith((".", "@"))
    return len(parts) >= 5 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def _licenses(manifest: dict[str, Any]) -> tuple[str, ...]:
    """`license` as a string or `{"type": ...}`, or the legacy `licenses` list."""
    found: list[str] = []
    declared = manifest.get("license")
    candidates = [declared] if declared is not None else manifest.get("licenses", [])
    if not isinstance(candidates, list):
        candidates = [candidates]
    for item in candidates:
        value = item.get("type") if isinstance(item, dict) else item
        if isinstance(value, str) and value.strip() and value.strip() not in found:
            found.append(value.strip())
    return tuple(found)


def _purl(name: str, version: str) -> str:
    scope, _, bare = name.rpartition("/")
    return PackageURL(type="npm", namespace=scope or None, name=bare, version=version).to_string()


def _load(path: str, data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise AnalyzerError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise AnalyzerError(f"{path}: package.json is not a JSON object")
    return manifest


class NpmAnalyzer(BufferedAnalyzer):
    """One `Package` of type npm per installed package.json."""

    name = "npm"
    version = 1
    max_size = 4 * 1024 * 1024

    def wants(self, entry: Entry) -> bool:
        return is_installed_manifest(entry.path)

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        manifest = _load(entry.path, data)
        name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(name, str) or not name.strip():
            raise AnalyzerError(f"{entry.path}: package.json has no name")
        if not isinstance(version, str) or not version.strip():
            raise AnalyzerError(f"{entry.path}: package.json of {name!r} has no version")
        name, version = name.strip(), version.strip()
        if name.count("/") > (1 if name.startswith("@") else 0):
            raise AnalyzerError(f"{entry.path}: {name!r} is not a valid npm package name")
        package = Package(
            name=name,
            version=version,
            type=PackageType.NPM,
            found_by=self.name,
            locations=(Location(entry.path, layer),),
            purl=_purl(name, version),
            licenses=_licenses(manifest),
        )
        return FileFindings(analyzer=self.name, path=entry.path, packages=(package,))
