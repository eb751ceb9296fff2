"""Podman's container metadata: the image name and image ID a container was started with.

The OCI state a hook receives has only the container id and its bundle. Podman keeps, per
storage root, `overlay-containers/containers.json`: one record per container whose `metadata`
field is itself a JSON string with `image-name` and `image-id`; a container's bundle is
`ROOT/overlay-containers/ID/userdata`. CRI-O says the same in annotations instead.

Kept to the standard library's json: the hook imports this on every container start.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["ANNOTATION_IMAGE_NAMES", "container_metadata"]

ANNOTATION_IMAGE_NAMES = (
    "io.kubernetes.cri-o.ImageName",
    "io.kubernetes.cri-o.Image",
    "org.opencontainers.image.ref.name",
)
"""Annotations that name the image, for runtimes other than podman (CRI-O)."""

_MAX_CONTAINERS_JSON = 64 * 1024 * 1024


def container_metadata(
    container_id: str, bundle: str, annotations: dict[str, Any] | None = None
) -> dict[str, str]:
    """`{"image-name", "image-id", "name"}` as far as podman or the annotations know them."""
    found = _podman_record(container_id, bundle)
    for key in ANNOTATION_IMAGE_NAMES:
        value = (annotations or {}).get(key)
        if isinstance(value, str) and value and "image-name" not in found:
            found["image-name"] = value
    return found


def _podman_record(container_id: str, bundle: str) -> dict[str, str]:
    # bundle = ROOT/overlay-containers/ID/userdata -> ROOT/overlay-containers/containers.json
    index = os.path.join(os.path.dirname(os.path.dirname(bundle)), "containers.json")
    try:
        with open(index, "rb") as handle:
            records = json.loads(handle.read(_MAX_CONTAINERS_JSON))
    except (OSError, ValueError):
        return {}
    if not isinstance(records, list):
        return {}
    for record in records:
        if isinstance(record, dict) and record.get("id") == container_id:
            return _from_record(record)
    return {}


def _from_record(record: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(record.get("image"), str):
        out["image-id"] = record["image"]
    names = record.get("names")
    if isinstance(names, list) and names and isinstance(names[0], str):
        out["name"] = names[0]
    try:
        meta = json.loads(record.get("metadata") or "{}")
    except (TypeError, ValueError):
        meta = {}
    if isinstance(meta, dict):
        for key in ("image-name", "image-id", "name"):
            if isinstance(meta.get(key), str) and meta[key]:
                out[key] = meta[key]
    return out
