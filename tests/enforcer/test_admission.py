"""The admission webhook over TLS with AdmissionReview v1 documents as the API server sends them.

The agent decides from a bundle cached on disk (its console is unreachable): the reviewed
image is approved, disallowed or unknown; the `strict` policy blocks unregistered and
disallowed images, privileged containers, host network, root and SYS_ADMIN/NET_ADMIN.
"""

from __future__ import annotations

import copy
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import APPROVED, bundle, cached_agent

from helpers import images
from tidegate.core.bundle import FailMode
from tidegate.core.policy import Mode
from tidegate.enforcer.admission import AdmissionServer
from tidegate.enforcer.agent import Agent

UID = "705ab4f5-6393-11e8-b7cc-42010a800002"
GOOD_IMAGE = f"reg.example.com/team/app@{APPROVED}"
SAFE_CONTEXT = {"runAsUser": 1000, "allowPrivilegeEscalation": False}


def pod(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": containers, **spec},
    }


def container(image: str, **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": image, "securityContext": SAFE_CONTEXT, **extra}


def deployment(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec},
        },
    }


def cronjob(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec}}},
        },
    }


def admission_review(obj: dict[str, Any], *, operation: str = "CREATE") -> dict[str, Any]:
    """A review exactly as kube-apiserver sends it to a validating webhook."""
    group, _, version = obj["apiVersion"].rpartition("/")
    resource = {"Pod": "pods", "Deployment": "deployments", "CronJob": "cronjobs"}[obj["kind"]]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": obj["kind"]},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {
                "username": "admin",
                "uid": "014fbff9a07c",
                "groups": ["system:authenticated"],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if images.missing_tools("openssl"):
        pytest.skip("needs openssl")
    return images.make_tls_cert(tmp_path_factory.mktemp("tls"))


def serve(agent: Agent, tls: tuple[Path, Path]) -> Iterator[httpx.Client]:
    server = AdmissionServer(agent, "127.0.0.1", 0, cert=tls[0], key=tls[1]).start()
    try:
        with httpx.Client(
            base_url=f"https://127.0.0.1:{server.port}",
            verify=ssl.create_default_context(cafile=str(tls[0])),
        ) as http:
            yield http
    finally:
        server.close()
        agent.stop()


@pytest.fixture(params=[(Mode.ENFORCE, Mode.ENFORCE)])
def webhook(
    request: pytest.FixtureRequest, tmp_path: Path, tls: tuple[Path, Path]
) -> Iterator[tuple[httpx.Client, Agent]]:
    policy_mode, group_mode = request.param
    agent = cached_agent(tmp_path, bundle(policy_mode=policy_mode, group_mode=group_mode))
    for http in serve(agent, tls):
        yield http, agent


