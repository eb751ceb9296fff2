"""`core.runtime.decide` as decision tables: image state x modes, each control, services as
scopes, policy layering, engine-level controls, and image names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tidegate.core.modes import Action
from tidegate.core.policy import LabelRule, Mode
from tidegate.core.runtime import (
    DEFAULT_VOLUME_BLACKLIST,
    ContainerRequest,
    ImageState,
    ImageStateKind,
    Mount,
    RuntimeControl,
    RuntimeControls,
    RuntimePolicy,
    RuntimePolicyId,
    RuntimeScope,
    Service,
    ServiceRule,
    decide,
    default_runtime_policy,
    split_image_name,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
APPROVED = ImageState(ImageStateKind.REGISTERED_APPROVED)
UNREGISTERED = ImageState(ImageStateKind.UNREGISTERED, reason="unknown to the console")
DISALLOWED = ImageState(ImageStateKind.REGISTERED_DISALLOWED, reason="disallowed by strict: cves")
RETIRED = ImageState(ImageStateKind.RETIRED)
A, E = Mode.AUDIT, Mode.ENFORCE

REQUEST = ContainerRequest(
    container_id="c0ffee",
    name="web",
    image_ref="registry.example.com/team-a/web:1.0",
    image_id="sha256:" + "c" * 64,
    host="node-1",
    enforcer_group="prod",
    namespace="shop",
    labels=(("app", "web"),),
    user_uid=1000,
    user_gid=1000,
)


def policy(
    name: str = "p", mode: Mode = E, scope: RuntimeScope | None = None, **controls: object
) -> RuntimePolicy:
    return RuntimePolicy(
        id=RuntimePolicyId(name),
        name=name,
        mode=mode,
        scope=scope or RuntimeScope(),
        controls=RuntimeControls(**controls),  # type: ignore[arg-type]
    )


def controls_hit(request: ContainerRequest, **controls: object) -> list[RuntimeControl]:
    decision = decide(request, [policy(**controls)], APPROVED, group_mode=E, now=NOW)
    return [v.control for v in decision.violations]


MODE_TABLE = [
    # policy mode, group mode, allowed, action, effective mode
    (A, A, True, Action.DETECT, A),
    (A, E, True, Action.DETECT, A),
    (E, A, True, Action.DETECT, A),
    (E, E, False, Action.BLOCK, E),
]


@pytest.mark.parametrize(
    ("policy_mode", "group_mode", "allowed", "action", "effective"), MODE_TABLE
)
@pytest.mark.parametrize(
    ("state", "control", "controls"),
    [
        (UNREGISTERED, RuntimeControl.UNREGISTERED_IMAGE, {"block_unregistered": True}),
        (RETIRED, RuntimeControl.UNREGISTERED_IMAGE, {"block_unregistered": True}),
        (DISALLOWED, RuntimeControl.DISALLOWED_IMAGE, {"block_disallowed": True}),
    ],
    ids=["unregistered", "retired", "disallowed"],
)
def test_image_state_in_every_mode_combination(
    state: ImageState,
    control: RuntimeControl,
    controls: dict[str, bool],
    policy_mode: Mode,
    group_mode: Mode,
    allowed: bool,
    action: Action,
    effective: Mode,
) -> None:
    decision = decide(
        REQUEST, [policy("images", policy_mode, **controls)], state, group_mode=group_mode, now=NOW
    )
    assert decision.allowed is allowed
    (violation,) = decision.violations
    assert violation.control is control
    assert violation.decision.action is action
    assert violation.decision.policy_mode is policy_mode
    assert violation.decision.point_mode is group_mode
    assert violation.decision.effective_mode is effective
    assert not violation.engine_level
    if not allowed:
        assert "'images'" in decision.message
        assert str(control) in decision.message
    else:
        assert decision.message.startswith("allowed (audit)")


@pytest.mark.parametrize(
    ("state", "controls"),
    [
        (APPROVED, {"block_unregistered": True, "block_disallowed": True}),
        (DISALLOWED, {"block_unregistered": True}),
        (UNREGISTERED, {"block_disallowed": True}),
    ],
)
def test_image_controls_only_fire_for_their_state(
    state: ImageState, controls: dict[str, bool]
) -> None:
    decision = decide(REQUEST, [policy(**controls)], state, group_mode=E, now=NOW)
    assert decision.allowed
    assert decision.violations == ()


def _mounted(source: str, type_: str = "bind", options: tuple[str, ...] = ()) -> ContainerRequest:
    return replace(REQUEST, mounts=(Mount(source, "/mnt", type_, options),))


@pytest.mark.parametrize(
    ("source", "type_", "options", "blacklist", "hit"),
    [
        ("/var/run/docker.sock", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/run/docker.sock", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/run/containerd/containerd.sock", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/var/run/crio/crio.sock", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/etc", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/etc/", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/tmp/../etc", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/proc", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),
        ("/var", "bind", (), DEFAULT_VOLUME_BLACKLIST, True),  # holds /var/lib/docker
        ("/var/lib", "none", ("rbind", "rw"), DEFAULT_VOLUME_BLACKLIST, True),
        ("/etc/nginx", "bind", (), DEFAULT_VOLUME_BLACKLIST, False),
        ("/srv/data", "bind", (), DEFAULT_VOLUME_BLACKLIST, False),
        ("proc", "proc", (), DEFAULT_VOLUME_BLACKLIST, False),  # not a host path
        ("/", "tmpfs", (), DEFAULT_VOLUME_BLACKLIST, False),
        ("/srv/secrets/db", "bind", (), ("/srv/secret*",), True),
        ("/home/alice/.ssh", "bind", (), ("/home/*/.ssh",), True),
        ("/home/alice/src", "bind", (), ("/home/*/.ssh",), False),
        ("/data/x", "bind", (), ("/data/*",), True),
    ],
)
def test_volume_blacklist(
    source: str, type_: str, options: tuple[str, ...], blacklist: tuple[str, ...], hit: bool
) -> None:
    found = controls_hit(_mounted(source, type_, options), volume_blacklist=blacklist)
    assert found == ([RuntimeControl.VOLUME_BLACKLIST] if hit else [])


def test_volume_blacklist_names_every_offending_mount_in_one_violation() -> None:
    request = replace(
        REQUEST,
        mounts=(Mount("/var/run/docker.sock", "/sock"), Mount("/srv", "/srv"), Mount("/etc", "/h")),
    )
    decision = decide(request, [default_runtime_policy()], APPROVED, group_mode=E, now=NOW)
    (violation,) = decision.violations
    assert "/var/run/docker.sock -> /sock" in violation.message
    assert "/etc -> /h" in violation.message
    assert "/srv" not in violation.message
    assert violation.decision.action is Action.DETECT  # the default policy audits


@pytest.mark.parametrize(
    ("changes", "controls", "expected"),
    [
        ({"user_uid": 0}, {"block_root": True}, [RuntimeControl.ROOT_USER]),
        ({"user_uid": None}, {"block_root": True}, [RuntimeControl.ROOT_USER]),
        ({"user_uid": 1000}, {"block_root": True}, []),
        ({"user_uid": 0}, {}, []),
        ({"privileged": True}, {"block_privileged": True}, [RuntimeControl.PRIVILEGED]),
        ({"privileged": False}, {"block_privileged": True}, []),
        ({"host_network": True}, {"block_host_network": True}, [RuntimeControl.HOST_NETWORK]),
        ({"host_pid": True}, {"block_host_pid": True}, [RuntimeControl.HOST_PID]),
        ({"host_ipc": True}, {"block_host_ipc": True}, [RuntimeControl.HOST_IPC]),
        ({"host_ipc": True}, {"block_host_pid": True}, []),
        (
            {"added_capabilities": ("CAP_NET_ADMIN", "SYS_TIME")},
            {"blocked_capabilities": ("net_admin",)},
            [RuntimeControl.CAPABILITIES],
        ),
        ({"added_capabilities": ("SYS_TIME",)}, {"blocked_capabilities": ("NET_ADMIN",)}, []),
        (
            {"added_capabilities": ("SYS_TIME",)},
            {"blocked_capabilities": ("ALL",)},
            [RuntimeControl.CAPABILITIES],
        ),
        ({"added_capabilities": ()}, {"blocked_capabilities": ("ALL",)}, []),
        (
            {"no_new_privileges": False},
            {"require_no_new_privileges": True},
            [RuntimeControl.NO_NEW_PRIVILEGES],
        ),
        ({"no_new_privileges": True}, {"require_no_new_privileges": True}, []),
        (
            {"image_ref": "docker.io/library/nginx:1.27"},
            {"allowed_registries": ("registry.example.com", "*.internal:5000")},
            [RuntimeControl.ALLOWED_REGISTRIES],
        ),
        (
            {"image_ref": "nginx"},
            {"allowed_registries": ("registry.example.com",)},
            [RuntimeControl.ALLOWED_REGISTRIES],
        ),
        (
            {"image_ref": "build.internal:5000/app:2"},
            {"allowed_registries": ("*.internal:5000",)},
            [],
        ),
        ({}, {"allowed_registries": ("registry.example.com",)}, []),
    ],
)
def test_container_controls(
    changes: dict[str, object], controls: dict[str, object], expected: list[RuntimeControl]
) -> None:
    assert controls_hit(replace(REQUEST, **changes), **controls) == expected  # type: ignore[arg-type]


def test_capability_violation_names_only_the_blocked_ones() -> None:
    request = replace(REQUEST, added_capabilities=("CAP_NET_ADMIN", "SYS_TIME"))
    decision = decide(
        request, [policy(blocked_capabilities=("NET_ADMIN",))], APPROVED, group_mode=E, now=NOW
    )
    assert decision.violations[0].message == "adds capabilities NET_ADMIN"


@pytest.mark.parametrize(("policy_mode", "group_mode"), [(A, A), (A, E), (E, A), (E, E)])
def test_seccomp_is_engine_level_and_effective_in_every_mode(
    policy_mode: Mode, group_mode: Mode
) -> None:
    request = replace(REQUEST, seccomp_unconfined=True)
    decision = decide(
        request,
        [policy("sec", policy_mode, seccomp_profile=True)],
        APPROVED,
        group_mode=group_mode,
        now=NOW,
    )
    (violation,) = decision.violations
    assert violation.engine_level
    assert violation.control is RuntimeControl.SECCOMP_PROFILE
    assert violation.decision.effective_mode is Mode.ENFORCE
    assert violation.decision.action is Action.BLOCK
    assert (violation.decision.policy_mode, violation.decision.point_mode) == (
        policy_mode,
        group_mode,
    )
    assert not decision.allowed
    confined = decide(REQUEST, [policy(seccomp_profile=True)], APPROVED, group_mode=A, now=NOW)
    assert confined.violations == ()


SERVICES = (
    Service("payments", priority=10, rules=(ServiceRule(labels=(LabelRule("app", "pay*"),)),)),
    Service("shop-backend", priority=50, rules=(ServiceRule(namespaces=("shop",)),)),
    Service("nginx-anywhere", priority=90, rules=(ServiceRule(images=("*/library/nginx*",)),)),
)


@pytest.mark.parametrize(
    ("changes", "service", "scoped_applies"),
    [
        ({"labels": (("app", "payments"),)}, "payments", True),  # overlaps shop: priority 10 wins
        ({}, "shop-backend", False),
        ({"namespace": "other", "image_ref": "nginx:1.27"}, "nginx-anywhere", False),
        ({"namespace": None}, None, False),
        ({"namespace": "other", "labels": (("app", "payroll"),)}, "payments", True),
    ],
)
def test_services_as_scopes_with_priority(
    changes: dict[str, object], service: str | None, scoped_applies: bool
) -> None:
    request = replace(REQUEST, privileged=True, **changes)  # type: ignore[arg-type]
    payments_only = policy(
        "payments-no-priv", scope=RuntimeScope(services=("payments",)), block_privileged=True
    )
    decision = decide(request, [payments_only], APPROVED, group_mode=E, now=NOW, services=SERVICES)
    assert decision.service == service
    assert decision.allowed is not scoped_applies
    assert decision.policies == (("payments-no-priv",) if scoped_applies else ())


def test_service_priority_tie_goes_to_the_name() -> None:
    rule = (ServiceRule(namespaces=("shop",)),)
    services = (Service("zeta", 5, rule), Service("alpha", 5, rule))
    decision = decide(REQUEST, [], APPROVED, group_mode=E, now=NOW, services=services)
    assert decision.service == "alpha"


def test_layers_default_and_scoped_policies_each_yield_their_violations() -> None:
    strict_shop = policy(
        "shop-strict",
        E,
        scope=RuntimeScope(namespaces=("shop",)),
        block_root=True,
        block_unregistered=True,
    )
    dev_only = policy("dev-only", E, scope=RuntimeScope(namespaces=("dev",)), block_privileged=True)
    request = replace(
        REQUEST, user_uid=0, privileged=True, mounts=(Mount("/var/run/docker.sock", "/s"),)
    )
    decision = decide(
        request,
        [strict_shop, dev_only, default_runtime_policy()],
        UNREGISTERED,
        group_mode=E,
        now=NOW,
    )
    assert decision.policies == ("Default runtime policy", "shop-strict")
    got = [(v.policy_name, v.control, v.decision.action) for v in decision.violations]
    assert got == [
        ("Default runtime policy", RuntimeControl.VOLUME_BLACKLIST, Action.DETECT),
        ("shop-strict", RuntimeControl.UNREGISTERED_IMAGE, Action.BLOCK),
        ("shop-strict", RuntimeControl.ROOT_USER, Action.BLOCK),
    ]
    assert not decision.allowed
    assert [v.control for v in decision.detections] == [RuntimeControl.VOLUME_BLACKLIST]
    assert "runtime policy 'shop-strict', control block_root" in decision.message
    # Outside the scoped layer only the default policy speaks, and it audits.
    elsewhere = decide(
        replace(request, namespace="tools"),
        [strict_shop, default_runtime_policy()],
        UNREGISTERED,
        group_mode=E,
        now=NOW,
    )
    assert elsewhere.allowed
    assert [v.policy_name for v in elsewhere.violations] == ["Default runtime policy"]


def test_the_default_policy_covers_everything_and_audits() -> None:
    default = default_runtime_policy()
    assert default.is_default
    assert default.mode is Mode.AUDIT
    assert default.scope.is_global
    assert default.controls.drift_prevention
    assert "/var/run/docker.sock" in default.controls.volume_blacklist
    # Even a (mistaken) narrow scope does not take the default policy off any container.
    narrowed = replace(default, scope=RuntimeScope(namespaces=("nowhere",)))
    decision = decide(_mounted("/etc"), [narrowed], APPROVED, group_mode=E, now=NOW)
    assert [v.control for v in decision.violations] == [RuntimeControl.VOLUME_BLACKLIST]


def test_disabled_policies_and_enforce_after() -> None:
    off = replace(policy(block_unregistered=True), enabled=False)
    assert decide(REQUEST, [off], UNREGISTERED, group_mode=E, now=NOW).violations == ()
    later = replace(policy(mode=A, block_unregistered=True), enforce_after=NOW + timedelta(days=1))
    before = decide(REQUEST, [later], UNREGISTERED, group_mode=E, now=NOW)
    after = decide(REQUEST, [later], UNREGISTERED, group_mode=E, now=NOW + timedelta(days=2))
    assert before.allowed
    assert before.violations[0].decision.policy_mode is Mode.AUDIT
    assert not after.allowed
    assert after.violations[0].decision.policy_mode is Mode.ENFORCE


@pytest.mark.parametrize(
    ("scope", "applies"),
    [
        (RuntimeScope(), True),
        (RuntimeScope(enforcer_groups=("prod",)), True),
        (RuntimeScope(enforcer_groups=("staging", "pr*")), True),
        (RuntimeScope(enforcer_groups=("staging",)), False),
        (RuntimeScope(hosts=("node-*",)), True),
        (RuntimeScope(hosts=("db-*",)), False),
        (RuntimeScope(namespaces=("shop",), hosts=("db-*",)), False),  # AND across kinds
        (RuntimeScope(container_labels=(LabelRule("app"),)), True),
        (RuntimeScope(container_labels=(LabelRule("app", "api"), LabelRule("app", "w*"))), True),
        (RuntimeScope(container_labels=(LabelRule("tier"),)), False),
        (RuntimeScope(images=("registry.example.com/team-a/*",)), True),
        (RuntimeScope(images=("team-a/web:1.0",)), True),
        (RuntimeScope(images=("team-b/*",)), False),
        (RuntimeScope(registries=("*.example.com",)), True),
        (RuntimeScope(registries=("docker.io",)), False),
        (RuntimeScope(repositories=("team-a/*",)), True),
        (RuntimeScope(repositories=("library/*",)), False),
        (RuntimeScope(services=("payments",)), False),
    ],
)
def test_scope_matching(scope: RuntimeScope, applies: bool) -> None:
    scoped = policy(scope=scope, block_root=True)
    decision = decide(replace(REQUEST, user_uid=0), [scoped], APPROVED, group_mode=E, now=NOW)
    assert decision.allowed is not applies


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("team/app:1", "docker.io", "team/app", "1", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", None, None),
        ("localhost/app", "localhost", "app", None, None),
        ("127.0.0.1:5000/a/b:2", "127.0.0.1:5000", "a/b", "2", None),
        ("reg.io/x@sha256:" + "a" * 64, "reg.io", "x", None, "sha256:" + "a" * 64),
        ("reg.io:443/x:1@sha256:" + "b" * 64, "reg.io:443", "x", "1", "sha256:" + "b" * 64),
    ],
)
def test_split_image_name(
    ref: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    name = split_image_name(ref)
    assert (name.registry, name.repository, name.tag, name.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
