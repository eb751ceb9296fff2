"""Tidegate's own JSON report: a versioned document model, its JSON Schema and its writer.

The document is a contract with whoever reads it (CI jobs, the console, other tools), so it is
its own pydantic model rather than a dump of the domain values: a field renamed in the domain does
not silently change the document. `SCHEMA_VERSION` changes when the document does; adding an
optional field is a minor change, removing or retyping one a major change.

    python -m tidegate.report.json_doc --schema     prints the JSON Schema of the document
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field

from tidegate.core.models import (
    EnvVar,
    Executable,
    Finding,
    HistoryEntry,
    ImageFacts,
    ImageInfo,
    MatchEvidence,
    OSInfo,
    Package,
    ScanResult,
    Secret,
    Unknown,
)
from tidegate.core.policy import (
    AcknowledgedFinding,
    ControlFailure,
    PolicyResult,
    Verdict,
)
from tidegate.report.common import (
    package_ref,
    sorted_findings,
    sorted_packages,
    unique_package_refs,
)
from tidegate.report.interface import ReportOptions

SCHEMA_VERSION: Final = "1.1"
"""1.1 added `verdict`: the assurance gate's decision, when the report was written with one."""


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerDoc(_Doc):
    digest: str = Field(description="Blob digest as the manifest names it (compressed).")
    diff_id: str = Field(description="Digest of the uncompressed layer tar.")
    size: int
    media_type: str


class OSDoc(_Doc):
    id: str = Field(description='os-release ID ("debian", "alpine" ...).')
    version_id: str
    pretty_name: str
    version_codename: str = ""


class EnvDoc(_Doc):
    name: str
    value: str = Field(description='The value, or "<redacted>" when it looks like a secret.')
    looks_secret: bool = False
    rule_id: str | None = None


class HistoryDoc(_Doc):
    created: datetime | None
    created_by: str
    empty_layer: bool = False
    comment: str = ""


class ConfigDoc(_Doc):
    """Facts from the image config, resolved against the image's files."""

    user: str = Field(description="User exactly as the config writes it (empty means root).")
    uid: int | None = Field(description="Resolved uid; null when it cannot be resolved.")
    gid: int | None
    runs_as_root: bool | None
    labels: dict[str, str]
    env: list[EnvDoc]
    exposed_ports: list[str]
    entrypoint: list[str]
    cmd: list[str]
    working_dir: str
    volumes: list[str]
    stop_signal: str
    created: datetime | None
    architecture: str
    os: str
    variant: str
    history: list[HistoryDoc]
    base_image: str | None


class ImageDoc(_Doc):
    reference: str = Field(description="The image reference as the user wrote it.")
    transport: str
    manifest_digest: str | None
    config_digest: str | None = Field(description="The image ID container runtimes report.")
    media_type: str
    platform: str
    registry: str | None
    repository: str | None
    tag: str | None
    layers: list[LayerDoc]
    os: OSDoc | None
    config: ConfigDoc


class LocationDoc(_Doc):
    path: str
    layer: str | None = Field(description="diff_id of the layer the file came from.")


class PackageDoc(_Doc):
    ref: str = Field(description="Reference unique in this document; findings point to it.")
    name: str
    version: str
    type: str = Field(description="Ecosystem, as a purl type (deb, apk, rpm, pypi ...).")
    purl: str
    source_name: str | None
    source_version: str | None
    arch: str | None
    licenses: list[str]
    locations: list[LocationDoc]
    found_by: str
    metadata: dict[str, str]


class ExecutableDoc(_Doc):
    path: str
    mode: str = Field(description='Permission bits as an octal string ("0755", "4755").')
    size: int
    sha256: str
    uid: int
    gid: int
    setuid: bool
    setgid: bool
    layer: str | None


