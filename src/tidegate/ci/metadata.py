"""Pipeline metadata (system, job URL, commit, branch, pipeline id) from a CI environment.

Each CI system is one small reader over the variables it documents: GitHub Actions
(`GITHUB_*`), GitLab CI (`CI_*`), Jenkins (`BUILD_URL`, `GIT_*`). Any system can also set the
generic `TIDEGATE_CI_*` variables, which win over what was detected (so a wrapper script can
correct or complete it). Values come from the environment of someone else's build: they are
stripped and cut to `MAX_VALUE` characters, and an empty one counts as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

MAX_VALUE = 1024
"""The longest value kept; a longer one is cut (it ends up in an audit event)."""

GENERIC_PREFIX = "TIDEGATE_CI_"


class System(StrEnum):
    GITHUB_ACTIONS = "github-actions"
    GITLAB_CI = "gitlab-ci"
    JENKINS = "jenkins"
    GENERIC = "generic"
    """Named only through TIDEGATE_CI_* variables."""
    LOCAL = "local"
    """No CI system recognised: a developer's machine."""


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    """Where a scan ran, as the CI audit event records it."""

    system: str
    """A `System` value, or the free text of TIDEGATE_CI_SYSTEM."""
    job_url: str | None = None
    """A link back to the job's log."""
    commit: str | None = None
    branch: str | None = None
    pipeline: str | None = None
    """The pipeline / run / build id."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _get(env: Mapping[str, str], *names: str) -> str | None:
    """The first non-empty value among `names`, stripped and bounded."""
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return value.strip()[:MAX_VALUE]
    return None


def _github(env: Mapping[str, str]) -> PipelineInfo:
    server = _get(env, "GITHUB_SERVER_URL") or "https://github.com"
    repo, run = _get(env, "GITHUB_REPOSITORY"), _get(env, "GITHUB_RUN_ID")
    url = f"{server.rstrip('/')}/{repo}/actions/runs/{run}" if repo and run else None
    attempt = _get(env, "GITHUB_RUN_ATTEMPT")
    if url is not None and attempt not in (None, "1"):
        url += f"/attempts/{attempt}"
    # A pull request builds a merge ref; the branch a developer knows is its head.
    branch = _get(env, "GITHUB_HEAD_REF")
    if branch is None:
        ref = _get(env, "GITHUB_REF") or ""
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        branch = branch or (
            _get(env, "GITHUB_REF_NAME") if _get(env, "GITHUB_REF_TYPE") == "branch" else None
        )
    return PipelineInfo(
        system=System.GITHUB_ACTIONS.value,
        job_url=url,
        commit=_get(env, "GITHUB_SHA"),
        branch=branch,
        pipeline=run,
    )


def _gitlab(env: Mapping[str, str]) -> PipelineInfo:
    return PipelineInfo(
        system=System.GITLAB_CI.value,
        job_url=_get(env, "CI_JOB_URL"),
        commit=_get(env, "CI_COMMIT_SHA"),
        branch=_get(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_BRANCH"),
        pipeline=_get(env, "CI_PIPELINE_ID"),
    )


def _jenkins(env: Mapping[str, str]) -> PipelineInfo:
    branch = _get(env, "CHANGE_BRANCH", "BRANCH_NAME", "GIT_BRANCH")
    # The git plugin names the remote-tracking branch ("origin/main").
    if branch is not None and branch.startswith("origin/"):
        branch = branch.removeprefix("origin/")
    return PipelineInfo(
        system=System.JENKINS.value,
        job_url=_get(env, "BUILD_URL"),
        commit=_get(env, "GIT_COMMIT"),
        branch=branch,
        pipeline=_get(env, "BUILD_TAG", "BUILD_NUMBER"),
    )


_Reader = Callable[[Mapping[str, str]], PipelineInfo]
_Test = Callable[[Mapping[str, str]], bool]

_READERS: tuple[tuple[_Test, _Reader], ...] = (
    (lambda env: (env.get("GITHUB_ACTIONS") or "").lower() == "true", _github),
    (lambda env: (env.get("GITLAB_CI") or "").lower() == "true", _gitlab),
    (lambda env: bool(_get(env, "JENKINS_URL")) and bool(_get(env, "BUILD_URL")), _jenkins),
)


def _generic(env: Mapping[str, str], found: PipelineInfo) -> PipelineInfo:
    overrides = {
        name: value
        for name in ("system", "job_url", "commit", "branch", "pipeline")
        if (value := _get(env, GENERIC_PREFIX + name.upper())) is not None
    }
    if not overrides:
        return found
    if found.system == System.LOCAL and "system" not in overrides:
        overrides["system"] = System.GENERIC.value
    return replace(found, **overrides)


def detect(env: Mapping[str, str]) -> PipelineInfo:
    """The pipeline metadata of the first CI system `env` belongs to, with TIDEGATE_CI_*
    overrides applied; `System.LOCAL` with nothing else when no CI is recognised."""
    found = PipelineInfo(system=System.LOCAL.value)
    for matches, read in _READERS:
        if matches(env):
            found = read(env)
            break
    return _generic(env, found)
