"""Java archives: jar, war, ear (and Jenkins' jpi/hpi), with the archives nested inside them.

Each `META-INF/maven/GROUP/ARTIFACT/pom.properties` names one Maven artifact (a shaded jar names
several). An archive without one is identified from its `META-INF/MANIFEST.MF` and its file name
(`artifact-1.2.3.jar`). Archives inside archives (WEB-INF/lib, BOOT-INF/lib, an ear's modules) are
opened in memory, depth-first, up to `MAX_DEPTH`; their packages are located as
"/app/a.war!/WEB-INF/lib/b.jar". Every byte decompressed counts against one budget per top-level
archive, so a zip bomb or a nest of them ends as an Unknown, not an exhausted machine.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field

from packageurl import PackageURL

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType, Unknown

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
MAX_DEPTH = 4
"""Nesting levels opened below the top-level archive."""
MAX_NESTED_SIZE = 128 * 1024 * 1024
"""Largest nested archive read into memory."""
MAX_TOTAL_READ = 1024 * 1024 * 1024
"""Decompressed bytes read per top-level archive, nested archives included."""
MAX_TEXT_SIZE = 1024 * 1024
"""Largest pom.properties or MANIFEST.MF read."""

_POM_RE = re.compile(r"^META-INF/maven/([^/]+)/([^/]+)/pom\.properties$")
# "commons-lang3-3.12.0", "guava-31.1-jre", "spring-core-5.3.20.RELEASE"
_FILENAME_RE = re.compile(r"^(?P<artifact>[A-Za-z0-9_.+-]+?)-(?P<version>\d[A-Za-z0-9_.+-]*)$")
_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")
# What zipfile raises for corrupt, truncated, encrypted or exotic archives.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    ValueError,
    NotImplementedError,
)


class _BudgetExceeded(Exception):
    """The top-level archive's decompression budget is spent."""


