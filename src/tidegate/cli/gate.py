"""The CI/CD gate of `tidegate scan`: assure the scanned image, tell the build, report.

After the scan, with `--console URL` (or `--policy FILE.yaml` offline):

1. the policies and acknowledgements come from the console (`POST /gate/policies`, only those
   that apply to the image) or from the file (the YAML of `tidegate apply`), validated by the
   same API schemas either way;
2. `core.assurance.evaluate` -- the console's own function -- gives the verdict;
3. each failed policy meets the pipeline's mode (`--enforce`, default audit) in the one mode rule
   (`core.modes.decide`): the build fails (exit 1) only when a policy in enforce mode fails AND
   the pipeline enforces; otherwise stderr says which policies failed, in which mode, and whether
   the build WOULD fail with `--enforce`;
4. the report artifacts go to `--report-dir` (several formats, verdict and policies included);
5. the image and its scan are registered with the console (`--register`, on with a console;
   the console re-evaluates, and its status is the one the inventory keeps), and the CI scan is
   recorded as an audit event with the pipeline's metadata (`tidegate.ci`).

A console that cannot be reached (no connection, timeout, 5xx) ends with exit 7 unless
`--no-fail-on-unreachable`; a refused token (401/403) ends with exit 4. Reports are written in
every case, so the build keeps its artifacts.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import httpx
from pydantic import ValidationError

from tidegate.ci import PipelineInfo, detect
from tidegate.cli.apply_cmd import load_documents
from tidegate.cli.exit_codes import ExitCode
from tidegate.client import ConsoleClient
from tidegate.client import gate as gate_client
from tidegate.console.schemas.acks import AckBody, AckPublic
from tidegate.console.schemas.policies import PolicyBody
from tidegate.core.assurance import evaluate
from tidegate.core.errors import (
    ConsoleApiError,
    ConsoleError,
    ReferenceError_,
    ReportError,
    UsageError,
)
from tidegate.core.models import ScanResult
from tidegate.core.modes import Action, ModeDecision, decide
from tidegate.core.policy import (
    AckId,
    Acknowledgement,
    AssurancePolicy,
    ImageSubject,
    Mode,
    PolicyId,
    PolicyResult,
    Verdict,
)
from tidegate.image.reference import parse_registry_reference
from tidegate.report import ReportOptions, get_writer

__all__ = [
    "DEFAULT_REPORT_FORMATS",
    "ENV_CONSOLE",
    "ENV_TOKEN",
    "GateOptions",
    "GateOutcome",
    "Name",
    "add_gate_options",
    "decisions_for",
    "gate_options",
    "policies_from_console",
    "policies_from_file",
    "run_gate",
    "write_reports",
]

ENV_CONSOLE = "TIDEGATE_CONSOLE"
ENV_TOKEN = "TIDEGATE_TOKEN"
DEFAULT_REPORT_FORMATS = ("json", "sarif", "junit", "html")
REPORT_STEM = "tidegate-report"


@dataclass(frozen=True, slots=True)
class Name:
    """Where the image lives (or will be pushed): the policies' scope and the inventory's name."""

    registry: str | None = None
    repository: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class GateOptions:
    console: str | None
    token: str | None
    register: bool
    enforce: bool
    policy_file: Path | None
    report_dir: Path | None
    report_formats: tuple[str, ...]
    fail_on_unreachable: bool
    name: Name = field(default_factory=Name)
    transport: httpx.BaseTransport | None = None
    """Test seam: how the console client talks (None: the network)."""

    @property
    def point_mode(self) -> Mode:
        return Mode.ENFORCE if self.enforce else Mode.AUDIT

    @property
    def assesses(self) -> bool:
        return self.console is not None or self.policy_file is not None


@dataclass(frozen=True, slots=True)
class GateOutcome:
    exit_code: ExitCode
    verdict: Verdict | None = None
    policies: tuple[AssurancePolicy, ...] = ()


# --- command line -----------------------------------------------------------------------------


def add_gate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("CI/CD gate (assurance policies, console, report artifacts)")
    g.add_argument("--console", metavar="URL", help=f"the console's address (or ${ENV_CONSOLE})")
    g.add_argument("--token", help=f"an API token of the console, role ci (or ${ENV_TOKEN})")
    g.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="register the image and its scan with the console (default: on with --console)",
    )
    g.add_argument(
        "--enforce",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the pipeline enforces: fail the build when an enforce-mode policy fails "
        "(default: audit, the build passes and says what would have failed it)",
    )
    g.add_argument(
        "--policy",
        type=Path,
        metavar="FILE.yaml",
        help="evaluate these policies and acknowledgements (the YAML of `tidegate apply`) "
        "instead of the console's: works offline",
    )
    g.add_argument("--report-dir", type=Path, metavar="DIR", help="write report artifacts here")
    g.add_argument(
        "--report-format",
        default=",".join(DEFAULT_REPORT_FORMATS),
        metavar="FMT,...",
        help=f"formats written to --report-dir as {REPORT_STEM}.EXT "
        f"(default: {','.join(DEFAULT_REPORT_FORMATS)})",
    )
    g.add_argument(
        "--fail-on-unreachable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fail the build (exit 7) when the console cannot be reached (default: fail)",
    )
    g.add_argument(
        "--image-name",
        metavar="HOST/REPO[:TAG]",
        help="the name the image is pushed as (policy scope and inventory name); "
        "default: the scanned reference's",
    )


def _name(text: str | None) -> Name:
    if not text:
        return Name()
    try:
        ref = parse_registry_reference(text)
    except ReferenceError_ as exc:
        raise UsageError(f"--image-name: {exc}") from exc
    return Name(ref.registry, ref.repository, ref.tag)


def _formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError("--report-format: name at least one format")
    for name in names:
        get_writer(name)  # a UsageError naming the valid formats
    return names


def gate_options(args: argparse.Namespace, env: Mapping[str, str]) -> GateOptions | None:
    """The gate's options from the command line and `env`; None when no gate option is used."""
    console = args.console or env.get(ENV_CONSOLE) or None
    token = args.token or env.get(ENV_TOKEN) or None
    if args.register and console is None:
        raise UsageError("--register needs --console URL (or $TIDEGATE_CONSOLE)")
    if console is not None and not token:
        raise UsageError(f"--console needs --token T (or ${ENV_TOKEN}), a token of role ci")
    if args.policy is not None and not args.policy.is_file():
        raise UsageError(f"--policy {args.policy}: no such file")
    options = GateOptions(
        console=console,
        token=token,
        register=console is not None if args.register is None else bool(args.register),
        enforce=bool(args.enforce),
        policy_file=args.policy,
        report_dir=args.report_dir,
        report_formats=_formats(args.report_format),
        fail_on_unreachable=bool(args.fail_on_unreachable),
        name=_name(args.image_name),
    )
    if not options.assesses and options.report_dir is None:
        return None
    return options


