"""Pipeline metadata from the environments of GitHub Actions, GitLab CI, Jenkins, TIDEGATE_CI_*."""

from __future__ import annotations

import pytest

from tidegate.ci import MAX_VALUE, PipelineInfo, detect

GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.example.com",
    "GITHUB_REPOSITORY": "acme/app",
    "GITHUB_RUN_ID": "99",
    "GITHUB_SHA": "abc123",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REF_TYPE": "branch",
}
GITLAB = {
    "GITLAB_CI": "true",
    "CI_JOB_URL": "https://gitlab.example.com/acme/app/-/jobs/7",
    "CI_COMMIT_SHA": "def456",
    "CI_COMMIT_BRANCH": "develop",
    "CI_PIPELINE_ID": "1234",
}
JENKINS = {
    "JENKINS_URL": "https://jenkins.example.com/",
    "BUILD_URL": "https://jenkins.example.com/job/app/42/",
    "GIT_COMMIT": "0987fed",
    "GIT_BRANCH": "origin/release/2.x",
    "BUILD_TAG": "jenkins-app-42",
}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            GITHUB,
            PipelineInfo(
                "github-actions",
                "https://github.example.com/acme/app/actions/runs/99",
                "abc123",
                "main",
                "99",
            ),
        ),
        (
            # A pull request: the merge ref is not a branch; the head branch is.
            {
                **GITHUB,
                "GITHUB_REF": "refs/pull/5/merge",
                "GITHUB_REF_NAME": "5/merge",
                "GITHUB_REF_TYPE": "",
                "GITHUB_HEAD_REF": "feature/x",
                "GITHUB_RUN_ATTEMPT": "2",
            },
            PipelineInfo(
                "github-actions",
                "https://github.example.com/acme/app/actions/runs/99/attempts/2",
                "abc123",
                "feature/x",
                "99",
            ),
        ),
        (
            {**GITHUB, "GITHUB_REF": "refs/tags/v1.0", "GITHUB_REF_TYPE": "tag"},
            PipelineInfo(
                "github-actions",
                "https://github.example.com/acme/app/actions/runs/99",
                "abc123",
                None,
                "99",
            ),
        ),
        (
            GITLAB,
            PipelineInfo("gitlab-ci", GITLAB["CI_JOB_URL"], "def456", "develop", "1234"),
        ),
        (
            {**GITLAB, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "mr-branch"},
            PipelineInfo("gitlab-ci", GITLAB["CI_JOB_URL"], "def456", "mr-branch", "1234"),
        ),
        (
            JENKINS,
            PipelineInfo(
                "jenkins", JENKINS["BUILD_URL"], "0987fed", "release/2.x", "jenkins-app-42"
            ),
        ),
        (
            {
                "TIDEGATE_CI_SYSTEM": "buildkite",
                "TIDEGATE_CI_JOB_URL": "https://buildkite.com/acme/app/builds/3",
                "TIDEGATE_CI_COMMIT": "aaa",
                "TIDEGATE_CI_BRANCH": "main",
                "TIDEGATE_CI_PIPELINE": "3",
            },
            PipelineInfo(
                "buildkite", "https://buildkite.com/acme/app/builds/3", "aaa", "main", "3"
            ),
        ),
        ({"TIDEGATE_CI_COMMIT": "bbb"}, PipelineInfo("generic", None, "bbb", None, None)),
        (
            # Explicit TIDEGATE_CI_* values win over what was detected.
            {**GITLAB, "TIDEGATE_CI_BRANCH": "renamed"},
            PipelineInfo("gitlab-ci", GITLAB["CI_JOB_URL"], "def456", "renamed", "1234"),
        ),
        ({}, PipelineInfo("local")),
        ({"GITHUB_ACTIONS": "false", "CI_JOB_URL": "x"}, PipelineInfo("local")),
        ({"JENKINS_URL": "https://j/"}, PipelineInfo("local")),  # no build: not a job
        (
            {"GITLAB_CI": "true", "CI_COMMIT_SHA": "  ", "CI_PIPELINE_ID": " 5 "},
            PipelineInfo("gitlab-ci", None, None, None, "5"),
        ),
    ],
    ids=[
        "github-branch",
        "github-pull-request",
        "github-tag",
        "gitlab",
        "gitlab-merge-request",
        "jenkins",
        "generic",
        "generic-partial",
        "override",
        "local",
        "not-ci",
        "jenkins-without-build",
        "blank-values",
    ],
)
def test_detect(env: dict[str, str], expected: PipelineInfo) -> None:
    assert detect(env) == expected


def test_hostile_values_are_bounded() -> None:
    info = detect({"GITLAB_CI": "true", "CI_JOB_URL": "h" * 100_000})
    assert info.job_url is not None
    assert len(info.job_url) == MAX_VALUE


def test_json_form_has_every_field() -> None:
    assert detect(GITLAB).to_json() == {
        "system": "gitlab-ci",
        "job_url": GITLAB["CI_JOB_URL"],
        "commit": "def456",
        "branch": "develop",
        "pipeline": "1234",
    }
