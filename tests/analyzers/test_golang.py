"""Go binaries: real binaries built by the Go toolchain, plus handcrafted build-info blobs.

The real binaries come from a module with a versioned dependency, a dependency replaced by
another module version and one replaced by a local directory, all served by a file:// GOPROXY
built here (no network). They are built once per toolchain and cached in ~/.cache/tidegate-tests.
What the analyzer reports is compared with what `go version -m` says about the same binary.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from util import LAYER, file_entry

from tidegate.analyzers._gobuildinfo import MAGIC, BuildInfoScanner, ScanState, parse_modinfo
from tidegate.analyzers.golang import GoBinaryAnalyzer, stdlib_version
from tidegate.analyzers.interface import AnalyzerError
from tidegate.core.models import FileFindings, PackageType

CACHE = Path(os.environ.get("TIDEGATE_TEST_CACHE", Path.home() / ".cache" / "tidegate-tests"))

_PROXY_MODULES = {
    # (module path, version): {file: content}; the zip paths get the "path@version/" prefix.
    ("example.com/dep", "v1.2.3"): {
        "go.mod": "module example.com/dep\n\ngo 1.18\n",
        "dep.go": 'package dep\n\nfunc Hello() string { return "dep" }\n',
    },
    ("example.com/old", "v1.0.0"): {
        "go.mod": "module example.com/old\n\ngo 1.18\n",
        "old.go": 'package old\n\nfunc Name() string { return "old" }\n',
    },
    ("example.com/new", "v1.1.0"): {
        # A replacement declares the path it replaces.
        "go.mod": "module example.com/old\n\ngo 1.18\n",
        "old.go": 'package old\n\nfunc Name() string { return "new" }\n',
    },
}
_APP = {
    "go.mod": """module example.com/app

go 1.18

require (
\texample.com/dep v1.2.3
\texample.com/local v0.0.0
\texample.com/old v1.0.0
)

replace example.com/old v1.0.0 => example.com/new v1.1.0

replace example.com/local => ./local
""",
    "main.go": """package main

import (
\t"fmt"

\t"example.com/dep"
\t"example.com/local"
\t"example.com/old"
)

var secret = "none"