# --- policies and acknowledgements ------------------------------------------------------------


def _policy(body: PolicyBody, policy_id: str, version: int) -> AssurancePolicy:
    return AssurancePolicy(
        id=PolicyId(policy_id),
        name=body.name,
        mode=body.mode,
        scope=body.scope_domain(),
        controls=body.controls_domain(),
        enforce_after=body.enforce_after,
        enabled=body.enabled,
        version=version,
        description=body.description,
    )


def policies_from_file(
    path: Path, now: datetime
) -> tuple[list[AssurancePolicy], list[Acknowledgement]]:
    """The `kind: Policy` and `kind: Acknowledgement` documents of an apply file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--policy {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    policies: list[AssurancePolicy] = []
    acks: list[Acknowledgement] = []
    for i, (_kind, body) in enumerate(load_documents(text, str(path)), 1):
        if isinstance(body, PolicyBody):
            policies.append(_policy(body, f"file:{body.name}", 1))
        else:
            acks.append(_file_ack(body, f"file:{i}", now))
    return policies, acks


def _file_ack(body: AckBody, ack_id: str, now: datetime) -> Acknowledgement:
    return Acknowledgement(
        id=AckId(ack_id),
        vulnerability=body.vulnerability,
        scope=body.scope,
        scope_value=body.scope_value,
        requester=body.requester or "policy file",
        justification=body.justification,
        created=now,
        expires=body.expires,
        package_name=body.package_name,
        package_version=body.package_version,
        path=body.path,
        ticket=body.ticket,
        approver=body.approver,
    )


_POLICY_FIELDS = ("name", "description", "mode", "enabled", "enforce_after", "scope", "controls")


def policies_from_console(
    bundle: gate_client.GateBundle, url: str
) -> tuple[list[AssurancePolicy], list[Acknowledgement]]:
    """The console's answer as domain values, validated like an apply file."""
    try:
        policies = [
            _policy(
                PolicyBody.model_validate({k: p.get(k) for k in _POLICY_FIELDS}),
                str(p["id"]),
                int(p["version"]),
            )
            for p in bundle.policies
        ]
        acks = [_console_ack(AckPublic.model_validate(a)) for a in bundle.acknowledgements]
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise ConsoleApiError(
            f"console {url}: the policies it sent are not valid: {exc}", status=200
        ) from exc
    return policies, acks


