"""Go binaries: the modules a Go program was built from, read from its embedded build info.

Every executable regular file is streamed through a `BuildInfoScanner` (see `_gobuildinfo`):
nothing is buffered, and a file that does not start like an ELF, Mach-O or PE binary is dropped
after its first bytes. From the build info come one package per module: the main module
(metadata `go_main_module=true`, with its build settings), each dependency (the replacement when
a `=>` line replaces it), and the Go standard library as package `stdlib`.

The stdlib version follows OSV's Go ecosystem: semver without the "v" ("go1.21.3" -> "1.21.3",
"go1.21" -> "1.21.0", "go1.21rc2" -> "1.21.0-rc.2"), so it matches OSV's `stdlib` records as is.
The toolchain string itself is kept as metadata `go_toolchain` on every package.
"""

from __future__ import annotations

import re

from packageurl import PackageURL

from tidegate.analyzers._gobuildinfo import (
    BuildInfoScanner,
    ModInfo,
    ModInfoError,
    Module,
    ScanState,
    parse_modinfo,
)
from tidegate.analyzers.interface import AnalyzerError
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType, Unknown

_GO_VERSION_RE = re.compile(r"^go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?$")
_SMALLEST_BINARY = 64
"""No ELF, Mach-O or PE binary is smaller than its headers."""
# Build settings worth keeping: they identify the build without leaking secrets
# (-ldflags "-X main.token=..." is a known way to bake credentials into a binary).
_KEPT_SETTINGS = frozenset(
    {
        "-buildmode",
        "-compiler",
        "-trimpath",
        "CGO_ENABLED",
        "GOARCH",
        "GOOS",
        "GOAMD64",
        "GOARM",
        "GOARM64",
        "GO386",
        "GOEXPERIMENT",
        "GOFIPS140",
        "vcs",
        "vcs.modified",
        "vcs.revision",
        "vcs.time",
    }
)

_UNREADABLE = {
    ScanState.POINTER_FORMAT: "Go < 1.18 build info needs random access; not read",
    ScanState.TRUNCATED: "Go build info cut off by the end of the file",
}


def stdlib_version(toolchain: str) -> str | None:
    """OSV's version of the standard library of a Go toolchain; None for devel builds."""
    # "go1.22.0 X:nocoverageredesign": experiments follow the version after a space.
    match = _GO_VERSION_RE.match(toolchain.split(" ", 1)[0])
    if match is None:
        return None
    major, minor, patch, pre, pre_n = match.groups()
    version = f"{major}.{minor}.{patch or 0}"
    return f"{version}-{pre}.{pre_n}" if pre else version


def _is_directory(path: str) -> bool:
    """A replacement by a file system path rather than a module (modfile.IsDirectoryPath)."""
    return (
        path in (".", "..")
        or path.startswith(("./", "../", "/", ".\\", "..\\"))
        or (len(path) > 2 and path[1] == ":" and path[2] in "/\\")
    )


def _purl(path: str, version: str) -> str:
    namespace, _, name = path.rpartition("/")
    return PackageURL(
        type="golang", namespace=namespace or None, name=name, version=version or None
    ).to_string()


class _Findings:
    """Turns one binary's build info into packages."""

    def __init__(self, entry: Entry, layer: str | None, toolchain: str) -> None:
        self.location = Location(entry.path, layer)
        self.toolchain = toolchain

    def package(self, module: Module, extra: list[tuple[str, str]]) -> Package:
        metadata = [("go_toolchain", self.toolchain), *extra]
        name, version = module.path, module.version
        if module.replace is not None:
            if _is_directory(module.replace.path):
                # Replaced by a local directory: the module keeps its name, its code is whatever
                # that directory held (go writes the version "(devel)" or nothing).
                version = "(devel)"
                metadata.append(("go_replaced_by", module.replace.path))
            else:
                name, version = module.replace.path, module.replace.version
                metadata.append(("go_replaces", f"{module.path}@{module.version}"))
        source = module.replace.sum if module.replace is not None else module.sum
        if source:
            metadata.append(("go_sum", source))
        return Package(
            name=name,
            version=version or "(devel)",
            type=PackageType.GOLANG,
            found_by=GoBinaryAnalyzer.name,
            locations=(self.location,),
            purl=_purl(name, version),
            metadata=tuple(sorted(metadata)),
        )

    def stdlib(self) -> Package | None:
        version = stdlib_version(self.toolchain)
        if version is None:
            return None
        return Package(
            name="stdlib",
            version=version,
            type=PackageType.GOLANG,
            found_by=GoBinaryAnalyzer.name,
            locations=(self.location,),
            purl=_purl("stdlib", version),
            metadata=(("go_toolchain", self.toolchain),),
        )

    def all(self, info: ModInfo) -> tuple[Package, ...]:
        packages: list[Package] = []
        if info.main is not None:
            settings = [(f"go_build:{k}", v) for k, v in info.settings if k in _KEPT_SETTINGS]
            main_extra = [("go_main_module", "true"), ("go_main_package", info.path), *settings]
            packages.append(self.package(info.main, main_extra))
        packages.extend(self.package(dep, []) for dep in info.deps)
        stdlib = self.stdlib()
        if stdlib is not None:
            packages.append(stdlib)
        return tuple(packages)


class _GoConsumer:
    __slots__ = ("_entry", "_layer", "_scanner")

    def __init__(self, entry: Entry, layer: str | None) -> None:
        self._entry = entry
        self._layer = layer
        self._scanner = BuildInfoScanner()

    def feed(self, chunk: bytes) -> None:
        self._scanner.feed(chunk)

    def finish(self) -> FileFindings:
        scanner, path = self._scanner, self._entry.path
        scanner.finish()
        reason = _UNREADABLE.get(scanner.state)
        if reason is not None:
            unknown = Unknown(path, reason, GoBinaryAnalyzer.name, self._layer)
            return FileFindings(analyzer=GoBinaryAnalyzer.name, path=path, unknowns=(unknown,))
        if scanner.state is not ScanState.FOUND:
            return FileFindings(analyzer=GoBinaryAnalyzer.name, path=path)
        try:
            info = parse_modinfo(scanner.modinfo)
        except ModInfoError as exc:
            raise AnalyzerError(f"{path}: malformed Go module information: {exc}") from exc
        packages = _Findings(self._entry, self._layer, scanner.version).all(info)
        return FileFindings(analyzer=GoBinaryAnalyzer.name, path=path, packages=packages)


class GoBinaryAnalyzer:
    """Modules and Go version of Go binaries, streamed (binaries are never buffered)."""

    name = "go-binary"
    version = 1

    def wants(self, entry: Entry) -> bool:
        return entry.is_executable and entry.size >= _SMALLEST_BINARY

    def begin(self, entry: Entry, layer: str | None) -> _GoConsumer:
        return _GoConsumer(entry, layer)
