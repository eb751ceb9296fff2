"""CycloneDX 1.6 JSON: the image as the BOM's subject, its packages as components, findings as
vulnerabilities. Built with cyclonedx-python-lib, which owns the serialisation rules.

Facts CycloneDX has no field for (source package, locations, match evidence) go into properties
under the "tidegate:" namespace, the way other scanners use their own ("syft:", "aquasecurity:").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import TextIO

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception import CycloneDxException
from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus, ImpactAnalysisResponse
from cyclonedx.model.license import License
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityAdvisory,
    VulnerabilityAnalysis,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from tidegate.core.errors import ReportError
from tidegate.core.models import Finding, FixState, MatchEvidence, Package, ScanResult, Severity
from tidegate.core.policy import Verdict
from tidegate.report.common import (
    document_id,
    image_name,
    image_purl,
    image_version,
    package_ref,
    sorted_findings,
    sorted_packages,
    unique_package_refs,
)
from tidegate.report.interface import ReportOptions

_SEVERITY = {
    Severity.CRITICAL: VulnerabilitySeverity.CRITICAL,
    Severity.HIGH: VulnerabilitySeverity.HIGH,
    Severity.MEDIUM: VulnerabilitySeverity.MEDIUM,
    Severity.LOW: VulnerabilitySeverity.LOW,
    Severity.NEGLIGIBLE: VulnerabilitySeverity.INFO,
    Severity.UNKNOWN: VulnerabilitySeverity.UNKNOWN,
}

_RESPONSE = {
    FixState.FIXED: ImpactAnalysisResponse.UPDATE,
    FixState.WONT_FIX: ImpactAnalysisResponse.WILL_NOT_FIX,
    FixState.AFFECTED: ImpactAnalysisResponse.CAN_NOT_FIX,
    FixState.FIX_DEFERRED: ImpactAnalysisResponse.CAN_NOT_FIX,
}
"""What the owner of the image can do about a finding, per fix state (UNKNOWN: nothing said)."""

_MAX_VERSION = 1024
"""CycloneDX 1.6's maximum length of a component version."""

_ID_SOURCES = (
    ("CVE-", "NVD", "https://nvd.nist.gov/vuln/detail/{}"),
    ("GHSA-", "GitHub", "https://github.com/advisories/{}"),
    ("", "OSV", "https://osv.dev/vulnerability/{}"),
)


class CycloneDxWriter:
    """CycloneDX 1.6 JSON SBOM with vulnerabilities."""

    name = "cyclonedx"
    description = "CycloneDX 1.6 JSON SBOM, with findings as vulnerabilities"
    media_type = "application/vnd.cyclonedx+json; version=1.6"
    file_extension = ".cdx.json"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        del verdict  # an SBOM describes what is in the image, not the gate's decision on it
        try:
            bom = build_bom(result, options)
            text = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(
                indent=2
            )
        except (CycloneDxException, ValueError, TypeError) as exc:
            raise ReportError(
                f"cannot write a CycloneDX document for {result.image.reference}: {exc}"
            ) from exc
        out.write(text)
        out.write("\n")


def build_bom(result: ScanResult, options: ReportOptions) -> Bom:
    """The CycloneDX model of `result` (serialised by `CycloneDxWriter`)."""
    image = _image_component(result)
    packages = sorted_packages(result)
    refs = unique_package_refs(packages)
    components = [_package_component(p, refs[p.key]) for p in packages]
    os_component = _os_component(result)
    if os_component is not None:
        components.append(os_component)
    tool = Component(type=ComponentType.APPLICATION, name="tidegate", version=options.tool_version)
    bom = Bom(
        serial_number=document_id(result, options.document_id),
        metadata=BomMetaData(
            timestamp=result.scanned_at,
            tools=ToolRepository(components=[tool]),
            component=image,
        ),
        components=components,
        vulnerabilities=_vulnerabilities(sorted_findings(result), refs),
    )
    # Minimal graph: the image contains every component; package-to-package edges are unknown.
    bom.register_dependency(image, components)
    return bom