def _console_ack(a: AckPublic) -> Acknowledgement:
    return Acknowledgement(
        id=AckId(a.id),
        vulnerability=a.vulnerability,
        scope=a.scope,
        scope_value=a.scope_value,
        requester=a.requester,
        justification=a.justification,
        created=a.created,
        expires=a.expires,
        package_name=a.package_name,
        package_version=a.package_version,
        path=a.path,
        ticket=a.ticket,
        approver=a.approver,
        revoked=a.revoked,
        revoked_by=a.revoked_by,
    )


# --- the verdict at this enforcement point ----------------------------------------------------


def decisions_for(verdict: Verdict, point: Mode) -> list[tuple[PolicyResult, ModeDecision]]:
    """Each applicable policy's decision under the pipeline's mode (the one mode rule)."""
    return [(r, decide(not r.passed, r.mode, point)) for r in verdict.results]


def _tell(verdict: Verdict, options: GateOptions, source: str, err: TextIO) -> bool:
    """Say on stderr what the verdict means for this build; whether the build fails."""
    decisions = decisions_for(verdict, options.point_mode)
    point = options.point_mode.value
    err.write(
        f"tidegate: verdict {verdict.status.value.upper()} ({source}; pipeline mode {point}): "
        f"{len(verdict.results)} applicable polic{'y' if len(verdict.results) == 1 else 'ies'}\n"
    )
    acknowledged = {a.finding for r in verdict.results for a in r.acknowledged}
    if acknowledged:
        err.write(f"tidegate: {len(acknowledged)} finding(s) set aside by acknowledgements\n")
    for result, decision in decisions:
        if decision.action is Action.ALLOW:
            continue
        err.write(
            f"tidegate: policy {result.policy_name!r} ({result.mode.value} mode) failed: "
            f"{', '.join(f.control for f in result.failures)}\n"
        )
        for failure in result.failures:
            fix = f" -- fix: {failure.remediation}" if failure.remediation else ""
            err.write(f"tidegate:   {failure.control}: {failure.message}{fix}\n")
        err.write(f"tidegate:   {_consequence(result, decision)}\n")
    blocking = [r.policy_name for r, d in decisions if d.action is Action.BLOCK]
    if blocking:
        err.write(
            f"tidegate: BUILD FAILED: enforce-mode policies failed and the pipeline enforces "
            f"(--enforce): {', '.join(blocking)}\n"
        )
    would = [r.policy_name for r, d in decisions if d.would_block and r.mode is Mode.ENFORCE]
    if not blocking and would:
        err.write(
            f"tidegate: build passes (pipeline in audit mode), but it WOULD FAIL with --enforce: "
            f"enforce-mode policies failed: {', '.join(would)}\n"
        )
    return bool(blocking)


def _consequence(result: PolicyResult, decision: ModeDecision) -> str:
    if decision.action is Action.BLOCK:
        return "the policy enforces and so does the pipeline: this fails the build"
    if result.mode is Mode.ENFORCE:
        return (
            "the policy enforces but the pipeline is in audit mode: the build passes, and "
            "WOULD FAIL with --enforce"
        )
    return "the policy is audit-only: reported, it never fails a build"


# --- report artifacts -------------------------------------------------------------------------


