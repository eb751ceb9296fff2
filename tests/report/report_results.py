"""Scan results for the report tests, built in code: a Debian 12 image and an empty rootfs."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from tidegate.core.models import (
    Catalogue,
    EnvVar,
    Executable,
    Finding,
    FixState,
    HistoryEntry,
    ImageFacts,
    ImageInfo,
    LayerInfo,
    Location,
    MatchEvidence,
    OSInfo,
    Package,
    PackageType,
    ScanResult,
    Secret,
    Severity,
    Unknown,
)

BASE_LAYER = "sha256:" + "1" * 64
APP_LAYER = "sha256:" + "2" * 64
SCANNED_AT = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
FIXED_ID = UUID("0b5e8d0e-6a43-4cbb-9d4e-2f1a7c3e9b10")
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
"""The secret the image's settings.ini holds; the scan keeps only a redacted hint of it."""


def _deb(
    name: str,
    version: str,
    source: str | None = None,
    *,
    source_version: str | None = None,
    arch: str = "amd64",
    licenses: tuple[str, ...] = (),
) -> Package:
    qualifiers = f"arch={arch}&distro=debian-12"
    if source:
        qualifiers += f"&upstream={source}"
    return Package(
        name=name,
        version=version,
        type=PackageType.DEB,
        found_by="dpkg",
        locations=(Location("/var/lib/dpkg/status", BASE_LAYER),),
        purl=f"pkg:deb/debian/{name}@{version.replace(':', '%3A')}?{qualifiers}",
        source_name=source,
        source_version=(source_version or version) if source else None,
        arch=arch,
        licenses=licenses,
    )


OPENSSL = _deb(
    "libssl3", "3.0.11-1~deb12u1", "openssl", licenses=("Apache-2.0", "Artistic", "GPL-1+")
)
ZLIB = _deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", source_version="1.2.13.dfsg-1", licenses=("Zlib",))
BASE_FILES = _deb("base-files", "12.4+deb12u5", licenses=("GPL-2+", "public-domain"))
TZDATA = _deb("tzdata", "2024a-0+deb12u1", arch="all")
REQUESTS = Package(
    name="requests",
    version="2.31.0",
    type=PackageType.PYPI,
    found_by="python-dist",
    locations=(
        Location(
            "/app/.venv/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", APP_LAYER
        ),
    ),
    purl="pkg:pypi/requests@2.31.0",
    licenses=("Apache-2.0",),
)


def debian_result() -> ScanResult:
    """A Debian 12 image with an app layer: packages, a secret, an unknown and findings."""
    return ScanResult(
        image=_image(),
        facts=_facts(),
        catalogue=Catalogue(
            os=OSInfo(
                id="debian",
                version_id="12",
                pretty_name="Debian GNU/Linux 12 (bookworm)",
                version_codename="bookworm",
                source="/etc/os-release",
            ),
            packages=(TZDATA, REQUESTS, OPENSSL, BASE_FILES, ZLIB),
            executables=(
                Executable("/usr/bin/su", 0o4755, 72000, "a" * 64, layer=BASE_LAYER),
                Executable(
                    "/app/run.sh", 0o755, 120, "b" * 64, uid=1000, gid=1000, layer=APP_LAYER
                ),
                Executable("/usr/bin/wall", 0o2755, 35000, "c" * 64, gid=5, layer=BASE_LAYER),
            ),
            secrets=(
                Secret(
                    path="/app/config/settings.ini",
                    rule_id="aws-access-key-id",
                    title="AWS Access Key ID",
                    severity="critical",
                    line=7,
                    layer=APP_LAYER,
                    redacted="AKIA****************",
                ),
            ),
            unknowns=(
                Unknown(
                    where="/app/.venv/lib/python3.11/site-packages/broken-1.0.dist-info/METADATA",
                    reason="not a valid core metadata file: missing Name",
                    analyzer="python-dist",
                    layer=APP_LAYER,
                ),
            ),
        ),
        scanned_at=SCANNED_AT,
        analyzers=(("secrets", 1), ("dpkg", 2), ("os-release", 1), ("python-dist", 1)),
        findings=_findings(),
        db_snapshot="2026-03-01T00:00:00Z-4f2a",
    )


