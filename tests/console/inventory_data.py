"""Realistic scan results for the console tests: a Debian 12 image with a critical, fixed
OpenSSL vulnerability (CVE-2023-5363, as Debian's tracker and OSV record it) and a medium one
without a fix, built as `ScanResult`s and sent as the `tidegate scan -f json` document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidegate.core.models import (
    Catalogue,
    Finding,
    FixState,
    ImageFacts,
    ImageInfo,
    LayerInfo,
    Location,
    MatchEvidence,
    OSInfo,
    Package,
    PackageType,
    ScanResult,
    Severity,
)
from tidegate.services.serialize import document_from_result

LAYER = "sha256:" + "1" * 64
CRITICAL = "CVE-2023-5363"
MEDIUM = "CVE-2024-0727"


def digest(n: int, kind: str = "a") -> str:
    return f"sha256:{kind * 56}{n:08x}"


def openssl(version: str = "3.0.11-1~deb12u1") -> Package:
    return Package(
        name="libssl3",
        version=version,
        type=PackageType.DEB,
        found_by="dpkg",
        locations=(Location("/var/lib/dpkg/status", LAYER),),
        purl=f"pkg:deb/debian/libssl3@{version}?arch=amd64&distro=debian-12",
        source_name="openssl",
        source_version=version,
        arch="amd64",
    )


def _finding(package: Package, vuln: str, severity: Severity, fixed: str | None) -> Finding:
    return Finding(
        id=vuln,
        aliases=(f"DEBIAN-{vuln}",),
        package=package,
        status=FixState.FIXED if fixed else FixState.AFFECTED,
        fixed_versions=(fixed,) if fixed else (),
        severity=severity,
        score=9.8 if severity is Severity.CRITICAL else 5.5,
        severity_source="CVSS:3.1 (NVD)",
        summary=f"{vuln} in OpenSSL",
        published=datetime(2023, 10, 25, tzinfo=UTC),
        fix_published=datetime(2023, 10, 26, tzinfo=UTC) if fixed else None,
        evidence=(
            MatchEvidence(
                record_id=f"DEBIAN-{vuln}",
                ecosystem="Debian:12",
                searched_name="openssl",
                matched_on="source",
                range=f"introduced 0, fixed {fixed}" if fixed else "introduced 0",
                matcher="dpkg",
            ),
        ),
    )


def scan_result(
    n: int = 1,
    *,
    registry: str = "registry.example.com",
    repository: str = "team-a/web",
    tag: str = "1.0",
    vulnerable: bool = True,
    labels: tuple[tuple[str, str], ...] = (("org.opencontainers.image.vendor", "team-a"),),
    packages: int = 0,
) -> ScanResult:
    ssl = openssl()
    extra = tuple(
        Package(
            name=f"pkg{i}",
            version=f"1.{i}-1",
            type=PackageType.DEB,
            found_by="dpkg",
            locations=(Location("/var/lib/dpkg/status", LAYER),),
            purl=f"pkg:deb/debian/pkg{i}@1.{i}-1?distro=debian-12",
        )
        for i in range(packages)
    )
    findings = (
        (
            _finding(ssl, CRITICAL, Severity.CRITICAL, "3.0.11-1~deb12u2"),
            _finding(ssl, MEDIUM, Severity.MEDIUM, None),
        )
        if vulnerable
        else ()
    )
    return ScanResult(
        image=ImageInfo(
            reference=f"{registry}/{repository}:{tag}",
            transport="docker",
            manifest_digest=digest(n),
            config_digest=digest(n, "c"),
            platform="linux/amd64",
            registry=registry,
            repository=repository,
            tag=tag,
            layers=(LayerInfo(LAYER, LAYER, 1234, "application/vnd.oci.image.layer.v1.tar+gzip"),),
            media_type="application/vnd.oci.image.manifest.v1+json",
        ),
        facts=ImageFacts(
            user="app",
            uid=1000,
            gid=1000,
            runs_as_root=False,
            labels=labels,
            created=datetime(2026, 2, 1, tzinfo=UTC),
            architecture="amd64",
            os="linux",
        ),
        catalogue=Catalogue(
            os=OSInfo(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)"),
            packages=(ssl, *extra),
        ),
        scanned_at=datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
        analyzers=(("dpkg", 1), ("os-release", 1)),
        findings=findings,
        db_snapshot="snap-1",
    )


def scan_document(n: int = 1, **kwargs: Any) -> dict[str, Any]:
    return document_from_result(scan_result(n, **kwargs))