def _post(http: httpx.Client, body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = http.post("/validate", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["apiVersion"] == "admission.k8s.io/v1"
    assert document["kind"] == "AdmissionReview"
    return dict(document["response"])


BAD = "reg.example.com/team/bad:2.0"
UNKNOWN = "docker.io/library/nginx:1.27"


@pytest.mark.parametrize(
    ("obj", "allowed", "controls"),
    [
        (pod([container(GOOD_IMAGE)]), True, set()),
        (pod([container(BAD)]), False, {"block_disallowed"}),
        (pod([container(UNKNOWN)]), False, {"block_unregistered"}),
        (
            pod([container(GOOD_IMAGE, securityContext={"privileged": True, "runAsUser": 0})]),
            False,
            {"block_privileged", "block_root"},
        ),
        (pod([container(GOOD_IMAGE)], hostNetwork=True), False, {"block_host_network"}),
        (
            pod(
                [
                    container(
                        GOOD_IMAGE,
                        securityContext={
                            "runAsNonRoot": True,
                            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                        },
                    )
                ]
            ),
            False,
            {"blocked_capabilities"},
        ),
        (
            deployment(
                {
                    "initContainers": [container(UNKNOWN, name="init")],
                    "containers": [
                        container(
                            GOOD_IMAGE, volumeMounts=[{"name": "host", "mountPath": "/host-etc"}]
                        )
                    ],
                    "volumes": [
                        {"name": "host", "hostPath": {"path": "/etc", "type": "Directory"}}
                    ],
                }
            ),
            False,
            {"block_unregistered"},
        ),
        (
            cronjob({"containers": [container(BAD)], "restartPolicy": "OnFailure"}),
            False,
            {"block_disallowed"},
        ),
        (deployment({"containers": [container(GOOD_IMAGE)]}), True, set()),
    ],
    ids=[
        "pod-approved",
        "pod-disallowed",
        "pod-unregistered",
        "privileged-root",
        "host-network",
        "capability",
        "deployment-init-and-hostpath",
        "cronjob-disallowed",
        "deployment-clean",
    ],
)
def test_review_decides_every_container(
    webhook: tuple[httpx.Client, Agent], obj: dict[str, Any], allowed: bool, controls: set[str]
) -> None:
    http, agent = webhook
    response = _post(http, admission_review(obj))
    assert response["uid"] == UID
    assert response["allowed"] is allowed
    events = [e.body for e in agent.spool.pending()]
    assert {e["control"] for e in events} >= controls
    if obj["kind"] == "Deployment" and not allowed:
        # The default policy (audit) detects the /etc hostPath: a warning and a DETECT event.
        assert any("volume_blacklist" in w and "/etc" in w for w in response["warnings"])
        assert {e["level"] for e in events if e["control"] == "volume_blacklist"} == {"detect"}
    if not allowed:
        assert response["status"]["code"] == 403
        for control in controls:
            assert f"control {control}" in response["status"]["message"]
        assert "runtime policy 'strict'" in response["status"]["message"]
        assert {e["level"] for e in events if e["control"] in controls} == {"block"}
        assert all(e["source"] == "admission" and e["namespace"] == "shop" for e in events)


@pytest.mark.parametrize(
    ("policy_mode", "group_mode"),
    [(Mode.AUDIT, Mode.ENFORCE), (Mode.ENFORCE, Mode.AUDIT), (Mode.AUDIT, Mode.AUDIT)],
)
def test_audit_somewhere_allows_with_warnings(
    tmp_path: Path, tls: tuple[Path, Path], policy_mode: Mode, group_mode: Mode
) -> None:
    agent = cached_agent(tmp_path, bundle(policy_mode=policy_mode, group_mode=group_mode))
    for http in serve(agent, tls):
        response = _post(http, admission_review(pod([container(BAD)])))
        assert response["allowed"] is True
        assert any("DETECT" in w and "block_disallowed" in w for w in response["warnings"])
        (event,) = [
            e.body for e in agent.spool.pending() if e.body["control"] == "block_disallowed"
        ]
        assert (
            event["level"],
            event["policy_mode"],
            event["enforcer_mode"],
            event["effective_mode"],
        ) == ("detect", policy_mode.value, group_mode.value, "audit")


def _malformed() -> list[tuple[str, bytes | dict[str, Any], str | None]]:
    good = admission_review(pod([container(BAD)]))
    no_uid = copy.deepcopy(good)
    del no_uid["request"]["uid"]
    wrong_version = {**copy.deepcopy(good), "apiVersion": "admission.k8s.io/v1beta1"}
    containers_not_list = copy.deepcopy(good)
    containers_not_list["request"]["object"]["spec"]["containers"] = {"name": "x"}
    no_image = copy.deepcopy(good)
    del no_image["request"]["object"]["spec"]["containers"][0]["image"]
    no_template = admission_review(deployment({"containers": []}))
    no_template["request"]["object"]["spec"]["template"] = "nope"
    return [
        ("not-json", b'{"apiVersion": ', None),
        ("not-an-object", b"[1, 2]", None),
        ("no-request", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, None),
        ("no-uid", no_uid, "request.uid"),
        ("v1beta1", wrong_version, "admission.k8s.io/v1"),
        ("containers-not-a-list", containers_not_list, "spec.containers: expected a list"),
        ("container-without-image", no_image, "spec.containers[0].image"),
        ("template-not-an-object", no_template, "request.object.spec.template: expected an object"),
    ]


@pytest.mark.parametrize("fail_mode", [FailMode.OPEN, FailMode.CLOSED])
@pytest.mark.parametrize(("name", "body", "says"), _malformed(), ids=[m[0] for m in _malformed()])
def test_malformed_review_is_answered_per_fail_mode(
    tmp_path: Path,
    tls: tuple[Path, Path],
    fail_mode: FailMode,
    name: str,
    body: Any,
    says: str | None,
) -> None:
    agent = cached_agent(
        tmp_path, bundle(policy_mode=Mode.ENFORCE, group_mode=Mode.ENFORCE, fail_mode=fail_mode)
    )
    for http in serve(agent, tls):
        response = _post(http, body)
        assert response["allowed"] is (fail_mode is FailMode.OPEN)
        assert response["status"]["code"] == 400
        assert "malformed AdmissionReview" in response["status"]["message"]
        assert f"fail-{fail_mode.value}" in response["status"]["message"]
        if says:
            assert says in response["status"]["message"]
        if name not in ("not-json", "not-an-object", "no-request", "no-uid"):
            assert response["uid"] == UID
        assert agent.spool.count() == 0


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_pass(webhook: tuple[httpx.Client, Agent], operation: str) -> None:
    http, agent = webhook
    response = _post(http, admission_review(pod([container(BAD)]), operation=operation))
    assert response == {"uid": UID, "allowed": True}
    assert agent.spool.count() == 0


def test_dry_run_decides_without_events(webhook: tuple[httpx.Client, Agent]) -> None:
    http, agent = webhook
    review = admission_review(pod([container(BAD)]))
    review["request"]["dryRun"] = True
    assert _post(http, review)["allowed"] is False
    assert agent.spool.count() == 0


def test_plain_http_and_oversized_bodies_are_refused(webhook: tuple[httpx.Client, Agent]) -> None:
    http, _ = webhook
    port = http.base_url.port
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"http://127.0.0.1:{port}/validate", content=b"{}", timeout=5)
    answer = http.post("/validate", content=b"x" * (4 * 1024 * 1024))
    assert answer.status_code == 413
    assert http.get("/healthz").status_code == 200
