"""Real test images, built with umoci + busybox-static and converted with skopeo, and a real
`docker-registry` to push them to. Used by the session fixtures in tests/conftest.py.

Built images are cached under `$TIDEGATE_TEST_CACHE` (default `~/.cache/tidegate-tests`) in a
directory named after `BUILD_VERSION`: bump it whenever `build_busybox_layout` changes. Builds
go to a temporary directory renamed into place, so a half-built cache is never used.

The busybox image (`oci:LAYOUT:1.0`, linux/amd64) has three layers:

1. the base (umoci repack): /bin/busybox, symlinks /bin/sh and /bin/ls, a hard link
   /bin/busybox-hl, /etc/passwd /etc/group /etc/os-release, /etc/remove-me, /etc/escape (symlink
   pointing out of the root), /usr/bin/suid-tool (mode 4755), /var/cache/opaque/{a,b},
   /opt/app/{app.py,data/config.json}
2. umoci repack after deleting /etc/remove-me and /opt/app/data (whiteouts) and adding
   /opt/app/new.txt
3. a hand-made layer (umoci raw add-layer) making /var/cache/opaque opaque and adding
   /var/cache/opaque/c

and config user 1000:1000, env, labels, exposed port 8080/tcp, entrypoint /bin/sh.
`oci:LAYOUT:multi` is an index of that image (linux/amd64) and an arm64 variant of its config.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tidegate.core.files import Entry, EntryKind

__all__ = ["Entry", "ResolvedImage"]  # re-exported for the tests' annotations
from tidegate.core.models import Unknown
from tidegate.image import ImageSource, LayerPaths, ResolvedImage, squash
from tidegate.image.interface import EntryStream

BUILD_VERSION = "busybox-v1"
TAG = "1.0"
MULTI_TAG = "multi"
DOCKER_ARCHIVE_NAME = "tidegate-test/busybox:1.0"
TOOLS = ("umoci", "skopeo", "busybox")

EXPECTED_FILES = frozenset(
    {
        "/bin/busybox",
        "/bin/busybox-hl",
        "/etc/passwd",
        "/etc/group",
        "/etc/os-release",
        "/usr/bin/suid-tool",
        "/opt/app/app.py",
        "/opt/app/new.txt",
        "/var/cache/opaque/c",
    }
)
"""Regular files (and the hard link) visible in the squashed busybox image."""
EXPECTED_SYMLINKS = {
    "/bin/sh": "busybox",
    "/bin/ls": "/bin/busybox",
    "/etc/escape": "../../../../etc/shadow",
}
GONE = frozenset(
    {
        "/etc/remove-me",
        "/opt/app/data",
        "/opt/app/data/config.json",
        "/var/cache/opaque/a",
        "/var/cache/opaque/b",
    }
)
"""Paths of lower layers that the squash must hide."""


def missing_tools(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


def cache_root() -> Path:
    root = os.environ.get("TIDEGATE_TEST_CACHE") or str(Path.home() / ".cache" / "tidegate-tests")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached(name: str, build: Callable[[Path], None]) -> Path:
    """`cache_root()/name`, built by `build(tmpdir)` once and moved into place."""
    final = cache_root() / name
    if final.exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_root()))
    try:
        build(tmp)
        try:
            tmp.rename(final)
        except OSError:  # another worker finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def run(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return proc.stdout


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _populate_base(rootfs: Path) -> None:
    busybox = shutil.which("busybox")
    assert busybox is not None
    (rootfs / "bin").mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath(busybox), rootfs / "bin" / "busybox")
    os.link(rootfs / "bin" / "busybox", rootfs / "bin" / "busybox-hl")
    os.symlink("busybox", rootfs / "bin" / "sh")
    os.symlink("/bin/busybox", rootfs / "bin" / "ls")
    _write(
        rootfs / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    _write(rootfs / "etc/group", "root:x:0:\napp:x:1000:\n")
    _write(rootfs / "etc/os-release", 'ID=busybox\nNAME="BusyBox"\nVERSION_ID=1.35\n')
    _write(rootfs / "etc/remove-me", "deleted in layer 2\n")
    os.symlink("../../../../etc/shadow", rootfs / "etc" / "escape")
    _write(rootfs / "usr/bin/suid-tool", "#!/bin/sh\necho hi\n", 0o4755)
    _write(rootfs / "var/cache/opaque/a", "a\n")
    _write(rootfs / "var/cache/opaque/b", "b\n")
    _write(rootfs / "opt/app/app.py", "print('hello')\n", 0o755)
    _write(rootfs / "opt/app/data/config.json", '{"k": 1}\n')


def _opaque_layer(path: Path) -> None:
    """A layer umoci cannot produce from a diff: an opaque marker plus one new file."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in ((".wh..wh..opq", b""), ("c", b"c\n")):
            info = tarfile.TarInfo(f"var/cache/opaque/{name}")
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))