def _image_component(result: ScanResult) -> Component:
    image = result.image
    purl = image_purl(result)
    properties = [
        Property(name="tidegate:image:reference", value=image.reference),
        Property(name="tidegate:image:transport", value=image.transport),
    ]
    if image.config_digest:
        properties.append(Property(name="tidegate:image:config_digest", value=image.config_digest))
    if image.platform:
        properties.append(Property(name="tidegate:image:platform", value=image.platform))
    if image.tag:
        properties.append(Property(name="tidegate:image:tag", value=image.tag))
    properties.extend(
        Property(name=f"tidegate:image:layer:{i}", value=layer.diff_id)
        for i, layer in enumerate(image.layers)
    )
    properties.extend(_config_properties(result))
    return Component(
        type=ComponentType.CONTAINER,
        name=image_name(result),
        version=image_version(result),
        bom_ref=purl or f"image:{image_version(result)}",
        purl=PackageURL.from_string(purl) if purl else None,
        properties=properties,
    )


def _config_properties(result: ScanResult) -> list[Property]:
    facts = result.facts
    properties = [Property(name="tidegate:image:user", value=facts.user)]
    if facts.runs_as_root is not None:
        properties.append(
            Property(name="tidegate:image:runs_as_root", value=str(facts.runs_as_root).lower())
        )
    if facts.base_image:
        properties.append(Property(name="tidegate:image:base_image", value=facts.base_image))
    properties.extend(
        Property(name=f"tidegate:image:label:{key}", value=value) for key, value in facts.labels
    )
    return properties


def _os_component(result: ScanResult) -> Component | None:
    os_info = result.catalogue.os
    if os_info is None:
        return None
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os_info.id,
        version=os_info.version_id or None,
        description=os_info.pretty_name or None,
        bom_ref=f"os:{os_info.id}@{os_info.version_id}",
        properties=[Property(name="tidegate:os:codename", value=os_info.version_codename)]
        if os_info.version_codename
        else [],
    )


def _package_component(package: Package, ref: str) -> Component:
    properties = _package_properties(package)
    version = package.version
    if len(version) > _MAX_VERSION:
        # CycloneDX 1.6 caps versions; keep the whole (hostile or broken) value as a property.
        version = version[:_MAX_VERSION]
        properties.append(Property(name="tidegate:package:version", value=package.version))
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=version,
        bom_ref=ref,
        purl=_purl(package),
        licenses=_licenses(package.licenses),
        properties=properties,
    )


def _purl(package: Package) -> PackageURL | None:
    if not package.purl:
        return None
    try:
        return PackageURL.from_string(package.purl)
    except ValueError as exc:
        raise ReportError(
            f"package {package.name} {package.version}: bad purl {package.purl!r}: {exc}"
        ) from exc


def _licenses(licenses: Iterable[str]) -> list[License]:
    factory = LicenseFactory()
    names = sorted({name.strip() for name in licenses if name.strip()})
    if len(names) == 1:
        return [factory.make_from_string(names[0])]
    # CycloneDX forbids an expression next to other licenses: with several, list each one alone.
    result: list[License] = []
    for name in names:
        try:
            result.append(factory.make_with_id(name))
        except CycloneDxException:
            result.append(factory.make_with_name(name))
    return result


def _package_properties(package: Package) -> list[Property]:
    properties = [
        Property(name="tidegate:package:type", value=package.type.value),
        Property(name="tidegate:package:found_by", value=package.found_by),
    ]
    if package.source_name:
        properties.append(Property(name="tidegate:package:source_name", value=package.source_name))
    if package.source_version:
        properties.append(
            Property(name="tidegate:package:source_version", value=package.source_version)
        )
    if package.arch:
        properties.append(Property(name="tidegate:package:arch", value=package.arch))
    for i, location in enumerate(package.locations):
        properties.append(Property(name=f"tidegate:location:{i}:path", value=location.path))
        if location.layer:
            properties.append(Property(name=f"tidegate:location:{i}:layer", value=location.layer))
    properties.extend(
        Property(name=f"tidegate:package:metadata:{k}", value=v) for k, v in package.metadata
    )
    return properties


