"""The ready-made CI integrations run for real: the GitHub composite action's scan step and the
GitLab template's script are executed with bash, as the runners would, against the demo image.

Expressions `${{ inputs.NAME }}` are rendered from the action's defaults and the test's inputs
(the way the runner does before it starts the shell); `tidegate` comes from this venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gate_support import closed_port_url

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "integrations" / "github-action" / "action.yml"
GITLAB = ROOT / "integrations" / "gitlab" / "tidegate.gitlab-ci.yml"
POLICY = """\
- kind: Policy
  name: no-high
  mode: enforce
  controls: {severity: {max_severity: medium}}
"""
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


def _step(step_id: str) -> dict[str, Any]:
    return next(s for s in _action()["runs"]["steps"] if s.get("id") == step_id)


def _render(value: str, inputs: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return inputs[match.group(1)]

    return re.sub(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}", one, value)


def _base_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TIDEGATE_", "GITHUB_"))}
    return {**keep, "PATH": f"{bin_dir}:{keep.get('PATH', '')}", "HOME": str(tmp_path)}


def test_action_declares_the_inputs_and_uploads_sarif() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    for name in ("image", "console", "token", "enforce", "report-dir", "upload-sarif", "policy"):
        assert name in action["inputs"], name
    assert action["inputs"]["enforce"]["default"] == "false"  # audit unless asked
    upload = [s for s in action["runs"]["steps"] if "upload-sarif" in s.get("uses", "")]
    assert len(upload) == 1
    assert upload[0]["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload[0]["with"]["sarif_file"].endswith("/tidegate-report.sarif")
    assert upload[0]["if"].startswith("always()")  # also after a failed gate
    install = next(s for s in action["runs"]["steps"] if s.get("name") == "Install Tidegate")
    assert "pip install" in install["run"]


@pytest.mark.parametrize(("enforce", "code"), [("true", 1), ("false", 0)], ids=["enforce", "audit"])
def test_action_scan_step_runs(
    demo_image: str, demo_db: Path, tmp_path: Path, enforce: str, code: int
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    inputs = {name: str(spec.get("default", "")) for name, spec in _action()["inputs"].items()}
    inputs.update(image=demo_image, policy="policy.yaml", db=str(demo_db), enforce=enforce)
    step = _step("scan")
    env = {k: _render(str(v), inputs) for k, v in step["env"].items()}
    output = tmp_path / "github_output"
    env = {**_base_env(tmp_path), **env, "GITHUB_OUTPUT": str(output)}
    assert BASH is not None
    done = subprocess.run(
        [BASH, "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == code, done.stderr
    assert output.read_text().strip() == f"exit-code={code}"
    assert (tmp_path / "tidegate-reports" / "tidegate-report.sarif").is_file()
    assert "no-high" in done.stderr


def _gitlab_job() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    job: dict[str, Any] = loaded[".tidegate-scan"]
    return job


def test_gitlab_template_keeps_the_reports() -> None:
    job = _gitlab_job()
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == "$TIDEGATE_REPORT_DIR/tidegate-report.junit.xml"
    assert artifacts["paths"] == ["$TIDEGATE_REPORT_DIR/"]
    assert job["variables"]["TIDEGATE_ENFORCE"] == "false"


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"TIDEGATE_ENFORCE": "true"}, 1),
        ({"TIDEGATE_ENFORCE": "false"}, 0),
        # A console that is away: the template's default fails the job with exit 7.
        ({"TIDEGATE_POLICY": "", "TIDEGATE_TOKEN": "tg_x"}, 7),
        (
            {
                "TIDEGATE_POLICY": "",
                "TIDEGATE_TOKEN": "tg_x",
                "TIDEGATE_FAIL_ON_UNREACHABLE": "false",
            },
            0,
        ),
    ],
    ids=["enforce", "audit", "console-away", "console-away-tolerated"],
)
def test_gitlab_script_runs(
    demo_image: str, demo_db: Path, tmp_path: Path, variables: dict[str, str], code: int
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    job = _gitlab_job()
    env = {**_base_env(tmp_path), **{k: str(v) for k, v in job["variables"].items()}}
    env.update(
        TIDEGATE_IMAGE=demo_image,
        TIDEGATE_DB_FILE=str(demo_db),
        TIDEGATE_POLICY="policy.yaml",
        CI_JOB_URL="https://gitlab.example.com/acme/app/-/jobs/7",
    )
    env.update(variables)
    if "TIDEGATE_TOKEN" in variables:
        env["TIDEGATE_CONSOLE"] = closed_port_url()
    script = "set -eo pipefail\n" + "\n".join(job["script"])  # as the runner's shell does
    assert BASH is not None
    done = subprocess.run(
        [BASH, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == code, done.stderr
    reports = tmp_path / "tidegate-reports"
    assert (reports / "tidegate-report.junit.xml").is_file()
    assert (reports / "tidegate-report.html").is_file()