def build_busybox_layout(out: Path) -> None:
    """Build the OCI layout described in the module docstring into `out/layout`."""
    layout = out / "layout"
    image = f"{layout}:{TAG}"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    bundle = out / "bundle"
    run("umoci", "unpack", "--image", image, bundle)
    _populate_base(bundle / "rootfs")
    run("umoci", "repack", "--image", image, bundle)
    shutil.rmtree(bundle)
    run("umoci", "unpack", "--image", image, bundle)
    (bundle / "rootfs/etc/remove-me").unlink()
    shutil.rmtree(bundle / "rootfs/opt/app/data")
    _write(bundle / "rootfs/opt/app/new.txt", "added in layer 2\n")
    run("umoci", "repack", "--image", image, bundle)
    shutil.rmtree(bundle)
    _opaque_layer(out / "opaque.tar")
    run("umoci", "raw", "add-layer", "--image", image, out / "opaque.tar")
    (out / "opaque.tar").unlink()
    run(
        "umoci", "config", "--image", image,
        "--config.user", "1000:1000", "--config.env", "APP_MODE=test",
        "--config.label", "org.opencontainers.image.title=tidegate-busybox",
        "--config.exposedports", "8080/tcp", "--config.entrypoint", "/bin/sh",
        "--architecture", "amd64", "--os", "linux",
    )  # fmt: skip
    run("umoci", "config", "--image", image, "--architecture", "arm64", "--tag", "arm64")
    _write_multi_index(layout)
    run("umoci", "gc", "--layout", layout)


def _write_multi_index(layout: Path) -> None:
    """Tag MULTI_TAG: an OCI index of the amd64 (TAG) and arm64 images."""
    index = json.loads((layout / "index.json").read_text())
    by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    entries = []
    for tag, arch in ((TAG, "amd64"), ("arm64", "arm64")):
        entry = {k: v for k, v in by_tag[tag].items() if k != "annotations"}
        entry["platform"] = {"os": "linux", "architecture": arch}
        entries.append(entry)
    blob = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
    ).encode()
    digest = hashlib.sha256(blob).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(blob)
    index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": f"sha256:{digest}",
            "size": len(blob),
            "annotations": {"org.opencontainers.image.ref.name": MULTI_TAG},
        }
    )
    (layout / "index.json").write_text(json.dumps(index))


def busybox_layout() -> Path:
    """The cached OCI layout directory (tags TAG, "arm64", MULTI_TAG)."""
    return cached(BUILD_VERSION, build_busybox_layout) / "layout"


def build_archives(layout: Path) -> dict[str, Path]:
    """oci-archive and docker-archive copies of `oci:layout:TAG`, cached next to the layout."""
    out = layout.parent

    def make(kind: str) -> Path:
        path = out / f"busybox.{kind}.tar"
        if not path.exists():
            tmp = out / f".{kind}.{os.getpid()}.tar"
            dest = f"{kind}:{tmp}:{TAG if kind == 'oci-archive' else DOCKER_ARCHIVE_NAME}"
            run("skopeo", "copy", "--quiet", f"oci:{layout}:{TAG}", dest)
            tmp.rename(path)
        return path

    return {"oci-archive": make("oci-archive"), "docker-archive": make("docker-archive")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Registry:
    """A running docker-registry on 127.0.0.1 (plain http)."""

    host: str
    """"127.0.0.1:PORT"."""
    username: str | None = None
    password: str | None = None

    def push(self, source: str, repo_tag: str, *, all_platforms: bool = False) -> str:
        """skopeo copy `source` (e.g. "oci:DIR:TAG") to this registry; returns the dest ref."""
        return push(source, f"{self.host}/{repo_tag}", self, all_platforms=all_platforms)


def push(source: str, dest: str, registry: Registry, *, all_platforms: bool = False) -> str:
    args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if registry.username:
        args += ["--dest-creds", f"{registry.username}:{registry.password}"]
    if all_platforms:
        args.append("--all")
    run(*args, source, f"docker://{dest}")
    return dest


def make_tls_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): (cert.pem, key.pem)."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", key, "-out", cert,
    )  # fmt: skip
    return cert, key