class SecretDoc(_Doc):
    """Where a secret is, never the secret itself."""

    path: str
    rule_id: str
    title: str
    severity: str
    line: int | None
    layer: str | None
    redacted: str = Field(description="A hint that identifies the secret without revealing it.")


class UnknownDoc(_Doc):
    where: str
    reason: str
    analyzer: str | None
    layer: str | None


class PackageRefDoc(_Doc):
    ref: str = Field(description="The `ref` of the package in `packages`.")
    name: str
    version: str
    type: str
    purl: str
    path: str | None


class EvidenceDoc(_Doc):
    record_id: str
    ecosystem: str
    searched_name: str
    matched_on: str
    range: str
    matcher: str


class FindingDoc(_Doc):
    id: str
    aliases: list[str]
    package: PackageRefDoc
    status: Literal["fixed", "affected", "wont-fix", "fix-deferred", "unknown"]
    fixed_versions: list[str]
    severity: Literal["unknown", "negligible", "low", "medium", "high", "critical"]
    score: float | None
    severity_source: str
    cvss_vector: str | None
    summary: str
    published: datetime | None
    modified: datetime | None
    fix_published: datetime | None
    references: list[str]
    evidence: list[EvidenceDoc]


class AnalyzerDoc(_Doc):
    name: str
    version: int


class ControlFailureDoc(_Doc):
    control: str = Field(description='The failed control ("severity", "block_root" ...).')
    message: str
    findings: list[str] = Field(
        description='Findings behind the failure, as "<vulnerability id> <package>@<version>".'
    )
    remediation: str = Field(description="How to fix it; empty when the policy cannot tell.")


class AcknowledgedDoc(_Doc):
    finding: str = Field(description='"<vulnerability id> <package>@<version>".')
    ack_id: str
    expires: datetime | None


class PolicyResultDoc(_Doc):
    id: str
    name: str
    version: int
    mode: Literal["audit", "enforce"] = Field(
        description="The mode in force when the image was evaluated (enforce_after applied)."
    )
    passed: bool
    failures: list[ControlFailureDoc]
    acknowledged: list[AcknowledgedDoc] = Field(
        description="Findings set aside by an unexpired acknowledgement."
    )


class VerdictDoc(_Doc):
    """The assurance gate's decision on the image."""

    status: Literal["unscanned", "scanning", "approved", "disallowed", "failed"]
    reason: str = Field(description="One line: what disallowed the image, or why it passed.")
    evaluated_at: datetime
    db_snapshot: str | None
    policies: list[PolicyResultDoc] = Field(description="Every policy whose scope covers it.")


