"""What every report format derives the same way: order, references and ids.

Documents list packages and findings in one stable order, name each package with one stable
reference (CycloneDX bom-ref, SPDX id, JSON package ref), and derive their document id from the
image identity and the scan time, so two writes of one result are byte-identical.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from uuid import UUID, uuid5

from packageurl import PackageURL

from tidegate.core.models import Finding, Package, ScanResult, Severity

_NAMESPACE = UUID("6f1e2b3c-7d4a-5e8f-9a0b-1c2d3e4f5a6b")
"""Fixed uuid5 namespace for Tidegate document ids (any constant would do; this one is ours)."""

_SPDX_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def package_order(package: Package) -> tuple[str, str, str, str, str]:
    """Sort key: ecosystem, name, version, first path, purl."""
    return (*package.key, package.purl)


def sorted_packages(result: ScanResult) -> list[Package]:
    return sorted(result.catalogue.packages, key=package_order)


def finding_order(finding: Finding) -> tuple[int, str, tuple[str, str, str, str, str]]:
    """Sort key: most severe first, then id, then package."""
    return (-finding.severity.rank, finding.id, package_order(finding.package))


def sorted_findings(result: ScanResult) -> list[Finding]:
    return sorted(result.findings, key=finding_order)


def package_ref(package: Package) -> str:
    """The package's natural reference: its purl (or type:name@version when it has none)."""
    return package.purl or f"{package.type.value}:{package.name}@{package.version}"


def unique_package_refs(packages: list[Package]) -> dict[tuple[str, str, str, str], str]:
    """Map each package key to a reference unique among `packages`.

    The purl names most packages alone; copies of one package at several paths (a jar vendored
    twice) share it, so a short hash of the first path tells those apart, and a counter settles
    whatever still collides.
    """
    natural: Counter[str] = Counter(package_ref(p) for p in {p.key: p for p in packages}.values())
    refs: dict[tuple[str, str, str, str], str] = {}
    taken: set[str] = set()
    for package in packages:
        if package.key in refs:
            continue
        ref = package_ref(package)
        if natural[ref] > 1:
            path = package.locations[0].path if package.locations else ""
            ref = f"{ref}#{_short_hash(path)}"
        candidate, n = ref, 1
        while candidate in taken:
            n += 1
            candidate = f"{ref}-{n}"
        taken.add(candidate)
        refs[package.key] = candidate
    return refs


def spdx_id(prefix: str, *parts: str) -> str:
    """An SPDX element id ("SPDXRef-" + letters, digits, "." and "-") unique for `parts`."""
    readable = _SPDX_UNSAFE.sub("-", "-".join(parts[:2])).strip("-")[:60]
    return f"SPDXRef-{prefix}-{readable}-{_short_hash(*parts)}"


def image_name(result: ScanResult) -> str:
    """The image's human name: registry/repository when known, else the reference as given."""
    image = result.image
    if image.repository:
        return f"{image.registry}/{image.repository}" if image.registry else image.repository
    return image.reference


def image_version(result: ScanResult) -> str:
    """The image's immutable identity: manifest digest, else config digest, else its tag."""
    image = result.image
    return image.manifest_digest or image.config_digest or image.tag or "unknown"


def document_id(result: ScanResult, given: UUID | None) -> UUID:
    """`given`, or a uuid5 of the image identity and scan time (stable for one result)."""
    if given is not None:
        return given
    image = result.image
    seed = "\n".join(
        (
            image.reference,
            image.manifest_digest or "",
            image.config_digest or "",
            result.scanned_at.isoformat(),
        )
    )
    return uuid5(_NAMESPACE, seed)


def severity_counts(result: ScanResult) -> dict[Severity, int]:
    """Findings per severity, every severity present, most severe first."""
    counts = Counter(f.severity for f in result.findings)
    return {s: counts.get(s, 0) for s in sorted(Severity, key=lambda s: -s.rank)}


def package_type_counts(result: ScanResult) -> dict[str, int]:
    counts = Counter(p.type.value for p in result.catalogue.packages)
    return dict(sorted(counts.items()))


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def image_purl(result: ScanResult) -> str | None:
    """The image as an OCI purl (pkg:oci/NAME@DIGEST?repository_url=...&tag=...), if it has a
    manifest digest; the purl spec names an OCI artifact by digest only."""
    image = result.image
    if not image.manifest_digest:
        return None
    repository = image.repository or ""
    name = repository.rsplit("/", 1)[-1] or image.reference.rsplit("/", 1)[-1]
    name = re.split(r"[:@]", name, maxsplit=1)[0] or "image"
    qualifiers: dict[str, str] = {}
    if image.repository:
        qualifiers["repository_url"] = (
            f"{image.registry}/{image.repository}" if image.registry else image.repository
        )
    if image.tag:
        qualifiers["tag"] = image.tag
    if image.platform and "/" in image.platform:
        qualifiers["arch"] = image.platform.split("/")[1]
    return str(
        PackageURL(
            type="oci", name=name.lower(), version=image.manifest_digest, qualifiers=qualifiers
        )
    )