def start_registry(
    workdir: Path,
    *,
    htpasswd: tuple[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
    notify: tuple[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Registry]:
    """Start `docker-registry serve` on 127.0.0.1 (only) on a free port; the caller kills it.

    `notify=(url, authorization)`: push/pull notifications go to `url` with that Authorization
    header value (e.g. the console's webhook and "Bearer <secret>"), retried every 200 ms.
    """
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    auth = ""
    if htpasswd is not None:
        user, password = htpasswd
        line = run("htpasswd", "-Bbn", user, password).strip()
        (workdir / "htpasswd").write_text(line + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: tidegate-test\n    path: {workdir / 'htpasswd'}\n"
    config = (
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: tidegate-test-secret\n"
    )
    if tls is not None:
        config += f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n"
    config += auth
    if notify is not None:
        config += notifications_config(*notify)
    (workdir / "config.yml").write_text(config)
    with open(workdir / "registry.log", "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(workdir / "config.yml")], stdout=log, stderr=log
        )
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(workdir / 'registry.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if tls is not None:
                break
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=1):
                break
        except urllib.error.HTTPError as exc:  # 401 from the htpasswd one: it is up
            exc.close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("docker-registry did not start within 20 s")
    user_pass = htpasswd or (None, None)
    return proc, Registry(host, user_pass[0], user_pass[1])


def notifications_config(url: str, authorization: str) -> str:
    """The `notifications:` section of a docker-registry config: one endpoint, one header."""
    return (
        "notifications:\n  endpoints:\n    - name: tidegate\n"
        f"      url: {url}\n"
        f"      headers:\n        Authorization: [{json.dumps(authorization)}]\n"
        "      timeout: 5s\n      threshold: 3\n      backoff: 200ms\n"
    )


def manifest_digest(registry: Registry, repo_tag: str) -> str:
    """The digest `host/repo:tag` points at, as skopeo reports it."""
    args = ["skopeo", "inspect", "--tls-verify=false", "--raw"]
    if registry.username:
        args += ["--creds", f"{registry.username}:{registry.password}"]
    raw = subprocess.run(
        [*args, f"docker://{registry.host}/{repo_tag}"], capture_output=True, check=True
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def read_image(
    source: ImageSource,
) -> tuple[ResolvedImage, dict[str, tuple[Entry, bytes | None]], list[Unknown]]:
    """Resolve `source` and squash it: path -> (entry, content of FILE entries), and unknowns."""
    image = source.resolve()
    per_layer: list[LayerPaths[tuple[Entry, bytes | None]]] = []
    unknowns: list[Unknown] = []
    for layer in image.layers:
        entries: list[Entry] = []
        payloads: dict[str, tuple[Entry, bytes | None]] = {}
        with source.open_layer(layer) as items:
            for item in items:
                if isinstance(item, Unknown):
                    unknowns.append(item)
                    continue
                entry, stream = item
                entries.append(entry)
                if entry.kind not in (EntryKind.WHITEOUT, EntryKind.OPAQUE):
                    payloads[entry.path] = (entry, _read_all(stream) if stream else None)
        per_layer.append(LayerPaths.from_entries(entries, payloads))
    visible = {path: payload for path, (_, payload) in squash(per_layer).items()}
    return image, visible, unknowns


def _read_all(stream: EntryStream) -> bytes:
    chunks = []
    while chunk := stream.read(1024 * 1024):
        chunks.append(chunk)
    return b"".join(chunks)