func main() { fmt.Println(dep.Hello(), old.Name(), local.Where(), secret) }
""",
    "local/go.mod": "module example.com/local\n\ngo 1.18\n",
    "local/local.go": 'package local\n\nfunc Where() string { return "here" }\n',
}


def run_go(path: str, data: bytes, chunk_size: int = 4096) -> FileFindings:
    """Streams `data` as the executable `path` through the Go analyzer, as the scan does."""
    analyzer = GoBinaryAnalyzer()
    entry = file_entry(path, data, mode=0o755)
    assert analyzer.wants(entry)
    consumer = analyzer.begin(entry, LAYER)
    for start in range(0, len(data), chunk_size):
        consumer.feed(data[start : start + chunk_size])
    return consumer.finish()


TARGETS = [("linux", "amd64"), ("linux", "386"), ("windows", "amd64"), ("darwin", "arm64")]


def _write_proxy(root: Path) -> None:
    for (path, version), files in _PROXY_MODULES.items():
        mod_dir = root / path / "@v"
        mod_dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for name, content in files.items():
                zf.writestr(f"{path}@{version}/{name}", content)
        (mod_dir / f"{version}.zip").write_bytes(buffer.getvalue())
        (mod_dir / f"{version}.mod").write_text(files["go.mod"])
        info = {"Version": version, "Time": "2023-01-02T03:04:05Z"}
        (mod_dir / f"{version}.info").write_text(json.dumps(info))
        (mod_dir / "list").write_text(version + "\n")


def _go_env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GOPROXY": f"file://{work / 'proxy'}",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOMODCACHE": str(work / "modcache"),
        "GOCACHE": str(CACHE / "go-build-cache"),
        "GOTOOLCHAIN": "local",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
    }


def _build_all(work: Path) -> None:
    _write_proxy(work / "proxy")
    for name, content in _APP.items():
        (work / "app" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "app" / name).write_text(content)
    env = _go_env(work)
    for goos, goarch in TARGETS:
        out = work / "bin" / f"app-{goos}-{goarch}"
        subprocess.run(
            ["go", "build", "-ldflags", "-X main.secret=hunter2", "-o", str(out), "."],
            cwd=work / "app",
            env={**env, "GOOS": goos, "GOARCH": goarch},
            check=True,
            capture_output=True,
            timeout=600,
        )
    # The module cache is read-only by design; make it removable.
    subprocess.run(["go", "clean", "-modcache"], env=env, check=True, capture_output=True)


@pytest.fixture(scope="session")
def go_binaries() -> Path:
    """Directory of app-GOOS-GOARCH binaries, built once per toolchain and fixture content."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain is not installed (Debian package golang-go)")
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256(repr((version, _PROXY_MODULES, _APP, TARGETS)).encode()).hexdigest()
    target = CACHE / f"go-binaries-{key[:16]}"
    if (target / "complete").exists():
        return target / "bin"
    work = CACHE / f"go-binaries-{key[:16]}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _build_all(work)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"go build failed: {exc.stderr.decode(errors='replace')[-2000:]}")
    (work / "complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target / "bin"


def _go_version_m(binary: Path) -> dict[str, tuple[str, str]]:
    """{kind+path: (version, sum)} from `go version -m`, with replacements applied."""
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True)
    result: dict[str, tuple[str, str]] = {}
    last = ""
    for line in out.stdout.splitlines()[1:]:
        fields = line.strip("\t").split("\t")
        if fields[0] in ("mod", "dep"):
            last = fields[1]
            result[last] = (fields[2], fields[3] if len(fields) > 3 else "")
        elif fields[0] == "=>":
            result.pop(last)
            if fields[1].startswith("."):
                result[last] = ("(devel)", "")
            else:
                result[fields[1]] = (fields[2], fields[3] if len(fields) > 3 else "")
    return result


