"""`tidegate apply -f FILE.yaml` and `tidegate export`: policies, acknowledgements and runtime
profiles as code.

A file is a YAML list (or a stream of YAML documents) of
`{kind: Policy | Acknowledgement | RuntimeProfile, ...}` in the API body form (a RuntimeProfile in
`core.profile`'s document form). Apply is declarative and idempotent: a policy and a runtime
profile are matched by name, an acknowledgement by what it covers (vulnerability, scope, package,
path); only differences are sent, so applying the same file twice changes nothing and records no
event. Export writes the same form, so `export | apply` round-trips.

Two backends: a console over HTTP (`--console URL --token T`, the normal way) or the console's
database directly (`--data-dir DIR`, for bootstrapping before the console runs).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx
import yaml
from pydantic import ValidationError

from tidegate.console.schemas.acks import AckBody
from tidegate.console.schemas.policies import PolicyBody
from tidegate.core.errors import TidegateError, UsageError
from tidegate.core.profile import (
    DOCUMENT_KIND,
    RuntimeProfile,
    profile_from_document,
    profile_from_json,
    profile_to_document,
)

KINDS = ("Policy", "Acknowledgement", DOCUMENT_KIND)
EXPORT_KINDS = ("policies", "acknowledgements", "profiles")
Document = PolicyBody | AckBody | RuntimeProfile
_ACK_KEY = ("vulnerability", "scope", "scope_value", "package_name", "package_version", "path")
_ACK_MUTABLE = ("justification", "ticket", "approver", "expires")


class ConsoleError(TidegateError):
    """The console refused a request, or could not be reached."""


class Backend(Protocol):
    def policies(self) -> list[dict[str, Any]]: ...
    def create_policy(self, doc: dict[str, Any]) -> None: ...
    def replace_policy(self, name: str, doc: dict[str, Any]) -> None: ...
    def acknowledgements(self) -> list[dict[str, Any]]: ...
    def create_ack(self, doc: dict[str, Any]) -> None: ...
    def update_ack(self, ack_id: str, changes: dict[str, Any]) -> None: ...
    def profiles(self) -> list[dict[str, Any]]: ...
    def put_profile(self, name: str, doc: dict[str, Any]) -> None: ...


def _profile_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A RuntimeProfile document as the body of PUT /profiles/{name}."""
    return {k: v for k, v in doc.items() if k not in ("kind", "name")}


def _policy_form(public: dict[str, Any]) -> dict[str, Any]:
    """The canonical body form of a policy as the API shows it."""
    return PolicyBody.model_validate(
        {
            k: public[k]
            for k in (
                "name",
                "description",
                "mode",
                "enabled",
                "enforce_after",
                "scope",
                "controls",
            )
        }
    ).document()


def _ack_form(public: dict[str, Any]) -> dict[str, Any]:
    fields = {k: public.get(k) for k in (*_ACK_KEY, "requester", *_ACK_MUTABLE)}
    return AckBody.model_validate(fields).document(public["requester"])


class HttpBackend:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            answer = self.client.request(method, f"/api/v1{path}", json=body)
        except httpx.HTTPError as exc:
            raise ConsoleError(f"console {self.client.base_url}: {exc}") from exc
        if answer.status_code >= 400:
            raise ConsoleError(f"{method} {path}: HTTP {answer.status_code}: {answer.text[:500]}")
        return answer.json() if answer.content else None

    def policies(self) -> list[dict[str, Any]]:
        return [_policy_form(p) for p in self._call("GET", "/policies")]

    def create_policy(self, doc: dict[str, Any]) -> None:
        self._call("POST", "/policies", doc)

    def replace_policy(self, name: str, doc: dict[str, Any]) -> None:
        self._call("PUT", f"/policies/{name}", doc)

    def acknowledgements(self) -> list[dict[str, Any]]:
        found = self._call("GET", "/acknowledgements?state=active&limit=1000")
        return [{"id": a["id"], **_ack_form(a)} for a in found]

    def create_ack(self, doc: dict[str, Any]) -> None:
        self._call("POST", "/acknowledgements", doc)

    def update_ack(self, ack_id: str, changes: dict[str, Any]) -> None:
        self._call("PATCH", f"/acknowledgements/{ack_id}", changes)

    def profiles(self) -> list[dict[str, Any]]:
        return [
            profile_to_document(profile_from_json(p, "console profile"))
            for p in self._call("GET", "/profiles")
        ]

    def put_profile(self, name: str, doc: dict[str, Any]) -> None:
        self._call("PUT", f"/profiles/{name}", _profile_body(doc))


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    name: str
    action: str
    """"created" | "updated" | "unchanged"."""