@dataclass(slots=True)
class _Walk:
    """State of one top-level archive's walk: what was found and what is left to spend."""

    layer: str | None
    budget: int
    max_depth: int
    max_nested_size: int
    packages: dict[tuple[str, str, str, str], Package] = field(default_factory=dict)
    unknowns: list[Unknown] = field(default_factory=list)

    def unknown(self, where: str, reason: str) -> None:
        self.unknowns.append(Unknown(where, reason, JavaAnalyzer.name, self.layer))

    def read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
        """Read one member, refusing it if it is larger than `limit` or the budget."""
        if info.file_size > limit:
            raise _TooLarge(info.file_size)
        if info.file_size > self.budget:
            raise _BudgetExceeded
        with zf.open(info) as member:
            # The declared size may lie; never decompress more than what is allowed.
            data = member.read(min(limit, self.budget) + 1)
        self.budget -= len(data)
        if len(data) > limit:
            raise _TooLarge(len(data))
        return data

    def read_text(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> str | None:
        """A small metadata member as text; None (and an Unknown) when it is too large."""
        try:
            return self.read(zf, info, MAX_TEXT_SIZE).decode("utf-8", "replace")
        except _TooLarge as exc:
            self.unknown(f"{where}!/{info.filename}", f"{exc.size} bytes: too large to be metadata")
            return None


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def parse_properties(text: str) -> dict[str, str]:
    """A Java .properties document (comments, `=`/`:`/space separators, continuations, escapes)."""
    result: dict[str, str] = {}
    for line in _logical_lines(text):
        match = re.match(r"^((?:\\.|[^=:\s\\])*)\s*[=:\s]?\s*(.*)$", line)
        if match and match.group(1):
            result[_unescape(match.group(1))] = _unescape(match.group(2))
    return result


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        part = raw.lstrip()
        if not current and (not part or part[0] in "#!"):
            continue
        trailing = len(part) - len(part.rstrip("\\"))
        if trailing % 2 == 1:  # an odd number of backslashes continues the line
            current += part[:-1]
            continue
        lines.append(current + part)
        current = ""
    if current:
        lines.append(current)
    return lines


def _unescape(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("u") and len(escaped) == 5:
            return chr(int(escaped[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(escaped, escaped)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, value)


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF (72-byte lines continued by a leading space)."""
    result: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last:
            result[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip():
            last = key.strip()
            result[last] = value.strip()
    return result


def _maven_package(
    group: str, artifact: str, version: str, where: str, walk: _Walk, source: str
) -> Package:
    name = f"{group}:{artifact}" if group else artifact
    purl = PackageURL(type="maven", namespace=group or None, name=artifact, version=version)
    return Package(
        name=name,
        version=version,
        type=PackageType.MAVEN,
        found_by=JavaAnalyzer.name,
        locations=(Location(where, walk.layer),),
        purl=purl.to_string(),
        metadata=(("java_name_source", source),),
    )


def _from_pom(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, walk: _Walk
) -> Package | None:
    match = _POM_RE.match(info.filename)
    assert match is not None
    text = walk.read_text(zf, info, where)
    if text is None:
        return None
    props = parse_properties(text)
    group = props.get("groupId", match.group(1)).strip()
    artifact = props.get("artifactId", match.group(2)).strip()
    version = props.get("version", "").strip()
    if not (group and artifact and version):
        walk.unknown(
            f"{where}!/{info.filename}", "pom.properties without groupId, artifactId or version"
        )
        return None
    return _maven_package(group, artifact, version, where, walk, "pom.properties")


def _group_from_manifest(manifest: dict[str, str], artifact: str) -> str:
    """A groupId from the manifest, only when the manifest makes it plain."""
    vendor_id = manifest.get("Implementation-Vendor-Id", "").strip()
    if _GROUP_RE.match(vendor_id):
        return vendor_id
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    if not _GROUP_RE.match(symbolic):
        return ""
    # "com.fasterxml.jackson.core.jackson-databind" ends with the artifact: the rest is the group.
    if artifact and symbolic.endswith("." + artifact):
        return symbolic[: -len(artifact) - 1]
    if symbolic.count(".") >= 2:  # "org.apache.commons.lang3" -> "org.apache.commons"
        return symbolic.rsplit(".", 1)[0]
    return ""


def _read_manifest(zf: zipfile.ZipFile, where: str, walk: _Walk) -> dict[str, str]:
    try:
        info = zf.getinfo("META-INF/MANIFEST.MF")
    except KeyError:
        return {}
    text = walk.read_text(zf, info, where)
    return parse_manifest(text) if text is not None else {}


def _from_manifest(zf: zipfile.ZipFile, where: str, walk: _Walk) -> Package | None:
    """Identify an archive without pom.properties from its manifest and file name."""
    manifest = _read_manifest(zf, where, walk)
    stem = where.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    from_name = _FILENAME_RE.match(stem)
    name_version = from_name.group("version") if from_name else ""
    artifact = from_name.group("artifact") if from_name else ""
    if not artifact:
        title = (
            manifest.get("Implementation-Title") or manifest.get("Specification-Title") or ""
        ).strip()
        artifact = title if re.fullmatch(r"[A-Za-z0-9_.-]+", title) else stem
    version = (
        manifest.get("Implementation-Version")
        or manifest.get("Bundle-Version")
        or manifest.get("Specification-Version")
        or name_version
    ).strip()
    if not version:
        return None
    group = _group_from_manifest(manifest, artifact)
    source = "manifest" if group or version != name_version else "filename"
    return _maven_package(group, artifact, version, where, walk, source)


def _walk_archive(data: bytes, where: str, depth: int, walk: _Walk) -> None:
    """Catalogue one archive and, depth-first, the archives inside it."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        poms = [i for i in members if _POM_RE.match(i.filename)]
        found = (
            [_from_pom(zf, i, where, walk) for i in poms]
            if poms
            else [_from_manifest(zf, where, walk)]
        )
        for package in found:
            if package is not None:
                walk.packages.setdefault(package.key, package)
        for info in members:
            if info.filename.lower().endswith(ARCHIVE_SUFFIXES):
                _walk_nested(zf, info, f"{where}!/{info.filename}", depth + 1, walk)


def _walk_nested(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, depth: int, walk: _Walk
) -> None:
    if depth > walk.max_depth:
        walk.unknown(where, f"archive nested deeper than {walk.max_depth} levels; not read")
        return
    try:
        data = walk.read(zf, info, walk.max_nested_size)
        _walk_archive(data, where, depth, walk)
    except _TooLarge as exc:
        limit = walk.max_nested_size
        walk.unknown(where, f"nested archive of {exc.size} bytes exceeds {limit}; not read")
    except _ZIP_ERRORS as exc:
        walk.unknown(where, f"nested archive cannot be read: {exc}")


class JavaAnalyzer(BufferedAnalyzer):
    """Maven packages of a Java archive and of the archives nested in it."""

    name = "java"
    version = 1
    max_size = 256 * 1024 * 1024

    def __init__(
        self,
        *,
        max_depth: int = MAX_DEPTH,
        max_nested_size: int = MAX_NESTED_SIZE,
        max_total_read: int = MAX_TOTAL_READ,
    ) -> None:
        self.max_depth = max_depth
        self.max_nested_size = max_nested_size
        self.max_total_read = max_total_read

    def wants(self, entry: Entry) -> bool:
        return entry.path.lower().endswith(ARCHIVE_SUFFIXES)

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        walk = _Walk(layer, self.max_total_read, self.max_depth, self.max_nested_size)
        try:
            _walk_archive(data, entry.path, 0, walk)
        except _BudgetExceeded:
            walk.unknown(
                entry.path,
                f"more than {self.max_total_read} bytes decompressed (zip bomb?); "
                "the rest was not read",
            )
        except _ZIP_ERRORS as exc:
            if not walk.packages:
                raise AnalyzerError(f"{entry.path}: not a readable zip archive ({exc})") from exc
            walk.unknown(entry.path, f"archive partly unreadable: {exc}")
        return FileFindings(
            analyzer=self.name,
            path=entry.path,
            packages=tuple(walk.packages.values()),
            unknowns=tuple(walk.unknowns),
        )
