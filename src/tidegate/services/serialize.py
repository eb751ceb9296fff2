"""JSON forms of the domain values the console stores: scan results, policies, verdicts.

Owns the one mapping between stored JSON and `core` values, so the tables, the API schemas and
`tidegate apply`/`export` agree:

- scan results are stored as the `tidegate scan -f json` document (`report.json_doc`), read back
  into a `ScanResult` without re-validating (the document was validated when it was received;
  the fast path matters when 10,000 images are re-evaluated);
- a policy's scope and controls are stored in their API body form, off controls left out;
- a verdict is stored as a JSON document that explains itself (failed controls, findings,
  acknowledged findings, policy versions, DB snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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
from tidegate.core.policy import (
    AckId,
    Acknowledgement,
    AckScopeKind,
    Controls,
    GracePeriod,
    LabelRule,
    PackageRule,
    Scope,
    ScoreLimit,
    SeverityLimit,
    Verdict,
)
from tidegate.report.interface import ReportOptions
from tidegate.report.json_doc import ReportDocument, build_document

__all__ = [
    "ack_to_json",
    "controls_from_json",
    "controls_to_json",
    "document_from_result",
    "result_from_document",
    "scope_from_json",
    "scope_to_json",
    "verdict_to_json",
]

JSON = dict[str, Any]


# --- scan results ---------------------------------------------------------------------------


def document_from_result(result: ScanResult) -> JSON:
    """The stored form of a scan result: its JSON report document, as plain JSON."""
    doc = build_document(result, ReportOptions(include_executables=True))
    return doc.model_dump(mode="json")


def validate_document(data: Mapping[str, Any]) -> ReportDocument:
    """Validate a received document (pydantic's ValidationError names the bad field)."""
    return ReportDocument.model_validate(data)


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


_PACKAGES: dict[tuple[Any, ...], Package] = {}
_PACKAGES_MAX = 200_000


def _package(doc: Mapping[str, Any]) -> Package:
    # Images share most packages (base layers): re-evaluating a fleet rebuilds each one once.
    key = (
        doc["purl"],
        doc["found_by"],
        repr(doc["locations"]),
        repr(doc.get("metadata")),
        doc.get("source_name"),
        doc.get("source_version"),
        repr(doc.get("licenses")),
    )
    cached = _PACKAGES.get(key)
    if cached is None:
        if len(_PACKAGES) >= _PACKAGES_MAX:
            _PACKAGES.clear()
        cached = _PACKAGES[key] = _new_package(doc)
    return cached


def _new_package(doc: Mapping[str, Any]) -> Package:
    return Package(
        name=doc["name"],
        version=doc["version"],
        type=PackageType(doc["type"]),
        found_by=doc.get("found_by", ""),
        locations=tuple(Location(x["path"], x.get("layer")) for x in doc.get("locations", ())),
        purl=doc.get("purl", ""),
        source_name=doc.get("source_name"),
        source_version=doc.get("source_version"),
        arch=doc.get("arch"),
        licenses=tuple(doc.get("licenses", ())),
        metadata=tuple(sorted(doc.get("metadata", {}).items())),
    )


def _finding(doc: Mapping[str, Any], packages: Mapping[str, Package]) -> Finding:
    ref = doc["package"]
    package = packages.get(ref["ref"]) or Package(
        name=ref["name"],
        version=ref["version"],
        type=PackageType(ref["type"]),
        found_by="",
        locations=(Location(ref["path"]),) if ref.get("path") else (),
        purl=ref.get("purl", ""),
    )
    return Finding(
        id=doc["id"],
        aliases=tuple(doc.get("aliases", ())),
        package=package,
        status=FixState(doc["status"]),
        fixed_versions=tuple(doc.get("fixed_versions", ())),
        severity=Severity(doc.get("severity", "unknown")),
        score=doc.get("score"),
        severity_source=doc.get("severity_source", ""),
        cvss_vector=doc.get("cvss_vector"),
        summary=doc.get("summary", ""),
        published=_dt(doc.get("published")),
        modified=_dt(doc.get("modified")),
        fix_published=_dt(doc.get("fix_published")),
        references=tuple(doc.get("references", ())),
        evidence=tuple(MatchEvidence(**e) for e in doc.get("evidence", ())),
    )


def _facts(config: Mapping[str, Any]) -> ImageFacts:
    return ImageFacts(
        user=config.get("user", ""),
        uid=config.get("uid"),
        gid=config.get("gid"),
        runs_as_root=config.get("runs_as_root"),
        labels=tuple(sorted(config.get("labels", {}).items())),
        env=tuple(EnvVar(**e) for e in config.get("env", ())),
        exposed_ports=tuple(config.get("exposed_ports", ())),
        entrypoint=tuple(config.get("entrypoint", ())),
        cmd=tuple(config.get("cmd", ())),
        working_dir=config.get("working_dir", ""),
        created=_dt(config.get("created")),
        architecture=config.get("architecture", ""),
        os=config.get("os", ""),
        variant=config.get("variant", ""),
        stop_signal=config.get("stop_signal", ""),
        volumes=tuple(config.get("volumes", ())),
        history=tuple(
            HistoryEntry(
                created=_dt(h.get("created")),
                created_by=h.get("created_by", ""),
                empty_layer=h.get("empty_layer", False),
                comment=h.get("comment", ""),
            )
            for h in config.get("history", ())
        ),
        base_image=config.get("base_image"),
    )


def _image(doc: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(
        reference=doc.get("reference", ""),
        transport=doc.get("transport", ""),
        manifest_digest=doc.get("manifest_digest"),
        config_digest=doc.get("config_digest"),
        platform=doc.get("platform", ""),
        registry=doc.get("registry"),
        repository=doc.get("repository"),
        tag=doc.get("tag"),
        layers=tuple(LayerInfo(**x) for x in doc.get("layers", ())),
        media_type=doc.get("media_type", ""),
    )


def _os(doc: Mapping[str, Any] | None) -> OSInfo | None:
    if doc is None:
        return None
    return OSInfo(
        id=doc["id"],
        version_id=doc.get("version_id", ""),
        pretty_name=doc.get("pretty_name", ""),
        version_codename=doc.get("version_codename", ""),
    )


def _executable(doc: Mapping[str, Any]) -> Executable:
    return Executable(
        path=doc["path"],
        mode=int(doc["mode"], 8),
        size=doc["size"],
        sha256=doc["sha256"],
        uid=doc.get("uid", 0),
        gid=doc.get("gid", 0),
        layer=doc.get("layer"),
    )


def result_from_document(doc: Mapping[str, Any]) -> ScanResult:
    """Rebuild a `ScanResult` from its stored document (packages, findings, facts, secrets)."""
    packages = {p["ref"]: _package(p) for p in doc.get("packages", ())}
    image = doc["image"]
    catalogue = Catalogue(
        os=_os(image.get("os")),
        packages=tuple(packages.values()),
        executables=tuple(_executable(e) for e in doc.get("executables") or ()),
        secrets=tuple(Secret(**s) for s in doc.get("secrets", ())),
        unknowns=tuple(Unknown(**u) for u in doc.get("unknowns", ())),
    )
    scanned_at = _dt(doc.get("scanned_at"))
    assert scanned_at is not None, "a stored document always has scanned_at"
    return ScanResult(
        image=_image(image),
        facts=_facts(image.get("config", {})),
        catalogue=catalogue,
        scanned_at=scanned_at,
        analyzers=tuple((a["name"], a["version"]) for a in doc.get("analyzers", ())),
        findings=tuple(_finding(f, packages) for f in doc.get("findings", ())),
        db_snapshot=doc.get("db_snapshot"),
    )


# --- policies ---------------------------------------------------------------------------------


def _label_to_json(rule: LabelRule) -> JSON:
    return {"key": rule.key, "value": rule.value}


def _label_from_json(doc: Mapping[str, Any]) -> LabelRule:
    return LabelRule(key=doc["key"], value=doc.get("value"))


def scope_to_json(scope: Scope) -> JSON:
    return {
        "registries": list(scope.registries),
        "repositories": list(scope.repositories),
        "labels": [_label_to_json(x) for x in scope.labels],
    }


def scope_from_json(doc: Mapping[str, Any]) -> Scope:
    return Scope(
        registries=tuple(doc.get("registries") or ()),
        repositories=tuple(doc.get("repositories") or ()),
        labels=tuple(_label_from_json(x) for x in doc.get("labels") or ()),
    )


def _package_rule_to_json(rule: PackageRule) -> JSON:
    return {
        "name": rule.name,
        "versions": rule.versions,
        "type": rule.type.value if rule.type is not None else None,
        "fix_available_days": rule.fix_available_days,
    }


def controls_to_json(controls: Controls) -> JSON:
    """The controls that are on, in their API body form (an empty dict: every control off)."""
    out: JSON = {}
    if controls.severity is not None:
        out["severity"] = {
            "max_severity": controls.severity.max_severity.value,
            "only_fixable": controls.severity.only_fixable,
        }
    if controls.score is not None:
        out["score"] = {
            "max_score": controls.score.max_score,
            "only_fixable": controls.score.only_fixable,
        }
    if controls.grace is not None:
        out["grace"] = {
            "published_days": controls.grace.published_days,
            "fixed_days": controls.grace.fixed_days,
        }
    lists: Sequence[tuple[str, tuple[Any, ...]]] = (
        ("cve_denylist", controls.cve_denylist),
        ("cve_allowlist", controls.cve_allowlist),
        ("allowed_registries", controls.allowed_registries),
        ("trusted_base_images", controls.trusted_base_images),
    )
    for name, values in lists:
        if values:
            out[name] = list(values)
    if controls.package_denylist:
        out["package_denylist"] = [_package_rule_to_json(r) for r in controls.package_denylist]
    for name, labels in (
        ("required_labels", controls.required_labels),
        ("forbidden_labels", controls.forbidden_labels),
    ):
        if labels:
            out[name] = [_label_to_json(x) for x in labels]
    if controls.block_root:
        out["block_root"] = True
    if controls.block_secrets:
        out["block_secrets"] = True
    if controls.max_image_age_days is not None:
        out["max_image_age_days"] = controls.max_image_age_days
    return out


def _package_rule_from_json(doc: Mapping[str, Any]) -> PackageRule:
    kind = doc.get("type")
    return PackageRule(
        name=doc["name"],
        versions=doc.get("versions"),
        type=PackageType(kind) if kind else None,
        fix_available_days=doc.get("fix_available_days"),
    )


def controls_from_json(doc: Mapping[str, Any]) -> Controls:
    severity = doc.get("severity")
    score = doc.get("score")
    grace = doc.get("grace")
    return Controls(
        severity=SeverityLimit(
            max_severity=Severity(severity["max_severity"]),
            only_fixable=bool(severity.get("only_fixable", False)),
        )
        if severity
        else None,
        score=ScoreLimit(
            max_score=float(score["max_score"]),
            only_fixable=bool(score.get("only_fixable", False)),
        )
        if score
        else None,
        cve_denylist=tuple(doc.get("cve_denylist") or ()),
        cve_allowlist=tuple(doc.get("cve_allowlist") or ()),
        package_denylist=tuple(
            _package_rule_from_json(r) for r in doc.get("package_denylist") or ()
        ),
        grace=GracePeriod(
            published_days=grace.get("published_days"), fixed_days=grace.get("fixed_days")
        )
        if grace
        else None,
        block_root=bool(doc.get("block_root", False)),
        required_labels=tuple(_label_from_json(x) for x in doc.get("required_labels") or ()),
        forbidden_labels=tuple(_label_from_json(x) for x in doc.get("forbidden_labels") or ()),
        allowed_registries=tuple(doc.get("allowed_registries") or ()),
        trusted_base_images=tuple(doc.get("trusted_base_images") or ()),
        block_secrets=bool(doc.get("block_secrets", False)),
        max_image_age_days=doc.get("max_image_age_days"),
    )


# --- acknowledgements and verdicts ------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ack_to_json(ack: Acknowledgement) -> JSON:
    """An acknowledgement in its API body form (no id, no revocation)."""
    return {
        "vulnerability": ack.vulnerability,
        "scope": ack.scope.value,
        "scope_value": ack.scope_value,
        "package_name": ack.package_name,
        "package_version": ack.package_version,
        "path": ack.path,
        "requester": ack.requester,
        "justification": ack.justification,
        "ticket": ack.ticket,
        "approver": ack.approver,
        "expires": _iso(ack.expires),
    }


def ack_from_fields(
    *,
    ack_id: str,
    vulnerability: str,
    scope: str,
    scope_value: str | None,
    requester: str,
    justification: str,
    created: datetime,
    **optional: Any,
) -> Acknowledgement:
    return Acknowledgement(
        id=AckId(ack_id),
        vulnerability=vulnerability,
        scope=AckScopeKind(scope),
        scope_value=scope_value,
        requester=requester,
        justification=justification,
        created=created,
        **optional,
    )


def verdict_to_json(verdict: Verdict) -> JSON:
    """A verdict as stored and served: status, reason, and every policy result explained."""
    return {
        "status": verdict.status.value,
        "reason": verdict.reason,
        "evaluated_at": verdict.evaluated_at.isoformat(),
        "db_snapshot": verdict.db_snapshot,
        "results": [
            {
                "policy_id": r.policy_id,
                "policy_name": r.policy_name,
                "policy_version": r.policy_version,
                "mode": r.mode.value,
                "passed": r.passed,
                "failures": [
                    {
                        "control": f.control,
                        "message": f.message,
                        "findings": list(f.findings),
                        "remediation": f.remediation,
                    }
                    for f in r.failures
                ],
                "acknowledged": [
                    {"finding": a.finding, "ack_id": a.ack_id, "expires": _iso(a.expires)}
                    for a in r.acknowledged
                ],
            }
            for r in verdict.results
        ],
    }
