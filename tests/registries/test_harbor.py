"""Harbor through the distribution adapter plus its project API, and the bearer token service,
against an `httpx.MockTransport` that answers as Harbor does (catalog closed to a robot
account, token service at /service/token, projects and repositories paged)."""

from __future__ import annotations

import base64
import json

import httpx

from tidegate.integrations.registries import RegistryConnection, RegistryKind, adapter_for

ROBOT = ("robot$ci", "robot-secret")
PROJECTS = [{"name": f"p{i}"} for i in range(101)]  # two pages of 100
REPOS = {"p0": ["p0/app", "p0/api"], "p100": ["p100/tool"]}
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()


def _basic_ok(request: httpx.Request) -> bool:
    raw = f"{ROBOT[0]}:{ROBOT[1]}".encode()
    return request.headers.get("authorization") == "Basic " + base64.b64encode(raw).decode()


def harbor(request: httpx.Request) -> httpx.Response:
    path, params = request.url.path, request.url.params
    challenge = {"www-authenticate": 'Bearer realm="https://harbor.test/service/token",'
                 'service="harbor-registry"'}  # fmt: skip
    if path == "/service/token":
        if not _basic_ok(request):
            return httpx.Response(401)
        return httpx.Response(200, json={"token": f"tok:{params.get('scope')}"})
    if path.startswith("/v2/"):
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer tok:"):
            return httpx.Response(401, headers=challenge)
        if path == "/v2/":
            return httpx.Response(200, headers={"docker-distribution-api-version": "registry/2.0"})
        if path == "/v2/_catalog":
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        if path.endswith("/tags/list"):
            return httpx.Response(200, json={"name": path[4:-10], "tags": ["1.0"]})
        if "/manifests/" in path:
            return httpx.Response(200, content=MANIFEST, headers={
                "content-type": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
        return httpx.Response(404)
    if path.startswith("/api/v2.0/"):
        if not _basic_ok(request):
            return httpx.Response(401)
        page, size = int(params["page"]), int(params["page_size"])
        if path == "/api/v2.0/projects":
            return httpx.Response(200, json=PROJECTS[(page - 1) * size : page * size])
        project = path.split("/")[4]
        names = REPOS.get(project, []) if page == 1 else []
        return httpx.Response(200, json=[{"name": n} for n in names])
    return httpx.Response(404)


def test_harbor_lists_projects_when_the_catalog_is_closed() -> None:
    adapter = adapter_for(
        RegistryKind.HARBOR,
        RegistryConnection("https://harbor.test", username=ROBOT[0], password=ROBOT[1]),
        transport=httpx.MockTransport(harbor),
    )
    try:
        report = adapter.check()
        assert (report.ok, report.auth_scheme) == (True, "bearer")
        assert list(adapter.repositories()) == ["p0/app", "p0/api", "p100/tool"]
        assert adapter.tags("p0/app") == ["1.0"]
        info = adapter.describe("p0/app", "1.0")
        assert info.digest.startswith("sha256:")
        assert info.created is None  # the config blob is not served: undated, not an error
    finally:
        adapter.close()


def test_bearer_token_service_refusal_is_reported() -> None:
    adapter = adapter_for(
        RegistryKind.DISTRIBUTION,
        RegistryConnection("https://harbor.test", username=ROBOT[0], password="wrong"),
        transport=httpx.MockTransport(harbor),
    )
    try:
        report = adapter.check()
    finally:
        adapter.close()
    assert (report.ok, report.problem, report.auth_scheme) == (False, "auth", "bearer")
    assert "token service" in report.message
    assert "realm 'https://harbor.test/service/token'" in report.message