@pytest.mark.parametrize(("goos", "goarch"), TARGETS)
@pytest.mark.parametrize("chunk_size", [1 << 20, 4096, 1000])
def test_real_binary_matches_go_version_m(
    go_binaries: Path, goos: str, goarch: str, chunk_size: int
) -> None:
    binary = go_binaries / f"app-{goos}-{goarch}"
    data = binary.read_bytes()
    findings = run_go("/usr/local/bin/app", data, chunk_size=chunk_size)
    assert findings.unknowns == ()
    by_name = {p.name: p for p in findings.packages}
    expected = _go_version_m(binary)
    assert {n: p.version for n, p in by_name.items() if n != "stdlib"} == {
        n: v for n, (v, _) in expected.items()
    }
    assert set(expected) == {
        "example.com/app",
        "example.com/dep",
        "example.com/new",
        "example.com/local",
    }
    toolchain = subprocess.run(
        ["go", "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert by_name["stdlib"].version == stdlib_version(toolchain)
    assert by_name["stdlib"].purl == f"pkg:golang/stdlib@{stdlib_version(toolchain)}"
    for package in findings.packages:
        assert package.type is PackageType.GOLANG
        assert package.found_by == "go-binary"
        assert package.locations[0].path == "/usr/local/bin/app"
        assert package.locations[0].layer == LAYER
        assert ("go_toolchain", toolchain) in package.metadata


def test_real_binary_details(go_binaries: Path) -> None:
    data = (go_binaries / "app-linux-amd64").read_bytes()
    findings = run_go("/app", data, chunk_size=65536)
    by_name = {p.name: p for p in findings.packages}
    main = dict(by_name["example.com/app"].metadata)
    assert main["go_main_module"] == "true"
    assert main["go_main_package"] == "example.com/app"
    assert main["go_build:GOOS"] == "linux"
    assert main["go_build:GOARCH"] == "amd64"
    assert main["go_build:CGO_ENABLED"] == "0"
    # -ldflags may carry secrets (-X main.token=...): never kept.
    assert not any("hunter2" in v for p in findings.packages for _, v in p.metadata)
    dep = by_name["example.com/dep"]
    assert dep.purl == "pkg:golang/example.com/dep@v1.2.3"
    assert dict(dep.metadata)["go_sum"].startswith("h1:")
    assert "go_main_module" not in dict(dep.metadata)
    new = by_name["example.com/new"]
    assert (new.version, dict(new.metadata)["go_replaces"]) == ("v1.1.0", "example.com/old@v1.0.0")
    local = by_name["example.com/local"]
    assert (local.version, dict(local.metadata)["go_replaced_by"]) == ("(devel)", "./local")


@pytest.mark.parametrize(
    ("path", "mode", "size", "wanted"),
    [
        ("/usr/bin/app", 0o755, 10_000, True),
        ("/opt/tool", 0o700, 10_000, True),
        ("/usr/bin/app", 0o644, 10_000, False),
        ("/usr/bin/tiny", 0o755, 10, False),
    ],
)
def test_wants_executables_only(path: str, mode: int, size: int, wanted: bool) -> None:
    entry = file_entry(path, b"\0" * size, mode=mode)
    assert GoBinaryAnalyzer().wants(entry) is wanted


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
_SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")
_MODINFO = (
    "path\texample.com/cmd\n"
    "mod\texample.com/cmd\tv0.3.0\th1:abc=\n"
    "dep\tgolang.org/x/net\tv0.17.0\th1:net=\n"
    "dep\tgithub.com/a/b\tv1.0.0\th1:ab=\n"
    "=>\tgithub.com/fork/b\tv1.0.1\th1:fork=\n"
    'build\t-ldflags="-X main.key=s3cr3t"\n'
    "build\tGOOS=linux\n"
    "build\tvcs.revision=0123abcd\n"
)


def _blob(version: str = "go1.21.3", modinfo: str = _MODINFO, flags: int = 2) -> bytes:
    header = MAGIC + bytes([8, flags]) + b"\0" * 16
    framed = _SENTINEL_START + modinfo.encode() + _SENTINEL_END
    return header + _varint(len(version)) + version.encode() + _varint(len(framed)) + framed


def _binary(blob: bytes, at: int, decoys: bytes = b"") -> bytes:
    """An ELF-looking file with `decoys` early and the build info blob at offset `at`."""
    head = b"\x7fELF" + b"\x02\x01\x01" + b"\0" * 9 + decoys
    return head + b"\x90" * (at - len(head)) + blob + b"\0" * 100


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 13, 14, 15, 16, 17, 31, 64, 4096, 1 << 20])
@pytest.mark.parametrize("at", [4096, 4096 + 1024 + 16 * 7])
def test_blob_found_across_every_chunk_boundary(chunk_size: int, at: int) -> None:
    data = _binary(_blob(), at)
    findings = run_go("/bin/cmd", data, chunk_size=chunk_size)
    assert [(p.name, p.version) for p in findings.packages] == [
        ("example.com/cmd", "v0.3.0"),
        ("golang.org/x/net", "v0.17.0"),
        ("github.com/fork/b", "v1.0.1"),
        ("stdlib", "1.21.3"),
    ]
    cmd = dict(findings.packages[0].metadata)
    assert cmd["go_build:vcs.revision"] == "0123abcd"
    assert "go_build:-ldflags" not in cmd


