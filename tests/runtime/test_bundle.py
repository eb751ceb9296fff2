"""`core.bundle`: the image index answers by every identity, the JSON form round-trips with a
content-hash version (profiles and profiling sessions included), and hostile bundles are refused
with an error naming the field."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tidegate.core.bundle import (
    BundleError,
    EnforcerGroupInfo,
    FailMode,
    ImageRecord,
    PolicyBundle,
    ProfilingTarget,
    build_bundle,
    build_image_index,
    bundle_from_json,
    bundle_to_json,
    digest_key,
)
from tidegate.core.drift import ImageProfile
from tidegate.core.policy import LabelRule, Mode
from tidegate.core.runtime import (
    ImageStateKind,
    RuntimeControls,
    RuntimePolicy,
    RuntimePolicyId,
    RuntimeScope,
    Service,
    ServiceRule,
    default_runtime_policy,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def sha(char: str) -> str:
    return "sha256:" + char * 64


RECORDS = (
    ImageRecord(
        ImageStateKind.REGISTERED_APPROVED,
        manifest_digest=sha("1"),
        config_digest=sha("2"),
        names=("docker.io/library/nginx:1.27", "registry.example.com/web:latest"),
        executables=("/usr/sbin/nginx", "/bin/sh"),
    ),
    ImageRecord(
        ImageStateKind.REGISTERED_DISALLOWED,
        manifest_digest=sha("3"),
        config_digest=sha("4"),
        names=("registry.example.com/legacy:2",),
        reason="disallowed by strict: severity",
    ),
    ImageRecord(
        ImageStateKind.RETIRED, manifest_digest=sha("5"), names=("registry.example.com/old:1",)
    ),
    ImageRecord(ImageStateKind.REGISTERED_APPROVED),  # no digest: not indexable, skipped
)


PROFILES = {
    "docker.io/library/nginx": ImageProfile(
        name="nginx-web",
        mode=Mode.ENFORCE,
        version=3,
        executables={"/usr/sbin/nginx": "SHA256:" + "AB" * 32, "/bin/sh": None},
    ),
    "registry.example.com/legacy": ImageProfile(name="legacy", executables={}),
}
PROFILING = (
    ProfilingTarget("s2", "web", "registry.example.com/web", digest=sha("1")),
    ProfilingTarget("s1", "batch", "registry.example.com/batch"),
)


def bundle(mode: Mode = Mode.AUDIT) -> PolicyBundle:
    custom = RuntimePolicy(
        id=RuntimePolicyId("p1"),
        name="shop strict",
        mode=Mode.ENFORCE,
        scope=RuntimeScope(namespaces=("shop",), container_labels=(LabelRule("app", "w*"),)),
        controls=RuntimeControls(block_unregistered=True, blocked_capabilities=("ALL",)),
        enforce_after=datetime(2026, 4, 1, tzinfo=UTC),
    )
    service = Service("payments", 10, (ServiceRule(labels=(LabelRule("app"),), images=("pay/*",)),))
    return build_bundle(
        group=EnforcerGroupInfo("prod", mode, admission_enabled=True, fail_mode=FailMode.CLOSED),
        policies=[default_runtime_policy(), custom],
        services=[service],
        images=build_image_index(RECORDS),
        now=NOW,
        profiles=PROFILES,
        profiling=PROFILING,
    )


@pytest.mark.parametrize(
    ("identity", "kind"),
    [
        ({"manifest_digest": sha("1")}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_id": sha("2")}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_id": "2" * 64}, ImageStateKind.REGISTERED_APPROVED),  # podman's bare image ID
        ({"image_ref": "2" * 64}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_ref": "nginx:1.27"}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_ref": "docker.io/library/nginx:1.27"}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_ref": "registry.example.com/web"}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_ref": "anything/at-all@" + sha("1")}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_ref": "nginx:1.28"}, ImageStateKind.UNREGISTERED),
        ({"image_id": sha("9"), "image_ref": "nginx:1.27"}, ImageStateKind.REGISTERED_APPROVED),
        ({"image_id": sha("4")}, ImageStateKind.REGISTERED_DISALLOWED),
        ({"image_ref": "registry.example.com/legacy:2"}, ImageStateKind.REGISTERED_DISALLOWED),
        ({"manifest_digest": sha("5")}, ImageStateKind.RETIRED),
        ({"manifest_digest": sha("9")}, ImageStateKind.UNREGISTERED),
        ({}, ImageStateKind.UNREGISTERED),
    ],
)
def test_lookup_by_any_identity_before_and_after_json(
    identity: dict[str, str], kind: ImageStateKind
) -> None:
    original = bundle()
    for candidate in (original, bundle_from_json(bundle_to_json(original))):
        assert candidate.image_state(**identity).kind is kind


def test_lookup_explains_itself() -> None:
    loaded = bundle_from_json(bundle_to_json(bundle()))
    assert loaded.image_state(image_id=sha("4")).reason == "disallowed by strict: severity"
    assert loaded.image_state(image_id=sha("2")).reason == "matched by config digest"
    assert loaded.image_state(image_ref="nginx:1.27").reason.startswith("matched by name")
    assert loaded.images.executables_of(sha("2")) == ("/usr/sbin/nginx", "/bin/sh")
    assert loaded.images.executables_of(sha("3")) is None


def test_round_trip_keeps_every_value_and_the_version() -> None:
    original = bundle()
    loaded = bundle_from_json(bundle_to_json(original))
    assert loaded.version == original.version
    assert loaded.version.startswith("sha256:")
    assert loaded.group == original.group
    assert loaded.policies == original.policies
    assert loaded.services == original.services
    assert dict(loaded.images.states) == dict(original.images.states)
    assert len(loaded.images) == 5
    assert loaded.profiles == original.profiles
    assert loaded.profiling == original.profiling == tuple(sorted(PROFILING))
    assert bundle_to_json(loaded) == bundle_to_json(original)


def test_profiles_by_repository_and_hashes_as_the_monitor_compares_them() -> None:
    loaded = bundle_from_json(bundle_to_json(bundle()))
    nginx = loaded.profile_for("docker.io/library/nginx")
    assert nginx is not None
    assert (nginx.name, nginx.mode, nginx.version) == ("nginx-web", Mode.ENFORCE, 3)
    assert nginx.executables == {"/bin/sh": None, "/usr/sbin/nginx": "ab" * 32}
    assert loaded.profile_for("docker.io/library/redis") is None


@pytest.mark.parametrize(
    ("repository", "identity", "sessions"),
    [
        ("registry.example.com/batch", {}, ["s1"]),  # no digest: every image of the repository
        ("registry.example.com/web", {"image_id": sha("1")}, ["s2"]),
        ("registry.example.com/web", {"image_ref": "registry.example.com/web:latest"}, ["s2"]),
        ("registry.example.com/web", {"image_ref": f"registry.example.com/web@{sha('1')}"}, ["s2"]),
        ("registry.example.com/web", {"image_id": sha("9")}, []),  # another build
        ("registry.example.com/web", {"image_ref": "registry.example.com/web:2"}, []),
        ("registry.example.com/other", {"image_id": sha("1")}, []),
    ],
)
def test_profiling_sessions_take_the_containers_of_their_image(
    repository: str, identity: dict[str, str], sessions: list[str]
) -> None:
    loaded = bundle_from_json(bundle_to_json(bundle()))
    assert [t.id for t in loaded.sessions_for(repository, **identity)] == sessions


def test_a_profile_or_a_session_changes_the_version() -> None:
    base = bundle()

    def variant(**changes: Any) -> str:
        kwargs: dict[str, Any] = {"profiles": PROFILES, "profiling": PROFILING, **changes}
        rebuilt = build_bundle(
            group=base.group, policies=base.policies, services=base.services,
            images=base.images, now=NOW, **kwargs,
        )  # fmt: skip
        return rebuilt.version

    assert variant() == base.version
    assert variant(profiling=PROFILING[:1]) != base.version
    switched = dict(PROFILES, legacy=ImageProfile(name="legacy", mode=Mode.ENFORCE))
    assert variant(profiles=switched) != base.version


def test_version_is_a_hash_of_the_content_only() -> None:
    first, again = bundle(), bundle()
    later = build_bundle(
        group=first.group,
        policies=first.policies,
        services=first.services,
        images=first.images,
        now=datetime(2027, 1, 1, tzinfo=UTC),
        profiles=first.profiles,
        profiling=first.profiling,
    )
    assert first.version == again.version == later.version
    assert bundle(Mode.ENFORCE).version != first.version


def test_digest_keys() -> None:
    assert digest_key(sha("a")) == digest_key("A" * 64) == bytes.fromhex("a" * 32)
    assert len(digest_key("sha512:" + "b" * 128)) == 16
    assert digest_key("sha512:" + "b" * 128) != digest_key("sha512:" + "c" * 128)


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(bundle_to_json(bundle()))
    return loaded


def _resealed(document: dict[str, Any]) -> bytes:
    """The document with a version matching its (altered) content, as a buggy console would."""
    content = {k: v for k, v in document.items() if k not in ("version", "generated_at")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    document["version"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    return json.dumps(document).encode()


def _set(path: list[Any], value: Any) -> bytes:
    document = _document()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return _resealed(document)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "bundle: not JSON"),
        (b"\xff\xfe", "bundle: not JSON"),
        (b"[1, 2]", "bundle: expected an object"),
        (b'{"format": 99}', "bundle.format: unsupported bundle format"),
        (
            _set(["group", "mode"], "sometimes"),
            "bundle.group.mode: 'sometimes' is not one of audit, enforce",
        ),
        (_set(["group", "fail_mode"], 1), "bundle.group.fail_mode"),
        (
            _set(["policies", 1, "controls", "block_everything"], True),
            "bundle.policies[1].controls.block_everything: unknown control",
        ),
        (
            _set(["policies", 1, "controls", "block_root"], "yes"),
            "bundle.policies[1].controls.block_root: expected true or false",
        ),
        (
            _set(["policies", 0, "scope", "namespaces"], "shop"),
            "bundle.policies[0].scope.namespaces: expected a list of strings",
        ),
        (_set(["policies", 0, "enforce_after"], "2026-04-01T00:00:00"), "must carry a time zone"),
        (
            _set(["services", 0, "rules", 0, "labels", 0], {"value": "x"}),
            "bundle.services[0].rules[0].labels[0].key: expected a string",
        ),
        (_set(["images", "approved"], "not base64!"), "bundle.images.approved: not base64"),
        (
            _set(["images", "approved"], base64.b64encode(b"123").decode()),
            "not a multiple of 16 bytes",
        ),
        (_set(["images", "names", "x/y:1"], 10**6), "1000000 is not the position of a key (0..4)"),
        (
            _set(["images", "reasons"], [["a", "b"]]),
            "bundle.images.reasons[0]: 'a' is not the position",
        ),
        (_set(["images", "reasons"], [1]), "bundle.images.reasons[0]: expected [position, reason]"),
        (
            _set(["images", "executables", 0, "keys"], [True]),
            "bundle.images.executables[0].keys[0]",
        ),
        (
            _set(["images", "executables", 0, "keys"], 3),
            "bundle.images.executables[0].keys: expected",
        ),
        (
            _set(["images", "names", "x/y:1"], "zz"),
            "bundle.images.names['x/y:1']: 'zz' is not the position of a key",
        ),
        (_set(["images", "key_bytes"], 32), "bundle.images.key_bytes: expected 16"),
        (_set(["profiles"], {"nginx": {}}), "bundle.profiles: expected a list"),
        (_set(["profiles", 0], "nginx"), "bundle.profiles[0]: expected an object"),
        (_set(["profiles", 0, "repository"], " "), "bundle.profiles[0].repository: must not be"),
        (_set(["profiles", 1, "repository"], "docker.io/library/nginx"), "has a profile already"),
        (_set(["profiles", 0, "name"], None), "bundle.profiles[0].name: expected a string"),
        (_set(["profiles", 0, "mode"], "strict"), "bundle.profiles[0].mode: 'strict' is not one"),
        (_set(["profiles", 0, "version"], 0), "bundle.profiles[0].version: expected a positive"),
        (_set(["profiles", 0, "version"], "3"), "bundle.profiles[0].version: expected an integer"),
        (_set(["profiles", 0, "executables"], ["/bin/sh"]), "executables: expected an object"),
        (
            _set(["profiles", 0, "executables", "bin/sh"], None),
            "bundle.profiles[0].executables['bin/sh']: 'bin/sh' is not an absolute path",
        ),
        (
            _set(["profiles", 0, "executables", "/x" * 3000], None),
            "is not an absolute path of at most 4096 characters",
        ),
        (
            _set(["profiles", 0, "executables", "/bin/sh"], "abc"),
            "bundle.profiles[0].executables['/bin/sh']: expected null or a sha256",
        ),
        (
            _set(["profiles", 0, "executables", "/bin/sh"], "AB" * 32),
            "expected null or a sha256 as 64 lowercase hex",
        ),
        (_set(["profiling"], None), "bundle.profiling: expected a list"),
        (_set(["profiling", 0, "id"], 7), "bundle.profiling[0].id: expected a string"),
        (_set(["profiling", 0, "repository"], ""), "bundle.profiling[0].repository: must not be"),
        (_set(["profiling", 1, "digest"], 5), "bundle.profiling[1].digest: expected a string"),
        (_set(["profiling", 1, "id"], "s1"), "bundle.profiling[1].id: session 's1' is listed"),
    ],
)
def test_hostile_bundles_are_refused_naming_the_field(data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=None) as caught:
        bundle_from_json(data)
    assert message in str(caught.value)


def test_an_altered_bundle_does_not_match_its_version() -> None:
    document = _document()
    document["group"]["mode"] = "audit" if document["group"]["mode"] == "enforce" else "enforce"
    with pytest.raises(BundleError, match=r"bundle\.version: does not match"):
        bundle_from_json(json.dumps(document))


def real_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_a_hundred_thousand_images_stay_compact() -> None:
    records = [
        ImageRecord(
            ImageStateKind.REGISTERED_APPROVED,
            manifest_digest=real_digest(f"manifest {i}"),
            config_digest=real_digest(f"config {i}"),
        )
        for i in range(100_000)
    ]
    built = build_bundle(
        group=EnforcerGroupInfo("big"),
        policies=[default_runtime_policy()],
        services=[],
        images=build_image_index(records),
        now=NOW,
    )
    data = bundle_to_json(built)
    assert len(data) < 6_000_000  # 200,000 keys of 16 bytes, base64: ~4.3 MB
    loaded = bundle_from_json(data)
    assert loaded.image_state(image_id=real_digest("config 99999")).registered
    assert not loaded.image_state(image_id=real_digest("config 100000")).registered
