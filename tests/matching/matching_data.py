"""Content of the real-data matching images: package databases with versions chosen from the
records in ../shared/vulndata, and the umoci build that turns them into OCI layouts.

Every image is busybox-static (/bin/busybox, /bin/sh) plus the files below in one layer. The
expected findings for these versions are worked out by hand in test_real_findings.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

from helpers.images import run

BUILD_VERSION = "v1"
"""Bump when the content below changes: the cached layouts are keyed by it."""
TAG = "1.0"

DEBIAN_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
ALPINE_OS_RELEASE = (
    'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\n'
    'PRETTY_NAME="Alpine Linux v3.18"\nHOME_URL="https://alpinelinux.org/"\n'
)

DPKG = (
    # (binary package, version, Source field or None when the source has the binary's name)
    ("tar", "1.34+dfsg-1.2", None),
    ("libcurl4", "7.88.1-10+deb12u3", "curl"),
    ("curl", "7.88.1-10+deb12u3", None),
    ("libssl3", "3.0.11-1~deb12u2", "openssl"),
    ("libc6", "2.36-9+deb12u3", "glibc"),
    ("libsystemd0", "252.19-1~deb12u1", "systemd"),
    ("libxml2", "2.9.14+dfsg-1.3~deb12u1", None),
    ("libexpat1", "2.5.0-1", "expat"),
    ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    ("libwebp7", "1.2.4-0.2+deb12u1", "libwebp"),
    ("libgnutls30", "3.7.9-2+deb12u2", "gnutls28"),
    ("dpkg", "1.21.22", None),
    ("bash", "5.2.15-2+b2", "bash (5.2.15-2)"),
    ("perl-base", "5.36.0-7+deb12u1", "perl"),
    ("libtinfo6", "6.4-4", "ncurses"),
    ("libkrb5-3", "1.20.1-2+deb12u1", "krb5"),
    ("apt", "2.6.1", None),
    ("libtasn1-6", "4.19.0-2", None),
)

APK = (
    # (package, version, origin)
    ("musl", "1.2.4-r2", "musl"),
    ("busybox", "1.36.1-r5", "busybox"),
    ("libcrypto3", "3.1.4-r2", "openssl"),
    ("libssl3", "3.1.4-r2", "openssl"),
    ("zlib", "1.2.13-r1", "zlib"),
    ("curl", "8.11.1-r0", "curl"),
    ("libcurl", "8.11.1-r0", "curl"),
)

PYTHON = (("requests", "2.30.0"), ("urllib3", "1.26.18"), ("jinja2", "3.1.4"))
NPM = (("lodash", "4.17.20"), ("minimist", "1.2.5"), ("express", "4.19.2"))
MAVEN = (("io.netty", "netty-codec-http", "4.1.50.Final"),)


def dpkg_status() -> str:
    stanzas = []
    for name, version, source in DPKG:
        lines = [
            f"Package: {name}",
            "Status: install ok installed",
            "Priority: optional",
            "Architecture: amd64",
        ]
        if source:
            lines.append(f"Source: {source}")
        lines += [f"Version: {version}", f"Description: {name} (tidegate test)"]
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def apk_installed() -> str:
    stanzas = []
    for name, version, origin in APK:
        stanzas.append(
            f"C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:{name}\nV:{version}\nA:x86_64\nS:1000\n"
            f"I:4096\nT:{name} (tidegate test)\nU:https://alpinelinux.org\nL:MIT\n"
            f"o:{origin}\nm:Tidegate <test@example.org>\nt:1690000000\n"
        )
    return "\n".join(stanzas) + "\n"


def _jar(group: str, artifact: str, version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr(
            f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"groupId={group}\nartifactId={artifact}\nversion={version}\n",
        )
    return buf.getvalue()


def _language_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, version in PYTHON:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        files[f"usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA"] = meta.encode()
    for name, version in NPM:
        doc = {"name": name, "version": version, "license": "MIT"}
        files[f"app/node_modules/{name}/package.json"] = json.dumps(doc).encode()
    for group, artifact, version in MAVEN:
        files[f"app/lib/{artifact}-{version}.jar"] = _jar(group, artifact, version)
    return files


def debian_files() -> dict[str, bytes]:
    files = {
        "etc/os-release": DEBIAN_OS_RELEASE.encode(),
        "var/lib/dpkg/status": dpkg_status().encode(),
    }
    files.update(_language_files())
    return files


def alpine_files() -> dict[str, bytes]:
    return {
        "etc/os-release": ALPINE_OS_RELEASE.encode(),
        "lib/apk/db/installed": apk_installed().encode(),
    }


def build_layout(layout: Path, files: dict[str, bytes]) -> None:
    """An OCI layout at `layout`, tag TAG: busybox-static plus `files`, one layer."""
    image = f"{layout}:{TAG}"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    bundle = layout.parent / "bundle"
    run("umoci", "unpack", "--image", image, bundle)
    rootfs = bundle / "rootfs"
    busybox = shutil.which("busybox")
    assert busybox is not None
    (rootfs / "bin").mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath(busybox), rootfs / "bin" / "busybox")
    os.symlink("busybox", rootfs / "bin" / "sh")
    for rel, data in files.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    run("umoci", "repack", "--image", image, bundle)
    shutil.rmtree(bundle)
    run("umoci", "config", "--image", image, "--architecture", "amd64", "--os", "linux")
