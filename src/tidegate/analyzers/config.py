"""Image facts from the OCI/Docker image config, resolved against the image's own user database.

The config is hostile input: every field may be missing, of the wrong type or garbage. A field
that cannot be read becomes an `Unknown` (where "config", and why) and the other facts are still
returned; nothing here raises on bad input.

User resolution follows what container runtimes (runc, crun) do with the config's `User`:
- "" -> root (uid 0, gid 0);
- "name" or "uid", optionally ":group" or ":gid";
- a name is looked up in the image's /etc/passwd, a group name in /etc/group; a numeric uid
  that /etc/passwd does not list still runs (as that uid, with gid 0 unless a gid is given);
- a name that is not in /etc/passwd would make the runtime refuse to start the container: the
  uid is then unknown (`runs_as_root` None) and an Unknown says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tidegate.core.models import (
    EnvVar,
    GroupEntry,
    HistoryEntry,
    ImageFacts,
    Unknown,
    UserEntry,
)
from tidegate.core.secrets_rules import env_value_looks_secret

config_analyzer_version: int = 1
"""Goes into the cache key of config facts: bump it when the facts for the same config change."""

ANALYZER = "config"
WHERE = "config"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
REDACTED = "<redacted>"
_MAX_ID = 2**32 - 1

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))$"
)


class _Reader:
    """Typed access to a hostile JSON object; a wrong type is noted, never raised."""

    def __init__(self) -> None:
        self.unknowns: list[Unknown] = []

    def note(self, reason: str) -> None:
        self.unknowns.append(Unknown(WHERE, reason, ANALYZER))

    def obj(self, parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        self.note(f"{where}{key} is {_kind(value)}, expected an object")
        return {}

    def text(self, parent: Mapping[str, Any], key: str, where: str) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        self.note(f"{where}{key} is {_kind(value)}, expected a string")
        return ""

    def strings(self, parent: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = parent.get(key)
        if value is None:
            return ()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.note(f"{where}{key} is {_kind(value)}, expected a list of strings")
        return ()

    def keys(self, parent: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        """The keys of a set-like object ({"80/tcp": {}}), sorted."""
        return tuple(sorted(k for k in self.obj(parent, key, where) if isinstance(k, str)))


def facts_from_config(
    config: dict[str, Any],
    users: Sequence[UserEntry],
    groups: Sequence[GroupEntry],
    annotations: Mapping[str, str] | None = None,
) -> tuple[ImageFacts, list[Unknown]]:
    """The image facts of an image config document, and what could not be read in it.

    `users`/`groups` are the image's /etc/passwd and /etc/group entries; `annotations` are the
    manifest's annotations (they name the base image more reliably than labels do).
    """
    reader = _Reader()
    if not isinstance(config, Mapping):
        reader.note(f"the image config is {_kind(config)}, expected an object")
        return ImageFacts(), reader.unknowns
    inner = reader.obj(config, "config", "")
    user = reader.text(inner, "User", "config.")
    uid, gid, why = resolve_user(user, users, groups)
    if why:
        reader.note(why)
    labels = _labels(reader, inner)
    env, secret_values = _env(reader, inner)
    facts = ImageFacts(
        user=user,
        uid=uid,
        gid=gid,
        runs_as_root=None if uid is None else uid == 0,
        labels=labels,
        env=env,
        exposed_ports=reader.keys(inner, "ExposedPorts", "config."),
        entrypoint=reader.strings(inner, "Entrypoint", "config."),
        cmd=reader.strings(inner, "Cmd", "config."),
        working_dir=reader.text(inner, "WorkingDir", "config."),
        created=_created(reader, config.get("created"), "created"),
        architecture=reader.text(config, "architecture", ""),
        os=reader.text(config, "os", ""),
        variant=reader.text(config, "variant", ""),
        stop_signal=reader.text(inner, "StopSignal", "config."),
        volumes=reader.keys(inner, "Volumes", "config."),
        history=_history(reader, config.get("history"), secret_values),
        base_image=base_image(dict(labels), annotations or {}),
    )
    return facts, reader.unknowns


def resolve_user(
    user: str, users: Sequence[UserEntry], groups: Sequence[GroupEntry]
) -> tuple[int | None, int | None, str | None]:
    """(uid, gid, why-unresolved) for a config `User` value, the way the runtime resolves it."""
    if user == "":
        return 0, 0, None
    name, _, group = user.partition(":")
    if not name:
        return None, _group_id(group, groups, None)[0], f"config.User {user!r} names no user"
    entry: UserEntry | None
    uid = _numeric_id(name)
    if uid is not None:
        entry = next((u for u in users if u.uid == uid), None)
    else:
        entry = next((u for u in users if u.name == name), None)
        if entry is None:
            missing = f"user {name!r} of config.User is not in the image's /etc/passwd"
            return None, _group_id(group, groups, None)[0], missing
        uid = entry.uid
    default_gid = entry.gid if entry is not None else 0
    gid, why = _group_id(group, groups, default_gid)
    return uid, gid, why


def base_image(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str | None:
    """The base image named by OCI annotations (preferred) or labels, "name@digest" when both."""
    for source in (annotations, labels):
        name = source.get(BASE_NAME, "")
        digest = source.get(BASE_DIGEST, "")
        if not isinstance(name, str) or not isinstance(digest, str):
            continue
        if name and digest and "@" not in name:
            return f"{name}@{digest}"
        if name or digest:
            return name or digest
    return None


def parse_rfc3339(value: str) -> datetime | None:
    """An aware datetime for an RFC 3339 timestamp (nanoseconds truncated); None if not one."""
    m = _RFC3339.match(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    if m.group("z"):
        tz: timezone = UTC
    else:
        offset = timedelta(hours=int(m.group("oh")), minutes=int(m.group("om")))
        if offset >= timedelta(hours=24):
            return None
        tz = timezone(-offset if m.group("sign") == "-" else offset)
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError:
        return None


def _numeric_id(value: str) -> int | None:
    if value.isascii() and value.isdigit():
        number = int(value)
        return number if number <= _MAX_ID else None
    return None


def _group_id(
    group: str, groups: Sequence[GroupEntry], default: int | None
) -> tuple[int | None, str | None]:
    if group == "":
        return default, None
    gid = _numeric_id(group)
    if gid is not None:
        return gid, None
    entry = next((g for g in groups if g.name == group), None)
    if entry is None:
        return None, f"group {group!r} of config.User is not in the image's /etc/group"
    return entry.gid, None


def _labels(reader: _Reader, inner: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    labels: list[tuple[str, str]] = []
    for key, value in reader.obj(inner, "Labels", "config.").items():
        if isinstance(key, str) and isinstance(value, str):
            labels.append((key, value))
        else:
            reader.note(f"config.Labels[{key!r}] is {_kind(value)}, expected a string")
    return tuple(sorted(labels))


def _env(reader: _Reader, inner: Mapping[str, Any]) -> tuple[tuple[EnvVar, ...], list[str]]:
    """The env vars, secret-looking values redacted, and those values (to redact elsewhere)."""
    raw = inner.get("Env")
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        reader.note(f"config.Env is {_kind(raw)}, expected a list of strings")
        return (), []
    env: list[EnvVar] = []
    secret_values: list[str] = []
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            reader.note(f"config.Env[{index}] is {_kind(item)}, expected a NAME=VALUE string")
            continue
        name, _, value = item.partition("=")
        rule_id = env_value_looks_secret(name, value)
        if rule_id is None:
            env.append(EnvVar(name, value))
        else:
            env.append(EnvVar(name, REDACTED, looks_secret=True, rule_id=rule_id))
            secret_values.append(value)
    return tuple(env), secret_values


def _created(reader: _Reader, value: object, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        reader.note(f"{where} is {_kind(value)}, expected an RFC 3339 timestamp")
        return None
    parsed = parse_rfc3339(value)
    if parsed is None:
        reader.note(f"{where} {value[:64]!r} is not an RFC 3339 timestamp")
    return parsed


def _history(
    reader: _Reader, raw: object, secret_values: Sequence[str]
) -> tuple[HistoryEntry, ...]:
    """The build history; `ENV` steps repeat env values, so secret ones are redacted there too."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.note(f"history is {_kind(raw)}, expected a list")
        return ()
    history: list[HistoryEntry] = []
    for index, item in enumerate(raw):
        where = f"history[{index}]."
        if not isinstance(item, Mapping):
            reader.note(f"history[{index}] is {_kind(item)}, expected an object")
            continue
        empty = item.get("empty_layer", False)
        if not isinstance(empty, bool):
            reader.note(f"{where}empty_layer is {_kind(empty)}, expected a boolean")
            empty = False
        history.append(
            HistoryEntry(
                created=_created(reader, item.get("created"), f"{where}created"),
                created_by=_redact(reader.text(item, "created_by", where), secret_values),
                empty_layer=empty,
                comment=_redact(reader.text(item, "comment", where), secret_values),
            )
        )
    return tuple(history)


def _redact(text: str, secret_values: Sequence[str]) -> str:
    # Longest first, so a value that contains another is replaced whole.
    for value in sorted(secret_values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def _kind(value: object) -> str:
    """A JSON-ish name of a value's type, for messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case Mapping():
            return "an object"
        case _:
            return type(value).__name__
