"""Package URLs per ecosystem, against the purl specification's examples and Syft/Trivy forms."""

from __future__ import annotations

import pytest
from packageurl import PackageURL

from tidegate.core.models import OSInfo, Package, PackageType
from tidegate.core.purl import package_purl, pep503_name

DEBIAN = OSInfo(id="debian", version_id="12", version_codename="bookworm")
UBUNTU = OSInfo(id="ubuntu", version_id="22.04")
SID = OSInfo(id="debian", version_codename="trixie")
ALPINE = OSInfo(id="alpine", version_id="3.19.1")
RHEL = OSInfo(id="rhel", version_id="9.3", id_like=("fedora",))
FEDORA = OSInfo(id="fedora", version_id="25")
ROCKY = OSInfo(id="rocky", version_id="9.3", id_like=("rhel", "centos", "fedora"))
AMZN = OSInfo(id="amzn", version_id="2023", id_like=("fedora",))
LEAP = OSInfo(id="opensuse-leap", version_id="15.5", id_like=("suse", "opensuse"))
DERIVED = OSInfo(id="eurolinux", version_id="9", id_like=("rhel", "fedora", "centos"))


def pkg(type_: PackageType, name: str, version: str, arch: str | None = None) -> Package:
    return Package(name=name, version=version, type=type_, found_by="test", arch=arch)


CASES = [
    # OS packages: the spec's examples with Tidegate's distro qualifier.
    (
        pkg(PackageType.DEB, "curl", "7.50.3-1", "i386"),
        None,
        "pkg:deb/debian/curl@7.50.3-1?arch=i386",
    ),
    (
        pkg(PackageType.DEB, "libc6", "2.36-9+deb12u4", "amd64"),
        DEBIAN,
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
    ),
    (
        pkg(PackageType.DEB, "login", "1:4.13+dfsg1-1", "amd64"),
        DEBIAN,
        "pkg:deb/debian/login@1:4.13%2Bdfsg1-1?arch=amd64&distro=debian-12",
    ),
    (
        pkg(PackageType.DEB, "bash", "5.1-6ubuntu1", "amd64"),
        UBUNTU,
        "pkg:deb/ubuntu/bash@5.1-6ubuntu1?arch=amd64&distro=ubuntu-22.04",
    ),
    (pkg(PackageType.DEB, "bash", "5.2-1"), SID, "pkg:deb/debian/bash@5.2-1?distro=debian-trixie"),
    (
        pkg(PackageType.APK, "curl", "7.83.0-r0", "x86"),
        None,
        "pkg:apk/alpine/curl@7.83.0-r0?arch=x86",
    ),
    (
        pkg(PackageType.APK, "musl", "1.2.4_git20230717-r4", "x86_64"),
        ALPINE,
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=3.19.1",
    ),
    (
        pkg(PackageType.RPM, "curl", "7.50.3-1.fc25", "i386"),
        FEDORA,
        "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25",
    ),
    (
        pkg(PackageType.RPM, "centerim", "1:4.22.10-1.el6", "i686"),
        FEDORA,
        "pkg:rpm/fedora/centerim@4.22.10-1.el6?arch=i686&distro=fedora-25&epoch=1",
    ),
    (
        pkg(PackageType.RPM, "openssl-libs", "1:3.0.7-25.el9_3", "x86_64"),
        RHEL,
        "pkg:rpm/redhat/openssl-libs@3.0.7-25.el9_3?arch=x86_64&distro=rhel-9.3&epoch=1",
    ),
    (
        pkg(PackageType.RPM, "bash", "0:5.1.8-6.el9", "x86_64"),
        ROCKY,
        "pkg:rpm/rocky/bash@5.1.8-6.el9?arch=x86_64&distro=rocky-9.3",
    ),
    (
        pkg(PackageType.RPM, "glibc", "2.34-52.amzn2023.0.3", "aarch64"),
        AMZN,
        "pkg:rpm/amzn/glibc@2.34-52.amzn2023.0.3?arch=aarch64&distro=amzn-2023",
    ),
    (
        pkg(PackageType.RPM, "zypper", "1.14.64-150500.1.1", "x86_64"),
        LEAP,
        "pkg:rpm/opensuse/zypper@1.14.64-150500.1.1?arch=x86_64&distro=opensuse-leap-15.5",
    ),
    (
        pkg(PackageType.RPM, "bash", "5.1-1"),
        DERIVED,
        "pkg:rpm/redhat/bash@5.1-1?distro=eurolinux-9",
    ),
    (pkg(PackageType.RPM, "bash", "5.1-1"), None, "pkg:rpm/bash@5.1-1"),
    # Language packages: the spec's examples.
    (pkg(PackageType.PYPI, "django-allauth", "12.23"), None, "pkg:pypi/django-allauth@12.23"),
    (
        pkg(PackageType.PYPI, "Django_package", "1.11.1.dev1"),
        DEBIAN,
        "pkg:pypi/django-package@1.11.1.dev1",
    ),
    (pkg(PackageType.PYPI, "zope.interface", "6.1"), None, "pkg:pypi/zope-interface@6.1"),
    (
        pkg(PackageType.NPM, "@angular/animation", "12.3.1"),
        None,
        "pkg:npm/%40angular/animation@12.3.1",
    ),
    (pkg(PackageType.NPM, "foobar", "12.3.1"), None, "pkg:npm/foobar@12.3.1"),
    (
        pkg(PackageType.MAVEN, "org.apache.xmlgraphics:batik-anim", "1.9.1"),
        None,
        "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1",
    ),
    (
        pkg(PackageType.GOLANG, "github.com/gorilla/context", "v1.1.1"),
        None,
        "pkg:golang/github.com/gorilla/context@v1.1.1",
    ),
    (
        pkg(PackageType.GOLANG, "github.com/go-chi/chi/v5", "v5.0.10"),
        None,
        "pkg:golang/github.com/go-chi/chi/v5@v5.0.10",
    ),
    (pkg(PackageType.GOLANG, "stdlib", "go1.21.5"), DEBIAN, "pkg:golang/stdlib@1.21.5"),
    (pkg(PackageType.GOLANG, "stdlib", "1.22.0"), None, "pkg:golang/stdlib@1.22.0"),
]


@pytest.mark.parametrize(("package", "os", "expected"), CASES, ids=[c[2] for c in CASES])
def test_package_purl(package: Package, os: OSInfo | None, expected: str) -> None:
    purl = package_purl(package, os)
    assert purl == expected
    # Every purl Tidegate writes parses back to the same components.
    parsed = PackageURL.from_string(purl)
    assert parsed.type == package.type.value
    assert parsed.to_string() == purl


def test_rpm_epoch_is_a_qualifier_not_part_of_the_version() -> None:
    parsed = PackageURL.from_string(
        package_purl(pkg(PackageType.RPM, "vim-minimal", "2:8.2.2637-20.el9_1", "x86_64"), RHEL)
    )
    assert parsed.version == "8.2.2637-20.el9_1"
    assert parsed.qualifiers["epoch"] == "2"


def test_existing_purl_is_kept() -> None:
    given = "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&upstream=openssl"
    package = Package(
        name="openssl", version="3.0.11-1~deb12u2", type=PackageType.DEB, found_by="x", purl=given
    )
    assert package_purl(package, DEBIAN) == given


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Django", "django"),
        ("zope.interface", "zope-interface"),
        ("a__b--c..d", "a-b-c-d"),
        ("A-_.B", "a-b"),
    ],
)
def test_pep503_name(raw: str, normalised: str) -> None:
    assert pep503_name(raw) == normalised