def _image() -> ImageInfo:
    return ImageInfo(
        reference="registry.example.com/shop/api:1.4.2",
        transport="docker",
        manifest_digest="sha256:" + "d" * 64,
        config_digest="sha256:" + "c" * 64,
        platform="linux/amd64",
        registry="registry.example.com",
        repository="shop/api",
        tag="1.4.2",
        layers=(
            LayerInfo(
                "sha256:" + "e" * 64,
                BASE_LAYER,
                29_000_000,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            LayerInfo(
                "sha256:" + "f" * 64,
                APP_LAYER,
                4_200_000,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
        ),
        media_type="application/vnd.oci.image.manifest.v1+json",
    )


def _facts() -> ImageFacts:
    return ImageFacts(
        user="app",
        uid=1000,
        gid=1000,
        runs_as_root=False,
        labels=(
            ("org.opencontainers.image.source", "https://git.example.com/shop/api"),
            ("owner", "team-shop"),
        ),
        env=(
            EnvVar("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            EnvVar(
                "AWS_SECRET_ACCESS_KEY",
                "<redacted>",
                looks_secret=True,
                rule_id="aws-secret-access-key",
            ),
        ),
        exposed_ports=("8080/tcp",),
        entrypoint=("/app/run.sh",),
        cmd=("--port", "8080"),
        working_dir="/app",
        created=datetime(2026, 2, 27, 9, 0, tzinfo=UTC),
        architecture="amd64",
        os="linux",
        history=(
            HistoryEntry(datetime(2026, 2, 1, tzinfo=UTC), "/bin/sh -c #(nop) ADD file:abc in / "),
            HistoryEntry(datetime(2026, 2, 27, 9, 0, tzinfo=UTC), "COPY app /app # buildkit"),
            HistoryEntry(datetime(2026, 2, 27, 9, 0, tzinfo=UTC), "USER app", empty_layer=True),
        ),
        base_image="docker.io/library/debian:12-slim",
    )


def _findings() -> tuple[Finding, ...]:
    return (
        Finding(
            id="CVE-2023-5678",
            aliases=("DEBIAN-CVE-2023-5678",),
            package=OPENSSL,
            status=FixState.FIXED,
            fixed_versions=("3.0.11-1~deb12u2",),
            severity=Severity.MEDIUM,
            score=5.3,
            severity_source="CVSS:3.1 (NVD)",
            cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L",
            summary="Excessive time spent in DH check / generation with large Q parameter value",
            published=datetime(2023, 11, 6, 16, 15, tzinfo=UTC),
            fix_published=datetime(2023, 11, 22, tzinfo=UTC),
            references=("https://www.openssl.org/news/secadv/20231106.txt",),
            evidence=(
                MatchEvidence(
                    record_id="DEBIAN-CVE-2023-5678",
                    ecosystem="Debian:12",
                    searched_name="openssl",
                    matched_on="source",
                    range="introduced 0, fixed 3.0.11-1~deb12u2",
                    matcher="dpkg",
                ),
            ),
        ),
        Finding(
            id="CVE-2023-45853",
            aliases=(),
            package=ZLIB,
            status=FixState.WONT_FIX,
            severity=Severity.CRITICAL,
            score=9.8,
            severity_source="CVSS:3.1 (NVD)",
            cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            summary="MiniZip in zlib through 1.3 has an integer overflow",
            published=datetime(2023, 10, 14, 2, 15, tzinfo=UTC),
            evidence=(
                MatchEvidence(
                    record_id="DEBIAN-CVE-2023-45853",
                    ecosystem="Debian:12",
                    searched_name="zlib",
                    matched_on="source",
                    range="introduced 0",
                    matcher="dpkg",
                ),
            ),
        ),
        Finding(
            id="GHSA-j8r2-6x86-q33q",
            aliases=("CVE-2023-32681", "PYSEC-2023-74"),
            package=REQUESTS,
            status=FixState.AFFECTED,
            severity=Severity.UNKNOWN,
            summary="Unintended leak of Proxy-Authorization header in requests",
            evidence=(
                MatchEvidence(
                    record_id="GHSA-j8r2-6x86-q33q",
                    ecosystem="PyPI",
                    searched_name="requests",
                    matched_on="name",
                    range="introduced 2.3.0, fixed 2.31.1",
                    matcher="python",
                ),
            ),
        ),
    )


def minimal_result() -> ScanResult:
    """A `dir:` root filesystem with nothing recognisable in it: every optional part empty."""
    return ScanResult(
        image=ImageInfo(reference="dir:/tmp/rootfs", transport="dir"),
        facts=ImageFacts(),
        catalogue=Catalogue(),
        scanned_at=SCANNED_AT,
    )