def _vulnerabilities(
    findings: list[Finding], refs: dict[tuple[str, str, str, str], str]
) -> list[Vulnerability]:
    # One vulnerability per id, affecting every package it was found in (CycloneDX's model).
    by_id: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_id[finding.id].append(finding)
    return [_vulnerability(vid, group, refs) for vid, group in by_id.items()]


def _vulnerability(
    vid: str, findings: list[Finding], refs: dict[tuple[str, str, str, str], str]
) -> Vulnerability:
    first = findings[0]
    aliases = sorted({a for f in findings for a in f.aliases} - {vid})
    return Vulnerability(
        bom_ref=f"vuln:{vid}",
        id=vid,
        source=_source(vid),
        references=[VulnerabilityReference(id=a, source=_source(a)) for a in aliases],
        ratings=[r for f in findings if (r := _rating(f)) is not None],
        description=first.summary or None,
        recommendation=_recommendation(findings),
        advisories=_advisories(findings),
        published=first.published,
        updated=first.modified,
        analysis=_analysis(findings),
        affects=[_target(f, refs) for f in findings],
        properties=_evidence_properties(findings),
    )


def _source(vid: str) -> VulnerabilitySource:
    for prefix, name, url in _ID_SOURCES:
        if vid.startswith(prefix):
            return VulnerabilitySource(name=name, url=XsUri(url.format(vid)))
    raise AssertionError("the last id source matches every id")


def _rating(finding: Finding) -> VulnerabilityRating | None:
    if finding.severity is Severity.UNKNOWN and finding.score is None:
        return None
    vector = finding.cvss_vector
    method = VulnerabilityScoreSource.get_from_vector(vector) if vector else None
    return VulnerabilityRating(
        source=VulnerabilitySource(name=finding.severity_source)
        if finding.severity_source
        else None,
        score=Decimal(str(finding.score)) if finding.score is not None else None,
        severity=_SEVERITY[finding.severity],
        method=method or VulnerabilityScoreSource.OTHER,
        vector=vector,
    )


def _recommendation(findings: list[Finding]) -> str | None:
    upgrades = [
        f"upgrade {f.package.name} to {' or '.join(f.fixed_versions)}"
        for f in findings
        if f.status is FixState.FIXED and f.fixed_versions
    ]
    return "; ".join(dict.fromkeys(upgrades)) or None


def _advisories(findings: list[Finding]) -> list[VulnerabilityAdvisory]:
    urls = sorted(
        {u for f in findings for u in f.references if u.startswith(("http://", "https://"))}
    )
    return [VulnerabilityAdvisory(url=XsUri(u)) for u in urls]


def _analysis(findings: list[Finding]) -> VulnerabilityAnalysis | None:
    responses = sorted({_RESPONSE[f.status] for f in findings if f.status in _RESPONSE})
    if not responses:
        return None
    detail = "; ".join(f"{f.package.name} {f.package.version}: {f.status.value}" for f in findings)
    return VulnerabilityAnalysis(responses=responses, detail=detail)


def _target(finding: Finding, refs: dict[tuple[str, str, str, str], str]) -> BomTarget:
    package = finding.package
    status = (
        ImpactAnalysisAffectedStatus.UNKNOWN
        if finding.status is FixState.UNKNOWN
        else ImpactAnalysisAffectedStatus.AFFECTED
    )
    return BomTarget(
        ref=refs.get(package.key) or package_ref(package),
        versions=[BomTargetVersionRange(version=package.version, status=status)],
    )


def _evidence_properties(findings: list[Finding]) -> list[Property]:
    """Fix state and match evidence of each affected package (CycloneDX has no field for them)."""
    properties: list[Property] = []
    for f in findings:
        prefix = f"tidegate:finding:{f.package.name}@{f.package.version}"
        properties.append(Property(name=f"{prefix}:status", value=f.status.value))
        properties.extend(
            Property(name=f"{prefix}:evidence:{i}", value=_evidence_text(e))
            for i, e in enumerate(f.evidence)
        )
    return properties


def _evidence_text(e: MatchEvidence) -> str:
    return (
        f"{e.record_id} in {e.ecosystem}: {e.searched_name} matched on {e.matched_on},"
        f" range {e.range} [{e.matcher}]"
    )
