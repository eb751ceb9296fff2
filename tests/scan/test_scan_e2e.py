"""The whole scan pipeline (`scan_image(open_image(ref))`) on real images.

- The demo image (apk, Python and npm packages, executables, a planted key), converted by skopeo
  to every transport, pushed to a real registry with and without htpasswd auth, and unpacked by
  umoci as a root filesystem: every transport gives the same catalogue.
- A real `debootstrap --variant=minbase bookworm` root filesystem: the dpkg catalogue equals what
  `dpkg-query` says about it, package for package, source packages included.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from helpers import images
from tidegate.core.models import PackageType, ScanResult
from tidegate.demo import TAG as DEMO_TAG
from tidegate.demo import build as build_demo
from tidegate.image import SourceOptions, open_image
from tidegate.scan import scan_image

pytestmark = pytest.mark.system

DEMO_REPO = "e2e/demo"


def scan(ref: str, options: SourceOptions | None = None) -> ScanResult:
    source = open_image(ref, options)
    try:
        return scan_image(source)
    finally:
        source.close()


def catalogue_sets(result: ScanResult) -> dict[str, frozenset[tuple[Any, ...]]]:
    """What a transport must not change: packages, executables, secrets, users, unknowns."""
    cat = result.catalogue
    return {
        "packages": frozenset(
            (
                p.type,
                p.name,
                p.version,
                p.purl,
                p.source_name,
                p.source_version,
                p.arch,
                tuple(loc.path for loc in p.locations),
            )
            for p in cat.packages
        ),
        "executables": frozenset((e.path, e.mode, e.size, e.sha256) for e in cat.executables),
        "secrets": frozenset((s.path, s.rule_id, s.line) for s in cat.secrets),
        "users": frozenset((u.name, u.uid, u.gid) for u in cat.users),
        "unknowns": frozenset((u.where, u.reason) for u in cat.unknowns),
    }


@pytest.fixture(scope="module")
def demo_refs(
    tmp_path_factory: pytest.TempPathFactory,
    registry: images.Registry,
    auth_registry: images.Registry,
    push_image: Callable[..., str],
) -> dict[str, tuple[str, SourceOptions | None]]:
    """The demo image under every transport Tidegate reads, with the options each needs."""
    work = tmp_path_factory.mktemp("demo-e2e")
    layout = build_demo(work)
    oci = f"oci:{layout}:{DEMO_TAG}"
    oci_archive, docker_archive = work / "demo.oci.tar", work / "demo.docker.tar"
    images.run("skopeo", "copy", "--quiet", oci, f"oci-archive:{oci_archive}:{DEMO_TAG}")
    images.run("skopeo", "copy", "--quiet", oci, f"docker-archive:{docker_archive}:demo:1")
    images.run("umoci", "unpack", "--image", f"{layout}:{DEMO_TAG}", work / "bundle")
    anon = push_image(oci, registry, f"{DEMO_REPO}:1")
    private = push_image(oci, auth_registry, f"{DEMO_REPO}:1")
    auth = SourceOptions(
        insecure=True, username=auth_registry.username, password=auth_registry.password
    )
    return {
        "oci": (oci, None),
        "oci-archive": (f"oci-archive:{oci_archive}:{DEMO_TAG}", None),
        "docker-archive": (f"docker-archive:{docker_archive}", None),
        "registry": (anon, SourceOptions(insecure=True)),
        "registry-auth": (private, auth),
        "dir": (f"dir:{work / 'bundle' / 'rootfs'}", None),
    }


@pytest.fixture(scope="module")
def demo_baseline(demo_refs: dict[str, tuple[str, SourceOptions | None]]) -> ScanResult:
    return scan(demo_refs["oci"][0])


def test_the_demo_catalogue_is_complete(demo_baseline: ScanResult) -> None:
    """The yardstick itself must hold what the demo planted, or the comparisons prove little."""
    sets = catalogue_sets(demo_baseline)
    names = {(p[0], p[1], p[2], p[4]) for p in sets["packages"]}
    assert names == {
        (PackageType.APK, "busybox", "1.36.1-r0", "busybox"),
        (PackageType.APK, "libcrypto3", "3.1.0-r4", "openssl"),
        (PackageType.APK, "libssl3", "3.1.0-r4", "openssl"),
        (PackageType.APK, "musl", "1.2.4-r1", "musl"),
        (PackageType.PYPI, "requests", "2.25.0", None),
        (PackageType.NPM, "lodash", "4.17.15", None),
    }
    busybox = Path("/bin/busybox").read_bytes()
    assert ("/bin/busybox", 0o755, len(busybox), hashlib.sha256(busybox).hexdigest()) in sets[
        "executables"
    ]
    assert "/app/start.sh" in {e[0] for e in sets["executables"]}
    assert {(s[0], s[1]) for s in sets["secrets"]} == {("/home/app/.ssh/id_ed25519", "private-key")}
    assert ("app", 1000, 1000) in sets["users"]
    assert demo_baseline.facts.uid == 1000
    assert demo_baseline.facts.runs_as_root is False
    assert not sets["unknowns"]
    assert demo_baseline.catalogue.os is not None
    assert demo_baseline.catalogue.os.id == "alpine"


@pytest.mark.parametrize(
    "kind", ["oci-archive", "docker-archive", "registry", "registry-auth", "dir"]
)
def test_every_transport_gives_the_same_catalogue(
    kind: str,
    demo_refs: dict[str, tuple[str, SourceOptions | None]],
    demo_baseline: ScanResult,
) -> None:
    ref, options = demo_refs[kind]
    result = scan(ref, options)
    assert catalogue_sets(result) == catalogue_sets(demo_baseline)
    assert result.catalogue.os == demo_baseline.catalogue.os
    if kind == "dir":
        # A root filesystem has no config: no user to resolve, no digests.
        assert result.image.config_digest is None
        assert result.facts.user == ""
        return
    assert result.image.config_digest == demo_baseline.image.config_digest
    assert [layer.diff_id for layer in result.image.layers] == [
        layer.diff_id for layer in demo_baseline.image.layers
    ]
    assert result.facts == demo_baseline.facts
    if kind.startswith("registry"):
        assert result.image.manifest_digest == demo_baseline.image.manifest_digest


def test_the_busybox_image_squashes_through_the_pipeline(busybox_layout: Path) -> None:
    """Whiteouts and opaque directories of the session image decide what gets catalogued."""
    result = scan(f"oci:{busybox_layout}:{images.TAG}")
    executables = {e.path: e for e in result.catalogue.executables}
    assert {"/bin/busybox", "/bin/busybox-hl", "/usr/bin/suid-tool", "/opt/app/app.py"} <= set(
        executables
    )
    assert executables["/bin/busybox-hl"].sha256 == executables["/bin/busybox"].sha256
    assert executables["/usr/bin/suid-tool"].mode & 0o4000
    assert not images.GONE & set(executables)
    assert result.facts.uid == 1000
    assert result.facts.runs_as_root is False
    assert result.catalogue.os is not None
    assert result.catalogue.os.id == "busybox"


# --- a real Debian root filesystem ------------------------------------------------------------

DPKG_FORMAT = "${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}\n"


@pytest.fixture(scope="module")
def bookworm_result(debootstrap_bookworm: Path) -> ScanResult:
    return scan(f"dir:{debootstrap_bookworm}")


def _dpkg_query(root: Path) -> list[tuple[str, ...]]:
    if shutil.which("dpkg-query") is None:
        pytest.skip("dpkg-query is not installed")
    out = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", DPKG_FORMAT],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(tuple(line.split("\t")) for line in out.splitlines())


def test_bookworm_dpkg_catalogue_equals_dpkg_query(
    debootstrap_bookworm: Path, bookworm_result: ScanResult
) -> None:
    expected = _dpkg_query(debootstrap_bookworm)
    got = sorted(
        (p.name, p.version, p.source_name, p.source_version, p.arch)
        for p in bookworm_result.catalogue.packages
        if p.type is PackageType.DEB
    )
    assert len(expected) > 50  # a minbase system, not an empty database
    assert got == expected
    assert {p.type for p in bookworm_result.catalogue.packages} == {PackageType.DEB}


def test_bookworm_os_and_purls(debootstrap_bookworm: Path, bookworm_result: ScanResult) -> None:
    assert (debootstrap_bookworm / "etc" / "os-release").is_symlink()
    os_info = bookworm_result.catalogue.os
    assert os_info is not None
    assert (os_info.id, os_info.version_id, os_info.version_codename) == (
        "debian",
        "12",
        "bookworm",
    )
    for p in bookworm_result.catalogue.packages:
        expected = PackageURL(
            type="deb",
            namespace="debian",
            name=p.name,
            version=p.version,
            qualifiers={"arch": p.arch or "", "distro": "debian-12"},
        ).to_string()
        assert p.purl == expected
        parsed = PackageURL.from_string(p.purl)
        assert (parsed.name, parsed.version) == (p.name, p.version)
        assert p.locations
        assert p.locations[0].path == "/var/lib/dpkg/status"


def test_bookworm_users_and_executables(
    debootstrap_bookworm: Path, bookworm_result: ScanResult
) -> None:
    users = {u.name: u for u in bookworm_result.catalogue.users}
    assert users["root"].uid == 0
    assert users["nobody"].uid == 65534
    # No config: the image runs as whoever its runtime says, root by default.
    assert bookworm_result.facts.uid == 0
    assert bookworm_result.facts.runs_as_root is True
    executables = {e.path: e for e in bookworm_result.catalogue.executables}
    dpkg = debootstrap_bookworm / "usr" / "bin" / "dpkg"
    assert executables["/usr/bin/dpkg"].sha256 == hashlib.sha256(dpkg.read_bytes()).hexdigest()
    assert executables["/usr/bin/dpkg"].size == dpkg.stat().st_size
    assert "/usr/bin/bash" in executables
    assert not bookworm_result.catalogue.unknowns
