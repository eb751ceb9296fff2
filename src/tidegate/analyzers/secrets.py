"""Secrets left in image files: private keys, cloud keys, tokens, passwords in config files.

Which files are read (`wants`):
- regular files up to 2 MiB, not binary (a NUL byte in the first 8 KiB ends the reading);
- not in places that are noisy and never hold the image owner's secrets: documentation, man
  pages, locales, C headers, CA bundles, package manager databases, and /usr/lib, where the
  distribution's and vendors' software lives (its embedded strings are theirs: the Google Cloud
  SDK, for one, ships Google's own public API keys there);
- not compiled or compressed artefacts (.pyc, .so, .jar, .gz, images, fonts ...);
- key files (*.pem, *.key, id_rsa ...) are read even inside those places.

Allow rule, in force even for key files: test fixtures and examples of third-party code.
Libraries ship well-known test keys and tokens (cryptography, paramiko, boto, node modules,
Python's own test suite ...) under `test`/`tests`/`testdata`/`fixtures`/`examples` folders
and in Go `_test.go` files.
Inside a package tree (anything under /usr, site-packages, dist-packages, node_modules, the Go
module cache, Ruby gems, vendor/, third_party/) and in Python's standard library those folders are
skipped, as Trivy's built-in allow rules do. The application's own tests (e.g. /app/tests) are
scanned: a key there was put there by the image's owner.

The generic `password = value` rule runs only on configuration files (.env, *.conf, *.ini,
*.yaml, *.properties ...), where such a line is a setting rather than a program variable.
"""

from __future__ import annotations

import re

from tidegate.analyzers.interface import FileConsumer
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import FileFindings, Secret
from tidegate.core.secrets_rules import find_secrets

MAX_SIZE = 2 * 1024 * 1024
BINARY_PROBE = 8 * 1024

_NOISY_PREFIXES = (
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/i18n/",
    "/usr/share/zoneinfo/",
    "/usr/share/mime/",
    "/usr/share/terminfo/",
    "/usr/share/ca-certificates/",
    "/usr/share/pki/",
    "/usr/include/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/libexec/",
    "/usr/local/include/",
    "/usr/lib/locale/",
    "/etc/ssl/certs/",
    "/etc/pki/ca-trust/",
    "/var/lib/dpkg/",
    "/var/lib/apt/",
    "/var/cache/apt/",
    "/var/cache/debconf/",
    "/var/lib/rpm/",
    "/usr/lib/sysimage/rpm/",
    "/var/cache/dnf/",
    "/var/cache/yum/",
    "/lib/apk/db/",
    "/var/cache/apk/",
    "/proc/",
    "/sys/",
    "/dev/",
)
_THIRD_PARTY_FIXTURES = re.compile(
    r"(?:^/usr/|/(?:site-packages|dist-packages|node_modules|pkg/mod|gems|vendor|vendored"
    r"|third_party)/)(?:.*/)?(?:tests?|testing|testdata|test_data|__tests__|fixtures?|spec"
    r"|examples?)/"
    # Go test files of vendored modules and of the Go toolchain's own sources.
    r"|(?:^/usr/|/(?:pkg/mod|vendor|go)/).*_test\.go$"
    # Python's standard library test suite, wherever the interpreter lives (/usr, pyenv, /opt).
    r"|/lib(?:64)?/python[0-9.]+/(?:test|lib2to3/tests)/"
)
_SKIPPED_SUFFIXES = (
    ".pyc",
    ".pyo",
    ".so",
    ".a",
    ".o",
    ".class",
    ".jar",
    ".war",
    ".ear",
    ".whl",
    ".egg",
    ".zip",
    ".gz",
    ".tgz",
    ".xz",
    ".bz2",
    ".zst",
    ".lz4",
    ".7z",
    ".deb",
    ".rpm",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".webp",
    ".bmp",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".mo",
    ".pdf",
    ".wasm",
    ".db",
    ".sqlite",
    ".mp3",
    ".mp4",
)
_SHARED_LIBRARY = re.compile(r"\.so(?:\.[0-9]+)+$")
_KEY_SUFFIXES = (".pem", ".key", ".p8")
_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", "identity"}
)
_CONFIG_SUFFIXES = (
    ".env",
    ".conf",
    ".cnf",
    ".cfg",
    ".ini",
    ".yaml",
    ".yml",
    ".properties",
    ".toml",
)


def is_key_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(_KEY_SUFFIXES) or name in _KEY_NAMES


def is_config_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(_CONFIG_SUFFIXES) or name == ".env" or name.startswith(".env.")


def is_skipped_path(path: str) -> bool:
    """True for paths never scanned: vendored test fixtures, noisy places, binary artefacts."""
    if _THIRD_PARTY_FIXTURES.search(path):
        return True
    if is_key_file(path):
        return False
    if path.startswith(_NOISY_PREFIXES):
        return True
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(_SKIPPED_SUFFIXES) or bool(_SHARED_LIBRARY.search(name))


class SecretsAnalyzer:
    """Finds secrets in text files by the rules of `core.secrets_rules`."""

    name = "secrets"
    version = 1

    def wants(self, entry: Entry) -> bool:
        return (
            entry.kind is EntryKind.FILE
            and 0 < entry.size <= MAX_SIZE
            and not is_skipped_path(entry.path)
        )

    def begin(self, entry: Entry, layer: str | None) -> FileConsumer:
        return _Scanner(self.name, entry, layer)


class _Scanner:
    __slots__ = ("_analyzer", "_binary", "_chunks", "_entry", "_layer", "_size")

    def __init__(self, analyzer: str, entry: Entry, layer: str | None) -> None:
        self._analyzer = analyzer
        self._entry = entry
        self._layer = layer
        self._chunks: list[bytes] = []
        self._size = 0
        self._binary = False

    def feed(self, chunk: bytes) -> None:
        if self._binary:
            return
        if self._size < BINARY_PROBE and b"\x00" in chunk[: BINARY_PROBE - self._size]:
            self._binary = True
            self._chunks.clear()
            return
        self._size += len(chunk)
        if self._size > MAX_SIZE:
            # The header under-stated the size: stop rather than hold an unbounded file.
            self._binary = True
            self._chunks.clear()
            return
        self._chunks.append(chunk)

    def finish(self) -> FileFindings:
        entry = self._entry
        if self._binary or not self._chunks:
            return FileFindings(analyzer=self._analyzer, path=entry.path)
        text = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        secrets = tuple(
            Secret(
                path=entry.path,
                rule_id=match.rule.id,
                title=match.rule.title,
                severity=match.rule.severity,
                line=match.line,
                layer=self._layer,
                redacted=match.redacted,
            )
            for match in find_secrets(text, assignments=is_config_file(entry.path))
        )
        return FileFindings(analyzer=self._analyzer, path=entry.path, secrets=secrets)
