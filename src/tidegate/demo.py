"""Build the demo image that `make run` scans: a small real OCI image, made with umoci.

`python -m tidegate.demo DIR` writes an OCI layout at DIR/layout with the tag `demo`: busybox
(static) as the payload, an Alpine-style package database, a Python and an npm package, a user,
labels, and a planted (throw-away) private key so that the secret scanner has something to show.
Two layers, the second deleting a file of the first, so the squash is visible too.

It also writes DIR/advisories/: a few OSV records about the demo's packages (real vulnerabilities,
written here from their public advisories, trimmed to what matching needs), so that `make run`
shows findings without network access. Real use imports osv.dev data (`tidegate db update`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
TAG = "demo"

_APK_DB = """\
C:Q1demoabc=
P:musl
V:1.2.4-r1
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
L:MIT
o:musl

C:Q1demodef=
P:libcrypto3
V:3.1.0-r4
A:x86_64
T:Crypto library from openssl
L:Apache-2.0
o:openssl

C:Q1demoghi=
P:libssl3
V:3.1.0-r4
A:x86_64
T:SSL shared libraries
L:Apache-2.0
o:openssl

C:Q1demojkl=
P:busybox
V:1.36.1-r0
A:x86_64
T:Size optimized toolbox of many common UNIX utilities
L:GPL-2.0-only
o:busybox

"""

_OS_RELEASE = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.18.0
PRETTY_NAME="Alpine Linux v3.18 (Tidegate demo)"
"""

_PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def _fake_key() -> str:
    body = base64.b64encode(os.urandom(600)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    kind = "OPENSSH " + "PRIVATE KEY"
    return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----", ""])


def _first_layer(rootfs: Path) -> None:
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for tool in ("sh", "ls", "cat", "wget"):
        (rootfs / "bin" / tool).symlink_to("busybox")
    _write(rootfs, "/etc/os-release", _OS_RELEASE)
    _write(rootfs, "/etc/passwd", _PASSWD)
    _write(rootfs, "/etc/group", "root:x:0:\napp:x:1000:\n")
    _write(rootfs, "/lib/apk/db/installed", _APK_DB)
    _write(rootfs, "/tmp/build-notes.txt", "removed in the next layer\n")


def _second_layer(rootfs: Path) -> None:
    (rootfs / "tmp" / "build-notes.txt").unlink()
    site = "/usr/lib/python3.11/site-packages"
    _write(
        rootfs,
        f"{site}/requests-2.25.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\nLicense: Apache 2.0\n",
    )
    _write(
        rootfs,
        "/app/node_modules/lodash/package.json",
        '{"name": "lodash", "version": "4.17.15", "license": "MIT"}\n',
    )
    _write(rootfs, "/app/start.sh", "#!/bin/sh\nexec /bin/busybox httpd -f -p 8080\n", 0o755)
    _write(rootfs, "/home/app/.ssh/id_ed25519", _fake_key(), 0o600)


def _osv(
    vid: str, aliases: list[str], eco: str, name: str, fixed: str, vector: str, summary: str
) -> dict[str, object]:
    record: dict[str, object] = {
        "schema_version": "1.6.0",
        "id": vid,
        "aliases": aliases,
        "modified": "2024-01-01T00:00:00Z",
        "published": "2023-06-01T00:00:00Z",
        "summary": summary,
        "affected": [
            {
                "package": {"ecosystem": eco, "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }
    if vector:
        record["severity"] = [{"type": "CVSS_V3", "score": vector}]
    return record


DEMO_ADVISORIES = (
    _osv(
        "ALPINE-CVE-2023-5678", ["CVE-2023-5678"], "Alpine:v3.18", "openssl", "3.1.4-r1",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L",
        "openssl: excessive time spent in DH check / generation with large Q parameter value",
    ),
    _osv(
        "GHSA-35jh-r3h4-6jhm", ["CVE-2021-23337"], "npm", "lodash", "4.17.21",
        "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
        "Command Injection in lodash",
    ),
    _osv(
        "GHSA-j8r2-6x86-q33q", ["CVE-2023-32681", "PYSEC-2023-74"], "PyPI", "requests", "2.31.0",
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N",
        "Unintended leak of Proxy-Authorization header in requests",
    ),
)  # fmt: skip


def write_advisories(out_dir: Path) -> Path:
    """The demo's OSV records, one JSON file each, for `tidegate db import`."""
    target = out_dir / "advisories"
    target.mkdir(parents=True, exist_ok=True)
    for record in DEMO_ADVISORIES:
        (target / f"{record['id']}.json").write_text(json.dumps(record, indent=2) + "\n")
    return target


DEMO_POLICY = """\
# A team policy in audit mode: it reports, it blocks nothing. Switch `mode` to enforce (or set
# `enforce_after`) once the readiness numbers say so.
- kind: Policy
  name: demo-hardening
  description: No high or critical vulnerability with a fix, no secrets, not root.
  mode: audit
  scope:
    repositories: []
  controls:
    severity:
      max_severity: medium
      only_fixable: true
    block_secrets: true
    block_root: true
"""


def write_policy(out_dir: Path) -> Path:
    """The demo's policy as code, for `tidegate apply -f`."""
    path = out_dir / "policy.yaml"
    path.write_text(DEMO_POLICY)
    return path


def build(out_dir: Path) -> Path:
    """Build (or rebuild) the demo layout; returns its path."""
    for tool in ("umoci",):
        if shutil.which(tool) is None:
            raise SystemExit(f"tidegate demo: `{tool}` is not installed (apt-get install {tool})")
    if not BUSYBOX.exists():
        raise SystemExit("tidegate demo: /bin/busybox is missing (apt-get install busybox-static)")
    out_dir.mkdir(parents=True, exist_ok=True)
    layout = out_dir / "layout"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        work = Path(tmp)
        new_layout = work / "layout"
        image = f"{new_layout}:{TAG}"
        _run("umoci", "init", "--layout", str(new_layout))
        _run("umoci", "new", "--image", image)
        for step in (_first_layer, _second_layer):
            bundle = work / f"bundle-{step.__name__}"
            _run("umoci", "unpack", "--image", image, str(bundle))
            step(bundle / "rootfs")
            _run("umoci", "repack", "--image", image, str(bundle))
        _run(
            "umoci", "config", "--image", image,
            "--config.user=app", "--config.workingdir=/app",
            "--config.entrypoint=/app/start.sh", "--config.exposedports=8080/tcp",
            "--config.env=APP_ENV=demo",
            "--config.label=org.opencontainers.image.title=tidegate-demo",
            "--config.label=maintainer=security@example.com",
        )  # fmt: skip
        if layout.exists():
            shutil.rmtree(layout)
        new_layout.rename(layout)
    return layout


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path.home() / ".cache" / "tidegate" / "demo"
    layout = build(out)
    advisories = write_advisories(out)
    policy = write_policy(out)
    print(f"demo image: oci:{layout}:{TAG}")
    print(f"demo advisories: {advisories}")
    print(f"demo policy: {policy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