class ReportDocument(_Doc):
    """Tidegate's report on one scanned image."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Tidegate scan report")

    schema_version: Literal["1.1"] = SCHEMA_VERSION
    tidegate_version: str
    scanned_at: datetime
    db_snapshot: str | None = Field(description="Vulnerability DB snapshot the findings used.")
    analyzers: list[AnalyzerDoc]
    image: ImageDoc
    packages: list[PackageDoc]
    executables: list[ExecutableDoc] | None = Field(
        description="Null when the report was written without the executable inventory."
    )
    secrets: list[SecretDoc]
    unknowns: list[UnknownDoc]
    findings: list[FindingDoc]
    verdict: VerdictDoc | None = Field(
        default=None, description="Null when the report was written without a verdict."
    )


def build_document(
    result: ScanResult, options: ReportOptions, verdict: Verdict | None = None
) -> ReportDocument:
    """Map a scan result (and the gate's verdict) to the document, lists in a stable order."""
    packages = sorted_packages(result)
    refs = unique_package_refs(packages)
    catalogue = result.catalogue
    executables = (
        [_executable(e) for e in sorted(catalogue.executables, key=lambda e: e.path)]
        if options.include_executables
        else None
    )
    return ReportDocument(
        tidegate_version=options.tool_version,
        scanned_at=result.scanned_at,
        db_snapshot=result.db_snapshot,
        analyzers=[AnalyzerDoc(name=n, version=v) for n, v in sorted(result.analyzers)],
        image=_image(result.image, result.facts, catalogue.os),
        packages=[_package(p, refs[p.key]) for p in packages],
        executables=executables,
        secrets=[_secret(s) for s in sorted(catalogue.secrets, key=_secret_order)],
        unknowns=[_unknown(u) for u in sorted(catalogue.unknowns, key=_unknown_order)],
        findings=[_finding(f, refs) for f in sorted_findings(result)],
        verdict=_verdict(verdict) if verdict is not None else None,
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `ReportDocument` as written (serialization mode)."""
    schema = ReportDocument.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tidegate.dev/schema/report-{SCHEMA_VERSION}.json",
        **schema,
    }


class JsonWriter:
    """Tidegate's own JSON document."""

    name = "json"
    description = f"Tidegate JSON report (schema {SCHEMA_VERSION}): everything the scan found"
    media_type = "application/json"
    file_extension = ".json"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        document = build_document(result, options, verdict)
        out.write(document.model_dump_json(indent=2))
        out.write("\n")


def _image(image: ImageInfo, facts: ImageFacts, os_info: OSInfo | None) -> ImageDoc:
    return ImageDoc(
        reference=image.reference,
        transport=image.transport,
        manifest_digest=image.manifest_digest,
        config_digest=image.config_digest,
        media_type=image.media_type,
        platform=image.platform,
        registry=image.registry,
        repository=image.repository,
        tag=image.tag,
        layers=[
            LayerDoc(digest=x.digest, diff_id=x.diff_id, size=x.size, media_type=x.media_type)
            for x in image.layers
        ],
        os=_os(os_info),
        config=_config(facts),
    )


def _os(os_info: OSInfo | None) -> OSDoc | None:
    if os_info is None:
        return None
    return OSDoc(
        id=os_info.id,
        version_id=os_info.version_id,
        pretty_name=os_info.pretty_name,
        version_codename=os_info.version_codename,
    )


def _config(facts: ImageFacts) -> ConfigDoc:
    # Layer order matters for history and env (later entries win), so those keep their order.
    return ConfigDoc(
        user=facts.user,
        uid=facts.uid,
        gid=facts.gid,
        runs_as_root=facts.runs_as_root,
        labels=dict(sorted(facts.labels)),
        env=[_env(e) for e in facts.env],
        exposed_ports=sorted(facts.exposed_ports),
        entrypoint=list(facts.entrypoint),
        cmd=list(facts.cmd),
        working_dir=facts.working_dir,
        volumes=sorted(facts.volumes),
        stop_signal=facts.stop_signal,
        created=facts.created,
        architecture=facts.architecture,
        os=facts.os,
        variant=facts.variant,
        history=[_history(h) for h in facts.history],
        base_image=facts.base_image,
    )


def _env(env: EnvVar) -> EnvDoc:
    # The domain value is already redacted; redact again so a mistake upstream cannot leak here.
    value = "<redacted>" if env.looks_secret else env.value
    return EnvDoc(name=env.name, value=value, looks_secret=env.looks_secret, rule_id=env.rule_id)


def _history(entry: HistoryEntry) -> HistoryDoc:
    return HistoryDoc(
        created=entry.created,
        created_by=entry.created_by,
        empty_layer=entry.empty_layer,
        comment=entry.comment,
    )


def _package(package: Package, ref: str) -> PackageDoc:
    return PackageDoc(
        ref=ref,
        name=package.name,
        version=package.version,
        type=package.type.value,
        purl=package.purl,
        source_name=package.source_name,
        source_version=package.source_version,
        arch=package.arch,
        licenses=list(package.licenses),
        locations=[LocationDoc(path=x.path, layer=x.layer) for x in package.locations],
        found_by=package.found_by,
        metadata=dict(sorted(package.metadata)),
    )


def _executable(executable: Executable) -> ExecutableDoc:
    return ExecutableDoc(
        path=executable.path,
        mode=format(executable.mode & 0o7777, "04o"),
        size=executable.size,
        sha256=executable.sha256,
        uid=executable.uid,
        gid=executable.gid,
        setuid=executable.setuid,
        setgid=executable.setgid,
        layer=executable.layer,
    )


def _secret(secret: Secret) -> SecretDoc:
    return SecretDoc(
        path=secret.path,
        rule_id=secret.rule_id,
        title=secret.title,
        severity=secret.severity,
        line=secret.line,
        layer=secret.layer,
        redacted=secret.redacted,
    )


def _secret_order(secret: Secret) -> tuple[str, int, str]:
    return (secret.path, secret.line or 0, secret.rule_id)


def _unknown(unknown: Unknown) -> UnknownDoc:
    return UnknownDoc(
        where=unknown.where, reason=unknown.reason, analyzer=unknown.analyzer, layer=unknown.layer
    )


def _unknown_order(unknown: Unknown) -> tuple[str, str, str]:
    return (unknown.where, unknown.analyzer or "", unknown.reason)


def _finding(finding: Finding, refs: dict[tuple[str, str, str, str], str]) -> FindingDoc:
    package = finding.package
    return FindingDoc(
        id=finding.id,
        aliases=sorted(finding.aliases),
        package=PackageRefDoc(
            ref=refs.get(package.key) or package_ref(package),
            name=package.name,
            version=package.version,
            type=package.type.value,
            purl=package.purl,
            path=package.locations[0].path if package.locations else None,
        ),
        status=finding.status.value,
        fixed_versions=list(finding.fixed_versions),
        severity=finding.severity.value,
        score=finding.score,
        severity_source=finding.severity_source,
        cvss_vector=finding.cvss_vector,
        summary=finding.summary,
        published=finding.published,
        modified=finding.modified,
        fix_published=finding.fix_published,
        references=list(finding.references),
        evidence=[_evidence(e) for e in finding.evidence],
    )


def _evidence(evidence: MatchEvidence) -> EvidenceDoc:
    return EvidenceDoc(
        record_id=evidence.record_id,
        ecosystem=evidence.ecosystem,
        searched_name=evidence.searched_name,
        matched_on=evidence.matched_on,
        range=evidence.range,
        matcher=evidence.matcher,
    )


def _verdict(verdict: Verdict) -> VerdictDoc:
    # Policies keep the verdict's order (the gate sorts them); it is the order people read.
    return VerdictDoc(
        status=verdict.status.value,
        reason=verdict.reason,
        evaluated_at=verdict.evaluated_at,
        db_snapshot=verdict.db_snapshot,
        policies=[_policy_result(r) for r in verdict.results],
    )


def _policy_result(result: PolicyResult) -> PolicyResultDoc:
    return PolicyResultDoc(
        id=result.policy_id,
        name=result.policy_name,
        version=result.policy_version,
        mode=result.mode.value,
        passed=result.passed,
        failures=[_control_failure(f) for f in result.failures],
        acknowledged=[_acknowledged(a) for a in result.acknowledged],
    )


def _control_failure(failure: ControlFailure) -> ControlFailureDoc:
    return ControlFailureDoc(
        control=failure.control,
        message=failure.message,
        findings=list(failure.findings),
        remediation=failure.remediation,
    )


def _acknowledged(ack: AcknowledgedFinding) -> AcknowledgedDoc:
    return AcknowledgedDoc(finding=ack.finding, ack_id=ack.ack_id, expires=ack.expires)


def main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """`--schema` prints the document's JSON Schema; anything else prints the usage."""
    if list(argv) != ["--schema"]:
        print("usage: python -m tidegate.report.json_doc --schema", file=err)
        return 2
    json.dump(json_schema(), out, indent=2, sort_keys=True)
    out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdout, sys.stderr))