def load_documents(text: str, source: str) -> list[tuple[str, PolicyBody | AckBody]]:
    """The image assurance documents (Policy, Acknowledgement) of a file, as the CI gate reads
    them offline; RuntimeProfile documents are validated too, then left out (runtime matter)."""
    return [
        (kind, body)
        for kind, body in load_apply_documents(text, source)
        if not isinstance(body, RuntimeProfile)
    ]


def load_apply_documents(text: str, source: str) -> list[tuple[str, Document]]:
    """Parse and validate every document; errors name the document and the field."""
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML: {exc}") from exc
    items: list[Any] = []
    for doc in loaded:
        items.extend(doc if isinstance(doc, list) else [doc])
    out: list[tuple[str, Document]] = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or item.get("kind") not in KINDS:
            raise UsageError(f"{source}: document {i}: `kind` must be one of {', '.join(KINDS)}")
        if item["kind"] == DOCUMENT_KIND:
            out.append((DOCUMENT_KIND, profile_from_document(item, f"{source}: document {i}")))
            continue
        body = {k: v for k, v in item.items() if k != "kind"}
        model: type[PolicyBody] | type[AckBody] = (
            PolicyBody if item["kind"] == "Policy" else AckBody
        )
        try:
            out.append((item["kind"], model.model_validate(body)))
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise UsageError(f"{source}: document {i} ({item['kind']}): {errors}") from exc
    return out


def apply_documents(backend: Backend, documents: Sequence[tuple[str, Document]]) -> list[Outcome]:
    policies = {p["name"]: p for p in backend.policies()}
    active = backend.acknowledgements()
    # Only asked for when the file has some: a console without profiling still takes the rest.
    wanted = any(isinstance(body, RuntimeProfile) for _kind, body in documents)
    profiles = {p["name"]: p for p in backend.profiles()} if wanted else {}
    outcomes = []
    for _kind, body in documents:
        if isinstance(body, PolicyBody):
            outcomes.append(_apply_policy(backend, policies, body))
        elif isinstance(body, RuntimeProfile):
            outcomes.append(_apply_profile(backend, profiles, body))
        else:
            outcomes.append(_apply_ack(backend, active, body))
    return outcomes


def _apply_profile(backend: Backend, existing: dict[str, Any], profile: RuntimeProfile) -> Outcome:
    doc = profile_to_document(profile)
    current = existing.get(profile.name)
    if current == doc:
        return Outcome(DOCUMENT_KIND, profile.name, "unchanged")
    backend.put_profile(profile.name, doc)
    return Outcome(DOCUMENT_KIND, profile.name, "created" if current is None else "updated")


def _apply_policy(backend: Backend, existing: dict[str, Any], body: PolicyBody) -> Outcome:
    doc = body.document()
    current = existing.get(body.name)
    if current is None:
        backend.create_policy(doc)
        return Outcome("Policy", body.name, "created")
    if current == doc:
        return Outcome("Policy", body.name, "unchanged")
    backend.replace_policy(body.name, doc)
    return Outcome("Policy", body.name, "updated")