def write_reports(
    result: ScanResult,
    directory: Path,
    formats: Sequence[str],
    *,
    verdict: Verdict | None,
    policies: Sequence[AssurancePolicy],
) -> list[Path]:
    """Write `tidegate-report.EXT` per format into `directory` (created); the paths written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--report-dir {directory}: {exc.strerror or exc}") from exc
    options = ReportOptions(include_executables=True, policies=tuple(policies))
    written = []
    for name in formats:
        writer = get_writer(name)
        path = directory / f"{REPORT_STEM}{writer.file_extension}"
        try:
            with open(path, "w", encoding="utf-8") as f:
                writer.write(result, f, options, verdict)
        except OSError as exc:
            raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc
        written.append(path)
    return written


# --- the gate ---------------------------------------------------------------------------------


def _subject(result: ScanResult, name: Name) -> ImageSubject:
    tags = (name.tag,) if name.tag else ()
    return ImageSubject.from_scan(
        result, registry=name.registry, repository=name.repository, tags=tags
    )


def _identity(subject: ImageSubject, result: ScanResult) -> gate_client.ImageIdentity:
    return gate_client.ImageIdentity(
        manifest_digest=result.image.manifest_digest,
        config_digest=result.image.config_digest,
        registry=subject.registry,
        repository=subject.repository,
        labels=subject.labels,
    )


@dataclass(slots=True)
class _Run:
    """One gate run's state: what it learnt and which console failure ends it."""

    options: GateOptions
    err: TextIO
    client: ConsoleClient | None
    verdict: Verdict | None = None
    policies: list[AssurancePolicy] = field(default_factory=list)
    failure: ExitCode | None = None
    console_down: bool = False
    """The console failed once: it is not asked again in this run."""

    def console_failed(self, exc: ConsoleError, doing: str) -> None:
        """Record a console failure: a refused token ends the run, the rest is "unreachable"."""
        self.console_down = True
        if isinstance(exc, ConsoleApiError) and exc.status in (401, 403):
            what = "the token was refused" if exc.status == 401 else "the token's role may not"
            self.err.write(f"tidegate: error: {doing}: {what}: {exc}\n")
            self.failure = ExitCode.AUTH_ERROR
            return
        if self.options.fail_on_unreachable:
            self.err.write(
                f"tidegate: error: {doing}: {exc}\ntidegate: the console is needed "
                "(--fail-on-unreachable): failing the build; pass --no-fail-on-unreachable to "
                "let it pass with a warning\n"
            )
            self.failure = self.failure or ExitCode.CONSOLE_UNREACHABLE
            return
        self.err.write(
            f"tidegate: warning: {doing}: {exc}\ntidegate: carrying on without the console "
            "(--no-fail-on-unreachable)\n"
        )


def _assess(run: _Run, result: ScanResult, subject: ImageSubject, now: datetime) -> None:
    options = run.options
    if options.policy_file is not None:
        policies, acks = policies_from_file(options.policy_file, now)
        source = f"policy file {options.policy_file}"
    elif run.client is not None:
        try:
            bundle = gate_client.fetch_gate_policies(run.client, _identity(subject, result))
        except ConsoleError as exc:
            run.console_failed(exc, "fetching the policies from the console")
            if run.failure is None:
                run.err.write("tidegate: warning: the image was NOT assessed\n")
            return
        policies, acks = policies_from_console(bundle, run.client.url)
        source = f"console {run.client.url}"
    else:
        return
    run.verdict = evaluate(subject, policies, acks, now=now, db_snapshot=result.db_snapshot)
    applied = {r.policy_id for r in run.verdict.results}
    run.policies = [p for p in policies if p.id in applied]
    if _tell(run.verdict, options, source, run.err):
        run.failure = ExitCode.POLICY_FAILED


def _register(run: _Run, result: ScanResult, subject: ImageSubject, pipeline: PipelineInfo) -> None:
    client, options = run.client, run.options
    if client is None:
        return
    try:
        if options.register:
            reg = gate_client.register_scan(
                client,
                result,
                registry=options.name.registry,
                repository=options.name.repository,
                tag=options.name.tag,
            )
            run.err.write(
                f"tidegate: registered with the console (image {reg.image_id}): "
                f"{reg.status}: {reg.status_reason}\n"
            )
        if run.verdict is not None:
            gate_client.record_ci_scan(
                client,
                digest=subject.digest,
                reference=_reference(subject, result),
                verdict=run.verdict,
                enforce=options.enforce,
                pipeline=pipeline.to_json(),
            )
    except ConsoleError as exc:
        run.console_failed(exc, "reporting the scan to the console")


def _reference(subject: ImageSubject, result: ScanResult) -> str | None:
    if subject.registry and subject.repository:
        tag = f":{subject.tags[0]}" if subject.tags else ""
        return f"{subject.registry}/{subject.repository}{tag}"
    return result.image.reference or None


def run_gate(
    result: ScanResult,
    options: GateOptions,
    *,
    err: TextIO,
    env: Mapping[str, str],
    now: datetime,
) -> GateOutcome:
    """Assure, report, register; see the module docstring. `result` holds every finding."""
    subject = _subject(result, options.name)
    client = (
        ConsoleClient(options.console, options.token, transport=options.transport)
        if options.console is not None
        else None
    )
    run = _Run(options=options, err=err, client=client)
    try:
        _assess(run, result, subject, now)
        if options.report_dir is not None:
            paths = write_reports(
                result,
                options.report_dir,
                options.report_formats,
                verdict=run.verdict,
                policies=run.policies,
            )
            err.write(f"tidegate: reports: {', '.join(str(p) for p in paths)}\n")
        if not run.console_down:
            _register(run, result, subject, detect(env))
    finally:
        if client is not None:
            client.close()
    return GateOutcome(run.failure or ExitCode.OK, run.verdict, tuple(run.policies))
