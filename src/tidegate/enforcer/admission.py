"""The Kubernetes validating admission webhook: AdmissionReview v1 over TLS.

Pods and the workload controllers that carry a pod template (Deployment, StatefulSet,
DaemonSet, ReplicaSet, ReplicationController, Job, CronJob) are decided container by container
(init, ephemeral and regular containers) with the same decision as the OCI hook. The answer
echoes `request.uid`; a denial is `allowed: false` with `status.message` naming policy and
control, DETECT violations come back as `warnings`. A review that cannot be read is answered
with a well-formed AdmissionReview saying why, allowed or not per the group's fail mode.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tidegate.core.runtime import ContainerRequest, Mount
from tidegate.enforcer.agent import Agent, Outcome
from tidegate.enforcer.errors import EnforcerError

__all__ = ["AdmissionServer", "MalformedReview", "review", "workload_requests"]

SOURCE = "admission"
MAX_REVIEW = 3 * 1024 * 1024
NON_ROOT_UID = 65534
"""Stands for "any non-root uid": kubelet refuses to start a `runAsNonRoot` container as root."""
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class MalformedReview(EnforcerError):
    """An AdmissionReview (or the object in it) that cannot be read; the message says where."""


@dataclass(frozen=True, slots=True)
class _Workload:
    kind: str
    namespace: str | None
    name: str
    labels: tuple[tuple[str, str], ...]
    pod_spec: dict[str, Any]


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReview(f"{where}: expected an object")
    return value


def _opt_obj(value: Any, where: str) -> dict[str, Any]:
    return {} if value is None else _obj(value, where)


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedReview(f"{where}: expected a list")
    return value


def _workload(req: dict[str, Any]) -> _Workload | None:
    """The pod template of the reviewed object; None for kinds without one."""
    kind = _obj(req.get("kind"), "request.kind").get("kind")
    obj = _obj(req.get("object"), "request.object")
    meta = _opt_obj(obj.get("metadata"), "request.object.metadata")
    name = str(meta.get("name") or meta.get("generateName") or req.get("name") or "")
    namespace = req.get("namespace") or meta.get("namespace")
    if kind == "Pod":
        template, where = obj, "request.object"
    elif kind in _TEMPLATE_PATHS:
        template, where = obj, "request.object"
        for key in _TEMPLATE_PATHS[kind]:
            where = f"{where}.{key}"
            template = _obj(template.get(key), where)
    else:
        return None
    tmeta = _opt_obj(template.get("metadata"), f"{where}.metadata")
    labels = _opt_obj(tmeta.get("labels") or meta.get("labels"), f"{where}.metadata.labels")
    return _Workload(
        kind=str(kind),
        namespace=str(namespace) if namespace else None,
        name=name,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        pod_spec=_obj(template.get("spec"), f"{where}.spec"),
    )


def _pod_context(pod: dict[str, Any]) -> dict[str, Any]:
    value = pod.get("securityContext")
    return value if isinstance(value, dict) else {}


def _uid(pod: dict[str, Any], sc: dict[str, Any]) -> int | None:
    pod_sc = _pod_context(pod)
    for ctx in (sc, pod_sc):
        value = ctx.get("runAsUser")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    if any(ctx.get("runAsNonRoot") is True for ctx in (sc, pod_sc)):
        return NON_ROOT_UID
    return None  # the image's user, unknown here: counts as root for block_root


def _mounts(pod: dict[str, Any], container: dict[str, Any], where: str) -> tuple[Mount, ...]:
    host_paths: dict[str, str] = {}
    for i, volume in enumerate(_list(pod.get("volumes"), "spec.volumes")):
        volume = _obj(volume, f"spec.volumes[{i}]")
        host_path = volume.get("hostPath")
        if isinstance(host_path, dict) and isinstance(host_path.get("path"), str):
            host_paths[str(volume.get("name"))] = host_path["path"]
    out = []
    for i, vm in enumerate(_list(container.get("volumeMounts"), f"{where}.volumeMounts")):
        vm = _obj(vm, f"{where}.volumeMounts[{i}]")
        source = host_paths.get(str(vm.get("name")))
        if source is not None:
            ro = ("ro",) if vm.get("readOnly") is True else ()
            out.append(
                Mount(
                    source=source,
                    destination=str(vm.get("mountPath") or ""),
                    type="bind",
                    options=ro,
                )
            )
    return tuple(out)


def _container_request(work: _Workload, container: dict[str, Any], where: str) -> ContainerRequest:
    pod = work.pod_spec
    image = container.get("image")
    if not isinstance(image, str) or not image:
        raise MalformedReview(f"{where}.image: expected an image name")
    sc = _opt_obj(container.get("securityContext"), f"{where}.securityContext")
    caps = _opt_obj(sc.get("capabilities"), f"{where}.securityContext.capabilities")
    digest = image.split("@", 1)[1] if "@" in image else None
    name = str(container.get("name") or "")
    return ContainerRequest(
        container_id=f"{work.namespace or '-'}/{work.kind}/{work.name}/{name}",
        name=name,
        image_ref=image,
        manifest_digest=digest,
        namespace=work.namespace,
        labels=work.labels,
        mounts=_mounts(pod, container, where),
        user_uid=_uid(pod, sc),
        privileged=sc.get("privileged") is True,
        added_capabilities=tuple(
            str(c) for c in _list(caps.get("add"), f"{where}.securityContext.capabilities.add")
        ),
        host_network=pod.get("hostNetwork") is True,
        host_pid=pod.get("hostPID") is True,
        host_ipc=pod.get("hostIPC") is True,
        no_new_privileges=sc.get("allowPrivilegeEscalation") is False,
        seccomp_unconfined=_unconfined(pod, sc),
        args=tuple(
            str(a)
            for a in (*_list(container.get("command"), where), *_list(container.get("args"), where))
        ),
        env_names=tuple(
            str(_obj(e, f"{where}.env").get("name"))
            for e in _list(container.get("env"), f"{where}.env")
        ),
    )


def _unconfined(pod: dict[str, Any], sc: dict[str, Any]) -> bool:
    pod_sc = _pod_context(pod)
    for ctx in (sc, pod_sc):
        profile = ctx.get("seccompProfile")
        if isinstance(profile, dict) and profile.get("type"):
            return profile.get("type") == "Unconfined"
    return True  # Kubernetes' own default is Unconfined unless the kubelet says otherwise


def workload_requests(req: dict[str, Any]) -> Iterator[ContainerRequest]:
    """One `ContainerRequest` per container of the reviewed object (none for other kinds)."""
    work = _workload(req)
    if work is None:
        return
    for key in _CONTAINER_LISTS:
        for i, container in enumerate(_list(work.pod_spec.get(key), f"spec.{key}")):
            where = f"spec.{key}[{i}]"
            yield _container_request(work, _obj(container, where), where)


def _response(
    uid: str, allowed: bool, message: str | None, warnings: list[str], code: int
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message:
        response["status"] = {"code": code, "message": message}
    if warnings:
        response["warnings"] = warnings[:50]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def review(agent: Agent, body: bytes) -> dict[str, Any]:
    """The AdmissionReview response for one request body (never raises on hostile input)."""
    uid = ""
    try:
        document = _obj(json.loads(body), "AdmissionReview")
        req = _obj(document.get("request"), "request")
        uid = str(req["uid"]) if isinstance(req.get("uid"), str) else ""
        if (
            document.get("apiVersion") != "admission.k8s.io/v1"
            or document.get("kind") != "AdmissionReview"
        ):
            raise MalformedReview("expected apiVersion admission.k8s.io/v1, kind AdmissionReview")
        if not uid:
            raise MalformedReview("request.uid: missing")
        if req.get("operation") not in ("CREATE", "UPDATE"):
            return _response(uid, True, None, [], 200)
        requests = list(workload_requests(req))
    except (ValueError, MalformedReview) as exc:
        outcome = agent.undecidable(f"malformed AdmissionReview: {exc}")
        return _response(uid, outcome.allowed, outcome.message, [], 400)
    dry_run = req.get("dryRun") is True
    outcomes = [agent.decide(r, source=SOURCE, record=not dry_run) for r in requests]
    return _combine(uid, outcomes)


def _combine(uid: str, outcomes: list[Outcome]) -> dict[str, Any]:
    warnings = [w for o in outcomes for w in o.warnings]
    denied = [o.message for o in outcomes if not o.allowed]
    if denied:
        return _response(uid, False, "; ".join(denied), warnings, 403)
    return _response(uid, True, None, warnings, 200)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # decisions are events; the access log would only repeat them

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in ("/healthz", "/readyz"):
            ready = self.path == "/healthz" or self.server.agent.bundle is not None
            self._send(200 if ready else 503, {"status": "ok" if ready else "no bundle yet"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] not in ("/validate", "/"):
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_REVIEW:
            self._send(413 if length > 0 else 400, {"error": f"body must be 1..{MAX_REVIEW} bytes"})
            return
        self._send(200, review(self.server.agent, self.rfile.read(length)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    agent: Agent


class AdmissionServer:
    """The webhook on HOST:PORT with TLS (cert and key PEM files), in a background thread."""

    def __init__(self, agent: Agent, host: str, port: int, *, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
            self._server = _Server((host, port), _Handler)
        except (OSError, ssl.SSLError) as exc:
            raise EnforcerError(f"admission webhook on {host}:{port}: {exc}") from exc
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.agent = agent
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="admission", daemon=True
        )

    def start(self) -> AdmissionServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