def _apply_ack(backend: Backend, active: list[dict[str, Any]], body: AckBody) -> Outcome:
    doc = body.document(body.requester or "")
    where = f" {body.scope_value}" if body.scope_value else ""
    name = f"{body.vulnerability} ({body.scope.value}{where})"
    same = [a for a in active if all(a.get(k) == doc[k] for k in _ACK_KEY)]
    if not same:
        backend.create_ack({k: v for k, v in doc.items() if v is not None and v != ""})
        return Outcome("Acknowledgement", name, "created")
    current = same[0]
    fields = _ACK_MUTABLE + (("requester",) if body.requester else ())
    changes = {k: doc[k] for k in fields if _norm(current.get(k)) != _norm(doc[k])}
    if not changes:
        return Outcome("Acknowledgement", name, "unchanged")
    backend.update_ack(current["id"], changes)
    return Outcome("Acknowledgement", name, "updated")


def _norm(value: Any) -> Any:
    # Times compare as instants: the console may answer "Z" for "+00:00".
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def export_documents(backend: Backend, kind: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if kind in (None, "policies"):
        out += [{"kind": "Policy", **p} for p in backend.policies()]
    if kind in (None, "acknowledgements"):
        for ack in backend.acknowledgements():
            doc = {k: v for k, v in ack.items() if k != "id" and v is not None}
            out.append({"kind": "Acknowledgement", **doc})
    if kind in (None, "profiles"):
        out += backend.profiles()
    return out


def _export_kind(value: str) -> str:
    """`--kind profile` and `--kind profiles` alike (and so for every kind)."""
    plural = {"policy": "policies", "acknowledgement": "acknowledgements", "profile": "profiles"}
    return plural.get(value, value)


# --- command line -----------------------------------------------------------------------------


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--console", metavar="URL", help="the console's address (with --token)")
    p.add_argument("--token", help="an API token (or TIDEGATE_TOKEN)")
    p.add_argument("--data-dir", type=Path, help="work on this console data directory's database")


def register(commands: Any) -> None:
    p = commands.add_parser(
        "apply", help="apply policies, acknowledgements and runtime profiles from YAML"
    )
    p.add_argument("-f", "--file", required=True, help="the YAML file ('-' for stdin)")
    _add_target(p)
    p.set_defaults(run=run_apply)
    p = commands.add_parser(
        "export", help="write policies, acknowledgements and runtime profiles as YAML"
    )
    p.add_argument("--kind", type=_export_kind, choices=EXPORT_KINDS)
    _add_target(p)
    p.set_defaults(run=run_export)


@contextmanager
def open_backend(
    args: argparse.Namespace,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[Backend]:
    import os

    if args.data_dir is not None:
        from tidegate.cli.apply_local import DatabaseBackend
        from tidegate.console.settings import Settings
        from tidegate.store.db import Database

        db = Database(Settings(data_dir=args.data_dir, environment="development").database_url)
        try:
            db.migrate()
            with db.session() as session:
                yield DatabaseBackend(session, (clock or (lambda: datetime.now(UTC)))())
        finally:
            db.dispose()
        return
    token = args.token or os.environ.get("TIDEGATE_TOKEN")
    if not args.console or not token:
        raise UsageError("give --console URL and --token T (or TIDEGATE_TOKEN), or --data-dir DIR")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(
        base_url=args.console, headers=headers, transport=transport, timeout=60.0
    ) as client:
        yield HttpBackend(client)


def run_apply(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import sys

    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    documents = load_apply_documents(text, args.file)
    with open_backend(args) as backend:
        outcomes = apply_documents(backend, documents)
    for o in outcomes:
        out.write(f"{o.kind} {o.name}: {o.action}\n")
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"-f {path}: {exc.strerror or exc}") from exc


def run_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_backend(args) as backend:
        documents = export_documents(backend, args.kind)
    yaml.safe_dump(documents, out, sort_keys=False, allow_unicode=True)
    return 0