@pytest.mark.parametrize("chunk_size", [5, 16, 100, 4096])
def test_misaligned_magic_and_fake_headers_are_skipped(chunk_size: int) -> None:
    # A misaligned magic (the debug/buildinfo string literal), then an aligned one whose header
    # is not build info (pointer size 0x41), before the real blob.
    decoys = b"\0" * 3 + MAGIC + b"AAAA" + b"\0" * (32 - 3 - len(MAGIC) - 4 - 16)
    decoys += MAGIC + b"A\x00" + b"\0" * 16
    data = _binary(_blob(), 8192, decoys=decoys)
    assert data.index(MAGIC) % 16 != 0
    findings = run_go("/bin/cmd", data, chunk_size=chunk_size)
    assert len(findings.packages) == 4


def test_pointer_format_is_an_unknown() -> None:
    data = _binary(MAGIC + bytes([8, 0]) + b"\x00\x10\x40\x00" * 4, 4096)
    findings = run_go("/bin/old", data)
    assert findings.packages == ()
    assert [u.reason for u in findings.unknowns] == [
        "Go < 1.18 build info needs random access; not read"
    ]
    assert findings.unknowns[0].where == "/bin/old"
    assert findings.unknowns[0].analyzer == "go-binary"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"#!/bin/sh\necho hi\n" * 10 + MAGIC + bytes([8, 2]), id="script"),
        pytest.param(b"\x7fELF" + b"\0" * 5000, id="elf-without-go"),
        pytest.param(_binary(_blob()[:20], 4096)[: 4096 + 20], id="truncated-header"),
        pytest.param(b"MZ" + b"\0" * 200, id="pe-without-go"),
    ],
)
def test_non_go_files_give_nothing(data: bytes) -> None:
    findings = run_go("/bin/x", data, chunk_size=7)
    assert findings.empty


def test_script_is_dropped_after_first_chunk() -> None:
    scanner = BuildInfoScanner()
    scanner.feed(b"#!/bin/sh\n")
    assert scanner.state is ScanState.NOT_EXECUTABLE


@pytest.mark.parametrize("cut", [34, 44, 100])
def test_truncated_blob_is_an_unknown(cut: int) -> None:
    data = _binary(_blob(), 4096)[: 4096 + cut]
    findings = run_go("/bin/cut", data, chunk_size=1000)
    assert findings.packages == ()
    assert [u.reason for u in findings.unknowns] == ["Go build info cut off by the end of the file"]


def test_malformed_modinfo_is_an_analyzer_error() -> None:
    data = _binary(_blob(modinfo="mod\tonly-one-field\ngarbage line\n"), 4096)
    with pytest.raises(AnalyzerError, match=r"/bin/bad: malformed Go module information"):
        run_go("/bin/bad", data)


def test_huge_declared_modinfo_is_not_buffered() -> None:
    blob = MAGIC + bytes([8, 2]) + b"\0" * 16 + _varint(8) + b"go1.21.3" + _varint(1 << 40)
    data = _binary(blob, 4096) + b"\0" * 10_000
    findings = run_go("/bin/bomb", data)
    assert findings.empty


@pytest.mark.parametrize(
    ("toolchain", "expected"),
    [
        ("go1.21.3", "1.21.3"),
        ("go1.21", "1.21.0"),
        ("go1.21rc2", "1.21.0-rc.2"),
        ("go1.18beta1", "1.18.0-beta.1"),
        ("go1.22.0 X:nocoverageredesign", "1.22.0"),
        ("devel go1.23-abcdef Tue Jan 2", None),
    ],
)
def test_stdlib_version(toolchain: str, expected: str | None) -> None:
    assert stdlib_version(toolchain) == expected


def test_parse_modinfo_settings_and_quoting() -> None:
    info = parse_modinfo(
        'path\tx\nmod\tx\t(devel)\t\nbuild\t"-gcflags=all"="-N -l"\nbuild\tGOOS=linux\n'
    )
    assert info.main is not None
    assert (info.main.path, info.main.version) == ("x", "(devel)")
    assert info.settings == (("-gcflags=all", "-N -l"), ("GOOS", "linux"))
