"""Installed Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` files.

Wherever they are (site-packages, dist-packages, a venv, /usr/lib/python3/dist-packages), these
are the core-metadata documents pip, setuptools and distro packagers write for each installed
distribution. An `.egg-info` may also be a single file (older setuptools/distutils installs).
The document is RFC 822 headers; only the header block is read.
"""

from __future__ import annotations

import re
from email.parser import HeaderParser
from email.policy import compat32

from packageurl import PackageURL

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType

# PEP 508 distribution name, and the PEP 503 normalisation used for the purl.
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_NORMALISE_RE = re.compile(r"[-_.]+")
# A License field holding a whole licence text is not a licence name.
_MAX_LICENSE_LEN = 100


def normalise_name(name: str) -> str:
    """PEP 503 normalised form of a distribution name ("Foo_Bar.baz" -> "foo-bar-baz")."""
    return _NORMALISE_RE.sub("-", name).lower()


def _is_metadata_path(path: str) -> bool:
    if path.endswith(".dist-info/METADATA") or path.endswith(".egg-info/PKG-INFO"):
        return True
    # A single-file egg-info: "/usr/lib/python3/dist-packages/foo-1.0.egg-info".
    return path.endswith(".egg-info")


def _licenses(fields: dict[str, list[str]]) -> tuple[str, ...]:
    """Licences in order of precision: PEP 639 expression, License field, classifiers."""
    expression = _first(fields, "license-expression")
    if expression:
        return (expression,)
    declared = _first(fields, "license")
    if (
        declared
        and "\n" not in declared
        and len(declared) <= _MAX_LICENSE_LEN
        and declared.upper() != "UNKNOWN"
    ):
        return (declared,)
    found: list[str] = []
    for classifier in fields.get("classifier", []):
        parts = [p.strip() for p in classifier.split("::")]
        # "License :: OSI Approved" alone names no licence.
        named = parts[0] == "License" and len(parts) > 1 and parts[-1] != "OSI Approved"
        if named and parts[-1] not in found:
            found.append(parts[-1])
    return tuple(found)


def _first(fields: dict[str, list[str]], key: str) -> str:
    values = fields.get(key)
    return values[0].strip() if values else ""


def parse_metadata(text: str, source: str) -> dict[str, list[str]]:
    """The header fields of a core-metadata document, keyed by lower-case name.

    Raises `AnalyzerError` naming `source` when the header block lacks a Name or a Version.
    """
    message = HeaderParser(policy=compat32).parsestr(text, headersonly=True)
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key.lower(), []).append(str(value))
    if not _first(fields, "name") or not _first(fields, "version"):
        # A stray non-header line ends the header block early: say so, it is the likely cause.
        why = (
            f" (headers end early: {type(message.defects[0]).__name__})" if message.defects else ""
        )
        raise AnalyzerError(f"{source}: Python metadata without a Name and a Version{why}")
    return fields


class PythonAnalyzer(BufferedAnalyzer):
    """One `Package` of type pypi per dist-info/egg-info metadata document."""

    name = "python"
    version = 1
    max_size = 4 * 1024 * 1024

    def wants(self, entry: Entry) -> bool:
        return _is_metadata_path(entry.path)

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        if b"\0" in data:
            raise AnalyzerError(f"{entry.path}: binary data in a Python metadata file")
        text = data.decode("utf-8", errors="replace")
        fields = parse_metadata(text, entry.path)
        name = _first(fields, "name")
        version = _first(fields, "version")
        if not _NAME_RE.match(name):
            raise AnalyzerError(f"{entry.path}: {name!r} is not a valid distribution name")
        if any(c.isspace() for c in version):
            raise AnalyzerError(f"{entry.path}: {version!r} is not a valid version")
        purl = PackageURL(type="pypi", name=normalise_name(name), version=version).to_string()
        package = Package(
            name=name,
            version=version,
            type=PackageType.PYPI,
            found_by=self.name,
            locations=(Location(entry.path, layer),),
            purl=purl,
            licenses=_licenses(fields),
        )
        return FileFindings(analyzer=self.name, path=entry.path, packages=(package,))
