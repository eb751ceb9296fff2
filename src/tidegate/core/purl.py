"""Package URLs (purl) for catalogued packages, one rule per ecosystem.

The purl names a package the way other tools (vulnerability feeds, SBOM consumers, Syft, Trivy)
expect it, following the purl specification's type definitions:

- deb:    pkg:deb/<os id>/<name>@<version>?arch=<arch>&distro=<id>-<version_id>
          (the Debian epoch stays in the version, as Debian writes it: "1:4.13+dfsg1-1")
- apk:    pkg:apk/<os id, "alpine">/<name>@<version>?arch=<arch>&distro=<version_id>
- rpm:    pkg:rpm/<vendor>/<name>@<version-release>?arch=..&epoch=<epoch>&distro=<id>-<version_id>
          (the spec puts the rpm epoch in a qualifier, never in the version; epoch 0 is omitted
          because rpm treats it as no epoch)
- pypi:   name normalised per PEP 503 (lower case, runs of "-_." become "-")
- npm:    "@scope/name" -> namespace "@scope", name "name"
- maven:  "group:artifact" -> namespace group, name artifact
- golang: module path split at its last "/" into namespace and name; the Go standard library is
          "pkg:golang/stdlib@<version>" with the "go" prefix of the toolchain version dropped.
"""

from __future__ import annotations

import re
from typing import assert_never

from packageurl import PackageURL

from tidegate.core.models import OSInfo, Package, PackageType

_RPM_VENDORS: dict[str, str] = {
    "rhel": "redhat",
    "redhat": "redhat",
    "centos": "centos",
    "fedora": "fedora",
    "rocky": "rocky",
    "almalinux": "almalinux",
    "amzn": "amzn",
    "ol": "oracle",
    "sles": "suse",
    "sled": "suse",
    "sle-micro": "suse",
    "opensuse": "opensuse",
    "opensuse-leap": "opensuse",
    "opensuse-tumbleweed": "opensuse",
    "photon": "photon",
    "mariner": "mariner",
    "azurelinux": "azurelinux",
}
"""os-release ID -> the rpm vendor used as purl namespace (Trivy's and the spec's spelling)."""

_PEP503_SEPARATORS = re.compile(r"[-_.]+")


def package_purl(pkg: Package, os: OSInfo | None) -> str:
    """The purl of `pkg`; `os` is the image's distribution (None when unknown).

    A purl the analyzer already set is kept as it is.
    """
    if pkg.purl:
        return pkg.purl
    return _build(pkg, os).to_string()


def pep503_name(name: str) -> str:
    """PEP 503 normalised Python project name."""
    return _PEP503_SEPARATORS.sub("-", name).lower()


def _build(pkg: Package, os: OSInfo | None) -> PackageURL:
    match pkg.type:
        case PackageType.DEB:
            namespace = os.id if os and os.id else "debian"
            return _purl(pkg, namespace, pkg.name, pkg.version, _distro_qualifier(os))
        case PackageType.APK:
            namespace = os.id if os and os.id else "alpine"
            distro = {"distro": os.version_id} if os and os.version_id else {}
            return _purl(pkg, namespace, pkg.name, pkg.version, distro)
        case PackageType.RPM:
            return _rpm(pkg, os)
        case PackageType.PYPI:
            return _purl(pkg, None, pep503_name(pkg.name), pkg.version, {})
        case PackageType.NPM:
            scope, _, name = pkg.name.rpartition("/")
            return _purl(pkg, scope or None, name, pkg.version, {})
        case PackageType.MAVEN:
            group, _, artifact = pkg.name.rpartition(":")
            return _purl(pkg, group or None, artifact, pkg.version, {})
        case PackageType.GOLANG:
            return _golang(pkg)
        case _:
            assert_never(pkg.type)


def _purl(
    pkg: Package,
    namespace: str | None,
    name: str,
    version: str,
    extra: dict[str, str],
) -> PackageURL:
    qualifiers: dict[str, str] = {}
    if pkg.arch and pkg.type.is_os:
        qualifiers["arch"] = pkg.arch
    qualifiers.update(extra)
    return PackageURL(
        type=pkg.type.value,
        namespace=namespace,
        name=name,
        version=version or None,
        qualifiers=qualifiers or None,
    )


def _distro_qualifier(os: OSInfo | None) -> dict[str, str]:
    """ "<id>-<version_id>"; rolling releases (Debian sid, Arch) fall back to the codename."""
    if os is None or not os.id:
        return {}
    if os.version_id:
        return {"distro": f"{os.id}-{os.version_id}"}
    if os.version_codename:
        return {"distro": f"{os.id}-{os.version_codename}"}
    return {}


def _rpm(pkg: Package, os: OSInfo | None) -> PackageURL:
    epoch, sep, rest = pkg.version.partition(":")
    extra: dict[str, str] = {}
    version = pkg.version
    if sep and epoch.isdigit():
        version = rest
        if int(epoch) != 0:
            extra["epoch"] = str(int(epoch))
    extra.update(_distro_qualifier(os))
    return _purl(pkg, _rpm_vendor(os), pkg.name, version, extra)


def _rpm_vendor(os: OSInfo | None) -> str | None:
    if os is None or not os.id:
        return None
    for candidate in (os.id, *os.id_like):
        if candidate in _RPM_VENDORS:
            return _RPM_VENDORS[candidate]
    return os.id


def _golang(pkg: Package) -> PackageURL:
    if pkg.name == "stdlib":
        version = pkg.version.removeprefix("go")
        return _purl(pkg, None, "stdlib", version, {})
    namespace, _, name = pkg.name.rpartition("/")
    return _purl(pkg, namespace or None, name, pkg.version, {})
