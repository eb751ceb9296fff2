"""The pieces between the console's inventory and the monitor: executable hashes in the policy
bundle (16-byte prefixes, hostile blobs refused, an older format refused), the console's
bundle carrying a scanned image's executables, hash comparison on a common prefix, the overlay
upper dir from mountinfo, the watched container from an OCI hook's state, and the agent's check
that a watched container still runs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import NOW, UNREACHABLE

from console.conftest import client  # noqa: F401  (fixture reused by name)
from helpers import images
from tidegate import demo
from tidegate.client.base import ConsoleClient
from tidegate.core.bundle import (
    BUNDLE_FORMAT,
    BundleError,
    EnforcerGroupInfo,
    ImageRecord,
    build_bundle,
    build_image_index,
    bundle_from_json,
    bundle_to_json,
    hash_prefix,
)
from tidegate.core.drift import same_hash
from tidegate.core.roles import Role
from tidegate.core.runtime import ContainerRequest, ImageStateKind
from tidegate.enforcer.agent import Agent, container_alive
from tidegate.enforcer.errors import EnforcerError
from tidegate.enforcer.monitor import Monitor, WatchedContainer
from tidegate.enforcer.oci import overlay_upper_dir, watched_from_oci
from tidegate.enforcer.state import StateDir
from tidegate.image import open_image
from tidegate.scan import scan_image
from tidegate.services.serialize import document_from_result

API = "/api/v1"
CONFIG = "sha256:" + "c1" * 32
BUSYBOX = hashlib.sha256(b"busybox").hexdigest()
NGINX = hashlib.sha256(b"nginx").hexdigest()
CID = "7" * 64


def _bundle(executables: Any) -> bytes:
    index = build_image_index(
        [ImageRecord(ImageStateKind.REGISTERED_APPROVED, config_digest=CONFIG,
                     executables=executables)]
    )  # fmt: skip
    group = EnforcerGroupInfo(name="g")
    return bundle_to_json(
        build_bundle(group=group, policies=(), services=(), images=index, now=NOW)
    )


@pytest.mark.parametrize(
    ("executables", "expected"),
    [
        (
            {"/bin/busybox": BUSYBOX, "/usr/sbin/nginx": "sha256:" + NGINX},
            {"/bin/busybox": BUSYBOX[:32], "/usr/sbin/nginx": NGINX[:32]},
        ),
        (
            {"/bin/sh": None, "/bin/x": "not-hex", "/bin/y": "ab" * 8},
            dict.fromkeys(["/bin/sh", "/bin/x", "/bin/y"]),
        ),  # unknown, hostile, too short: not known
        (("/bin/sh", "/bin/ls"), {"/bin/sh": None, "/bin/ls": None}),  # paths only
    ],
)
def test_executable_hashes_survive_the_bundle_json(executables: Any, expected: Any) -> None:
    loaded = bundle_from_json(_bundle(executables))
    assert dict(loaded.images.inventory_of(CONFIG) or {}) == expected
    assert loaded.images.executables_of(CONFIG) == tuple(expected)
    # The same content gives the same version (the hashes are part of the content).
    assert bundle_from_json(_bundle(executables)).version == loaded.version


def test_the_inventory_is_compact() -> None:
    many = {f"/usr/bin/tool{i}": hashlib.sha256(str(i).encode()).hexdigest() for i in range(1000)}
    document = json.loads(_bundle(many))
    (group,) = document["images"]["executables"]
    assert len(base64.b64decode(group["sha256"])) == 16 * 1000
    assert len(_bundle(many)) < 60_000  # ~ 24 bytes of hash per executable, and its path


def _with_group(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(_bundle({"/bin/busybox": BUSYBOX, "/bin/sh": None}))
    change(document["images"]["executables"][0])
    content = {k: v for k, v in document.items() if k not in ("version", "generated_at")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    document["version"] = "sha256:" + hashlib.sha256(canonical).hexdigest()
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.update(sha256="***"), "bundle.images.executables[0].sha256: not base64"),
        (
            lambda g: g.update(sha256=base64.b64encode(b"x" * 16).decode()),
            "expected 16 bytes for each of the 2 paths",
        ),
        (lambda g: g.update(sha256=7), "bundle.images.executables[0].sha256: expected a string"),
        (lambda g: g.update(paths="/bin/sh"), "executables[0].paths: expected a list of strings"),
    ],
)
def test_hostile_inventories_are_refused(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(BundleError) as caught:
        bundle_from_json(_with_group(change))
    assert message in str(caught.value)


def test_a_bundle_of_the_previous_format_is_refused_and_fetched_again(tmp_path: Path) -> None:
    document = json.loads(_bundle({"/bin/sh": BUSYBOX}))
    document["format"] = BUNDLE_FORMAT - 1
    older = rf"bundle\.format: unsupported bundle format {BUNDLE_FORMAT - 1}, older"
    with pytest.raises(BundleError, match=older):
        bundle_from_json(json.dumps(document))
    # An agent with such a bundle cached starts without one (and asks the console for one).
    state = tmp_path / "state"
    state.mkdir()
    (state / "bundle.json").write_text(json.dumps(document))
    log: list[str] = []

    class Log:
        def write(self, text: str) -> None:
            log.append(text)

        def flush(self) -> None:
            pass

    fresh = Agent(
        ConsoleClient(UNREACHABLE, "t", timeout=1),
        StateDir(state),
        hostname="n",
        log=Log(),  # type: ignore[arg-type]
    )
    try:
        assert fresh.bundle is None
        assert any(f"unsupported bundle format {BUNDLE_FORMAT - 1}" in line for line in log)
    finally:
        fresh.stop()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (BUSYBOX, BUSYBOX, True),
        (BUSYBOX[:32], BUSYBOX, True),
        ("sha256:" + BUSYBOX, BUSYBOX[:32].upper(), True),
        (BUSYBOX[:32], NGINX, False),
        (BUSYBOX[:31], BUSYBOX, False),  # under 128 bits: never the same
        ("", BUSYBOX, False),
    ],
)
def test_same_hash(a: str, b: str, same: bool) -> None:
    assert same_hash(a, b) is same
    assert same_hash(b, a) is same
    assert hash_prefix(BUSYBOX) == BUSYBOX[:32]


def test_the_consoles_bundle_carries_the_scanned_executables(
    client: TestClient,  # noqa: F811
    headers_for: Callable[[Role], dict[str, str]],
) -> None:
    layout = images.cached("gate-demo-v1", demo.build) / "layout"
    result = scan_image(open_image(f"oci:{layout}:{demo.TAG}"))
    answer = client.post(
        f"{API}/images",
        json={"scan": document_from_result(result)},
        headers=headers_for(Role.CI),
    )
    assert answer.status_code == 201, answer.text
    group = client.post(
        f"{API}/enforcer-groups", json={"name": "hosts"}, headers=headers_for(Role.ADMINISTRATOR)
    )
    token = group.json()["token"]
    got = client.get(f"{API}/enforcer/bundle", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    bundle = bundle_from_json(got.content)
    config = result.image.config_digest
    assert config
    inventory = bundle.images.inventory_of(config)
    assert inventory is not None
    assert dict(inventory) == {e.path: e.sha256[:32] for e in result.catalogue.executables}
    assert "/bin/busybox" in inventory


# -- the container the hook let through -------------------------------------------------------

MERGED = "/var/lib/containers/storage/overlay/abc/merged"
UPPER = "/var/lib/containers/storage/overlay/abc/diff"


def _mount(point: str, fstype: str, options: str) -> str:
    return f"56 50 0:43 / {point} rw,relatime shared:1 - {fstype} {fstype} {options}"


@pytest.mark.parametrize(
    ("mountinfo", "upper"),
    [
        ([_mount(MERGED, "overlay", f"rw,lowerdir=/l/A:/l/B,upperdir={UPPER},workdir=/w")], UPPER),
        (
            [_mount("/srv/with\\040space/merged", "overlay", "rw,upperdir=/srv/up\\134dir,x=y")],
            None,
        ),
        ([_mount(MERGED, "tmpfs", "rw,size=64k")], None),
        (
            [  # mounted over: the last mount at the point is the one in effect
                _mount(MERGED, "overlay", f"rw,upperdir={UPPER}"),
                _mount(MERGED, "tmpfs", "rw"),
            ],
            None,
        ),
        (["garbage", "", "1 2 3 - overlay", _mount(MERGED, "overlay", "rw,lowerdir=/l")], None),
    ],
)
def test_overlay_upper_dir(mountinfo: list[str], upper: str | None) -> None:
    assert overlay_upper_dir(MERGED, "\n".join(mountinfo)) == upper


def test_overlay_upper_dir_with_escapes() -> None:
    line = _mount("/srv/with\\040space/merged", "overlay", "rw,upperdir=/srv/up\\134dir,x=y")
    assert overlay_upper_dir("/srv/with space/merged", line) == "/srv/up\\dir"


def _request() -> ContainerRequest:
    return ContainerRequest(
        container_id=CID, name="web", image_ref="localhost/demo:1", image_id=CONFIG,
        host="n", enforcer_group="g", namespace="shop", labels=(("app", "web"),),
    )  # fmt: skip


def test_watched_from_oci(tmp_path: Path) -> None:
    bundle = tmp_path / "overlay-containers" / CID / "userdata"
    merged = tmp_path / "overlay" / "abc" / "merged"
    (tmp_path / "overlay" / "abc" / "diff").mkdir(parents=True)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(_mount(str(merged), "overlay", "rw,upperdir=/elsewhere/diff") + "\n")
    state = {"id": CID, "pid": 4242, "bundle": str(bundle)}
    watched = watched_from_oci(
        state, {"root": {"path": str(merged)}}, _request(), mountinfo=mountinfo
    )
    assert watched == WatchedContainer(
        container_id=CID, merged_dir=str(merged), upper_dir="/elsewhere/diff", name="web",
        image_ref="localhost/demo:1", image_id=CONFIG, labels=(("app", "web"),),
        namespace="shop", pid=4242,
    )  # fmt: skip
    # Not in mountinfo: podman's layout, diff next to merged; a relative root is the bundle's.
    mountinfo.write_text("")
    relative = os.path.relpath(merged, bundle)
    watched = watched_from_oci(
        {**state, "pid": True}, {"root": {"path": relative}}, _request(), mountinfo=mountinfo
    )
    assert (watched.merged_dir, watched.upper_dir) == (str(merged), str(merged.parent / "diff"))
    assert watched.pid is None  # not an integer pid
    with pytest.raises(EnforcerError, match=r"no root\.path"):
        watched_from_oci(state, {"root": "x"}, _request(), mountinfo=mountinfo)
    with pytest.raises(EnforcerError, match="is not an overlay"):
        watched_from_oci(state, {"root": {"path": "/srv/rootfs"}}, _request(), mountinfo=mountinfo)
    with pytest.raises(EnforcerError, match="cannot read"):
        watched_from_oci(state, {"root": {"path": str(merged)}}, _request(),
                         mountinfo=tmp_path / "absent")  # fmt: skip


@pytest.mark.parametrize(
    ("cgroup", "alive"),
    [
        (f"0::/libpod_parent/libpod-{CID}\n", True),
        (f"0::/machine.slice/libpod-{CID}.scope/container\n", True),
        (f"0::/libpod_parent/libpod-{'8' * 64}\n", False),  # the pid now belongs to another
        ("0::/user.slice/session-1.scope\n", False),  # reused by a host process
        (None, False),  # gone
    ],
)
def test_container_alive(tmp_path: Path, cgroup: str | None, alive: bool) -> None:
    if cgroup is not None:
        (tmp_path / "99").mkdir()
        (tmp_path / "99" / "cgroup").write_text(cgroup)
    watched = WatchedContainer(CID, str(tmp_path / "m"), str(tmp_path / "u"), pid=99)
    assert container_alive(watched, proc=str(tmp_path)) is alive


def test_container_alive_without_a_pid_asks_the_mount(tmp_path: Path) -> None:
    assert container_alive(WatchedContainer(CID, "/proc", "/x")) is True  # a mount point
    assert container_alive(WatchedContainer(CID, str(tmp_path), "/x")) is False


def test_an_exec_is_placed_by_its_filesystem_and_path(tmp_path: Path) -> None:
    # A container is found from the exec'd file's st_dev (its overlay) when the file's path is
    # container-relative (reached through the container's own mount namespace); a host process
    # running the file by its host path, or a file on another filesystem, falls back to the
    # cgroup.
    monitor = Monitor(lambda: None, lambda _event: None)
    merged = tmp_path / "merged"
    merged.mkdir()
    mine = WatchedContainer("c" * 64, str(merged), str(tmp_path / "upper"))
    monitor.watch(mine)
    dev = os.stat(merged).st_dev
    assert monitor._container_on(dev, "/bin/busybox") is mine
    assert monitor._container_on(dev, "/tmp/dropped (deleted)") is mine
    assert monitor._container_on(dev, f"{merged}/bin/busybox") is None  # the host's path
    assert monitor._container_on(dev + 1, "/bin/busybox") is None  # another filesystem
    monitor.unwatch(mine.container_id)
    assert monitor._container_on(dev, "/bin/busybox") is None
    monitor.stop()


def test_a_reused_device_number_names_the_new_container(tmp_path: Path) -> None:
    # An overlay's device number comes back for a later container once the first is unmounted;
    # the container watched last owns it, even before the reaper forgets the first.
    monitor = Monitor(lambda: None, lambda _event: None)
    merged = tmp_path / "merged"
    merged.mkdir()
    old = WatchedContainer("a" * 64, str(merged), str(tmp_path / "upper"))
    new = WatchedContainer("b" * 64, str(merged), str(tmp_path / "upper"))
    monitor.watch(old)
    monitor.watch(new)
    dev = os.stat(merged).st_dev
    assert monitor._container_on(dev, "/bin/sh") is new
    monitor.unwatch(old.container_id)  # the reaper, late
    assert monitor._container_on(dev, "/bin/sh") is new
    monitor.stop()
