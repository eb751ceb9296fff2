"""From what the OCI hook hands over to a `ContainerRequest`: the container state (id, bundle,
annotations), the bundle's `config.json`, and the runtime's metadata (podman's image name).

`config.json` is the OCI runtime spec as the engine wrote it, so it is read as hostile input:
anything missing or of the wrong type is treated as the engine's default, never as permission,
except where the spec's own default is the safe one. The user is unresolved (None, which
`block_root` counts as root) when `process.user.uid` is not an integer.

`watched_from_oci` gives the runtime monitor what it watches in a started container: its root
(`root.path`, the overlay mount the engine made before the hook ran) and that mount's upper dir
(from /proc/self/mountinfo; `diff` next to `merged`, podman's layout, when not listed there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tidegate.core.runtime import ContainerRequest, Mount, normalize_capability
from tidegate.enforcer.errors import EnforcerError
from tidegate.enforcer.monitor import WatchedContainer
from tidegate.enforcer.podman import container_metadata

__all__ = [
    "DEFAULT_CAPABILITIES",
    "overlay_upper_dir",
    "read_container",
    "request_from_oci",
    "watched_from_oci",
]

MOUNTINFO = Path("/proc/self/mountinfo")

DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
"""The capabilities docker, podman and CRI-O give every container: only the others are 'added'."""

MAX_CONFIG = 16 * 1024 * 1024
_PRIVILEGED_ANNOTATION = "io.podman.annotations.privileged"
_K8S_NAMESPACE = "io.kubernetes.pod.namespace"
_K8S_NAMES = ("io.kubernetes.cri-o.ContainerName", "io.kubernetes.container.name")
_K8S_LABELS = "io.kubernetes.cri-o.Labels"


def read_container(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(config.json, runtime metadata) of the container in the OCI `state`; EnforcerError."""
    cid, bundle = state.get("id"), state.get("bundle")
    if not isinstance(cid, str) or not cid or not isinstance(bundle, str) or not bundle:
        raise EnforcerError("the OCI state has no container id or bundle")
    path = Path(bundle) / "config.json"
    try:
        with path.open("rb") as handle:
            config = json.loads(handle.read(MAX_CONFIG))
    except OSError as exc:
        raise EnforcerError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise EnforcerError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise EnforcerError(f"{path} is not a JSON object")
    annotations = _dict(state.get("annotations")) or _dict(config.get("annotations"))
    return config, container_metadata(cid, bundle, annotations)


def request_from_oci(
    state: dict[str, Any],
    config: dict[str, Any],
    metadata: dict[str, str],
    *,
    host: str,
    enforcer_group: str,
) -> ContainerRequest:
    """The decision request for one container start seen by an OCI hook."""
    annotations = {**_dict(config.get("annotations")), **_dict(state.get("annotations"))}
    process = _dict(config.get("process"))
    linux = _dict(config.get("linux"))
    caps = {
        normalize_capability(c)
        for c in _strings(_dict(process.get("capabilities")).get("bounding"))
    }
    namespaces = {str(n.get("type")) for n in _list(linux.get("namespaces")) if isinstance(n, dict)}
    user = _dict(process.get("user"))
    image_id = metadata.get("image-id")
    cid = str(state.get("id"))
    return ContainerRequest(
        container_id=cid,
        name=metadata.get("name") or _first(annotations, _K8S_NAMES) or cid[:12],
        image_ref=metadata.get("image-name") or (image_id or ""),
        image_id=_digest(image_id),
        host=host,
        enforcer_group=enforcer_group,
        namespace=annotations.get(_K8S_NAMESPACE)
        if isinstance(annotations.get(_K8S_NAMESPACE), str)
        else None,
        labels=_labels(annotations),
        mounts=tuple(_mount(m) for m in _list(config.get("mounts")) if isinstance(m, dict)),
        user_uid=user["uid"] if _is_int(user.get("uid")) else None,
        user_gid=user["gid"] if _is_int(user.get("gid")) else None,
        privileged=str(annotations.get(_PRIVILEGED_ANNOTATION, "")).upper() == "TRUE",
        added_capabilities=tuple(sorted(caps - DEFAULT_CAPABILITIES)),
        host_network="network" not in namespaces,
        host_pid="pid" not in namespaces,
        host_ipc="ipc" not in namespaces,
        no_new_privileges=process.get("noNewPrivileges") is True,
        seccomp_unconfined=not isinstance(linux.get("seccomp"), dict),
        args=tuple(_strings(process.get("args"))),
        env_names=tuple(e.split("=", 1)[0] for e in _strings(process.get("env"))),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in _list(value) if isinstance(v, str)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _first(values: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if isinstance(values.get(key), str) and values[key]:
            return str(values[key])
    return None


def _digest(image_id: str | None) -> str | None:
    if not image_id:
        return None
    return image_id if ":" in image_id else f"sha256:{image_id}"


def _mount(raw: dict[str, Any]) -> Mount:
    return Mount(
        source=str(raw.get("source") or ""),
        destination=str(raw.get("destination") or ""),
        type=str(raw.get("type") or "bind"),
        options=tuple(_strings(raw.get("options"))),
    )


def _labels(annotations: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    try:
        labels = json.loads(annotations.get(_K8S_LABELS) or "{}")
    except (TypeError, ValueError):
        return ()
    if not isinstance(labels, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040...)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def overlay_upper_dir(mount_point: str, mountinfo: str) -> str | None:
    """The upperdir of the overlay mounted at `mount_point`, from mountinfo text (the last mount
    there wins, as it hides the others); None when no overlay is mounted there."""
    found = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(" "), right.split(" ")
        if not sep or len(fields) < 5 or len(tail) < 3 or _unescape(fields[4]) != mount_point:
            continue
        found = None
        if tail[0] != "overlay":
            continue
        for option in tail[2].split(","):
            if option.startswith("upperdir="):
                found = _unescape(option.removeprefix("upperdir="))
    return found


def watched_from_oci(
    state: dict[str, Any],
    config: dict[str, Any],
    request: ContainerRequest,
    *,
    mountinfo: Path = MOUNTINFO,
) -> WatchedContainer:
    """What the monitor watches in the container the hook asked about; EnforcerError when its
    root is not an overlay mount with an upper dir (nothing to tell drift by)."""
    bundle = str(state.get("bundle") or "")
    root = _dict(config.get("root")).get("path")
    if not isinstance(root, str) or not root:
        raise EnforcerError(f"{bundle}/config.json: no root.path")
    merged = os.path.normpath(os.path.join(bundle, root))
    try:
        upper = overlay_upper_dir(merged, mountinfo.read_text(errors="replace"))
    except OSError as exc:
        raise EnforcerError(f"cannot read {mountinfo}: {exc.strerror or exc}") from exc
    if upper is None and os.path.basename(merged) == "merged":
        sibling = os.path.join(os.path.dirname(merged), "diff")
        upper = sibling if os.path.isdir(sibling) else None
    if upper is None:
        raise EnforcerError(f"container {request.container_id[:12]}: {merged} is not an overlay")
    pid = state.get("pid")
    return WatchedContainer(
        container_id=request.container_id,
        merged_dir=merged,
        upper_dir=upper,
        name=request.name,
        image_ref=request.image_ref,
        image_id=request.image_id,
        labels=request.labels,
        namespace=request.namespace,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
    )
