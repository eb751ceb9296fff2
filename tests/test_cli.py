"""`tidegate scan` end to end through `main(argv, stdout, stderr)`: transports and credentials,
exit codes, hostile images, output formats (validated by their own schemas and libraries), no
secret in any output, the progress display, and the job `make run` does."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from helpers import images
from tidegate.cli.exit_codes import ExitCode
from tidegate.cli.main import main
from tidegate.demo import TAG as DEMO_TAG
from tidegate.demo import build as build_demo
from tidegate.report import writers
from tidegate.report.json_doc import json_schema

pytestmark = pytest.mark.system

DEMO_REPO = "cli/demo"
KEY_PATH = "home/app/.ssh/id_ed25519"


class TTY(io.StringIO):
    """A terminal as far as the progress display can tell."""

    def isatty(self) -> bool:
        return True


def cli(
    *argv: str, stdin: str | None = None, stderr: io.StringIO | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), out, err)
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user data dir, no CI variable, no credentials from the caller's environment."""
    monkeypatch.setenv("TIDEGATE_DATA_DIR", str(tmp_path / "data"))
    for name in (
        "CI",
        "TIDEGATE_DB",
        "TIDEGATE_CACHE_DIR",
        "TIDEGATE_REGISTRY_USERNAME",
        "TIDEGATE_REGISTRY_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)


class Demo:
    """The demo image, its key as planted in the image, and its forms for every transport."""

    def __init__(self, work: Path, registry: images.Registry, auth: images.Registry) -> None:
        self.layout = build_demo(work)
        self.oci = f"oci:{self.layout}:{DEMO_TAG}"
        self.oci_archive = work / "demo.oci.tar"
        self.docker_archive = work / "demo.docker.tar"
        images.run("skopeo", "copy", "--quiet", self.oci, f"oci-archive:{self.oci_archive}:demo")
        images.run("skopeo", "copy", "--quiet", self.oci, f"docker-archive:{self.docker_archive}")
        images.run("umoci", "unpack", "--image", f"{self.layout}:{DEMO_TAG}", work / "bundle")
        self.rootfs = work / "bundle" / "rootfs"
        self.key = (self.rootfs / KEY_PATH).read_text()
        self.anon = registry.push(self.oci, f"{DEMO_REPO}:1")
        self.private = auth.push(self.oci, f"{DEMO_REPO}:1")
        self.auth = auth

    def key_fragments(self) -> set[str]:
        """Every 8-character window of the key's base64 body (a redacted hint is shorter)."""
        body = "".join(line for line in self.key.splitlines() if not line.startswith("-----"))
        return {body[i : i + 8] for i in range(len(body) - 7)}


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
    registry: images.Registry,
    auth_registry: images.Registry,
) -> Demo:
    return Demo(tmp_path_factory.mktemp("cli-demo"), registry, auth_registry)


def json_scan(*argv: str, stdin: str | None = None) -> dict[str, Any]:
    code, out, err = cli("scan", *argv, "--skip-db", "-q", "-f", "json", stdin=stdin)
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def catalogue(doc: dict[str, Any]) -> dict[str, Any]:
    """The parts of a JSON report that must not depend on the transport."""
    return {
        "packages": sorted(
            (
                p["purl"],
                p["source_name"],
                p["source_version"],
                [loc["path"] for loc in p["locations"]],
            )
            for p in doc["packages"]
        ),
        "executables": sorted(
            (e["path"], e["mode"], e["size"], e["sha256"]) for e in doc["executables"]
        ),
        "secrets": sorted((s["path"], s["rule_id"], s["line"]) for s in doc["secrets"]),
        "unknowns": doc["unknowns"],
        "os": doc["image"]["os"],
    }


TRANSPORTS: dict[str, Callable[[Demo], tuple[list[str], str | None, dict[str, str]]]] = {
    "oci-archive": lambda d: ([f"oci-archive:{d.oci_archive}:demo"], None, {}),
    "docker-archive": lambda d: ([f"docker-archive:{d.docker_archive}"], None, {}),
    "registry": lambda d: ([d.anon, "--insecure"], None, {}),
    "registry-auth-flags": lambda d: (
        [d.private, "--insecure", "--username", "tidegate", "--password", "s3cret-pass"],
        None,
        {},
    ),
    "registry-auth-env": lambda d: (
        [d.private, "--insecure"],
        None,
        {"TIDEGATE_REGISTRY_USERNAME": "tidegate", "TIDEGATE_REGISTRY_PASSWORD": "s3cret-pass"},
    ),
    "registry-auth-stdin": lambda d: (
        [d.private, "--insecure", "--username", "tidegate", "--password-stdin"],
        "s3cret-pass\n",
        {},
    ),
    "dir": lambda d: ([f"dir:{d.rootfs}"], None, {}),
}


@pytest.mark.parametrize("kind", list(TRANSPORTS))
def test_every_transport_gives_the_same_report(
    kind: str, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, stdin, env = TRANSPORTS[kind](demo)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    baseline = json_scan(demo.oci)
    doc = json_scan(*argv, stdin=stdin)
    assert catalogue(doc) == catalogue(baseline)
    assert len(baseline["packages"]) == 6
    assert len(baseline["secrets"]) == 1
    if kind == "dir":
        assert doc["image"]["config_digest"] is None
    else:
        assert doc["image"]["config_digest"] == baseline["image"]["config_digest"]
        assert doc["image"]["config"]["uid"] == 1000


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["{private}", "--insecure", "--username", "tidegate", "--password", "wrong"], 4, "{host}"),
        (["{private}", "--insecure"], 4, "{host}"),
        (["{anon_host}/cli/demo:no-such-tag", "--insecure"], 3, "no-such-tag"),
        (["oci:{layout}:no-such-tag"], 3, "no image tagged 'no-such-tag'"),
        (["docker-archive:{tmp}/missing.tar"], 3, "does not exist"),
        (["Bad Ref!"], 2, "invalid image reference 'Bad Ref!'"),
        (["host/repo@sha256:zz"], 2, "invalid image reference"),
        (["oci:"], 2, "oci: needs a path"),
        (["{oci}", "--format", "xml"], 2, "unknown report format 'xml': choose one of {formats}"),
        (["{oci}", "--fail-on", "huge"], 2, "unknown severity 'huge'"),
        (["{oci}", "--output", "{tmp}/no/such/dir/report.json"], 6, "cannot write {tmp}/no"),
        (["{oci}", "--output", "{tmp}"], 6, "cannot write {tmp}"),
        (["{oci}", "--password", "x"], 2, "without --username"),
        (["{oci}", "--no-such-option"], 2, "unrecognized arguments: --no-such-option"),
    ],
)
def test_exit_codes_and_messages(
    argv: list[str], code: int, message: str, demo: Demo, tmp_path: Path
) -> None:
    values = {
        "private": demo.private,
        "host": demo.auth.host,
        "anon_host": demo.anon.split("/")[0],
        "layout": str(demo.layout),
        "oci": demo.oci,
        "tmp": str(tmp_path),
        "formats": ", ".join(writers()),
    }
    got, out, err = cli("scan", *(a.format(**values) for a in argv), "--skip-db", "-q")
    assert got == code, err
    assert message.format(**values) in err
    assert err.startswith("tidegate: error:")
    assert out == ""
    assert "Traceback" not in err


def test_wrong_password_names_the_registry_and_hides_the_password(demo: Demo) -> None:
    code, _, err = cli(
        "scan", demo.private, "--insecure", "--skip-db", "-q",
        "--username", "tidegate", "--password", "wrong-but-private",
    )  # fmt: skip
    assert code == ExitCode.AUTH_ERROR
    assert f"registry {demo.auth.host}" in err
    assert "credentials refused" in err
    assert "wrong-but-private" not in err


# --- hostile images -----------------------------------------------------------------------------


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def hand_made_layout(layout: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> str:
    """An OCI layout (tag "x") with one gzip layer holding `members` exactly as given."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = _blob(layout, gzip.compress(raw.getvalue(), mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(layout, json.dumps(config).encode()),
        },
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(layout, json.dumps(manifest).encode()),
                "annotations": {"org.opencontainers.image.ref.name": "x"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return f"oci:{layout}:x"


def _file(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755
    return info


ESCAPES = {
    "../../tidegate-escaped.txt": b"#!/bin/sh\nescaped\n",
    "etc/../../tidegate-up.txt": b"#!/bin/sh\nup\n",
}


def test_traversal_entries_are_unknowns_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [(_file(name), data) for name, data in ESCAPES.items()]
    members += [
        (_file("bin/tool"), b"#!/bin/sh\nok\n"),
        # An absolute name stays inside the image: tar's leading "/" is relative to its root.
        (_file("/usr/bin/abs-tool"), b"#!/bin/sh\nabs\n"),
        (_file("bin/link", tarfile.SYMTYPE, "../../../../etc/shadow"), b""),
        (_file("bin/hard", tarfile.LNKTYPE, "missing/target"), b""),
    ]
    ref = hand_made_layout(tmp_path / "layout", members)
    cwd, scratch = tmp_path / "cwd" / "deep" / "er", tmp_path / "scratch"
    cwd.mkdir(parents=True)
    scratch.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = sorted(tmp_path.rglob("*"))
    code, out, err = cli("scan", ref, "--skip-db", "-q", "-f", "json")
    assert (code, err) == (0, "")
    assert sorted(tmp_path.rglob("*")) == before
    assert not any(Path("/", name).resolve().exists() for name in ESCAPES)
    doc = json.loads(out)
    unknown_text = json.dumps(doc["unknowns"])
    for name in (*ESCAPES, "missing/target"):
        assert name in unknown_text
    paths = {e["path"] for e in doc["executables"]}
    assert paths == {"/bin/tool", "/usr/bin/abs-tool"}
    assert not Path("/usr/bin/abs-tool").exists()


def test_tampered_blob_exits_3_naming_the_digest(busybox_layout: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    shutil.copytree(busybox_layout, layout)
    code, out, _ = cli("scan", f"oci:{layout}:{images.TAG}", "--skip-db", "-q", "-f", "json")
    layers = [layer["digest"] for layer in json.loads(out)["image"]["layers"]]
    blobs = layout / "blobs" / "sha256"
    shutil.copy(blobs / layers[1][7:], blobs / layers[0][7:])
    code, out, err = cli("scan", f"oci:{layout}:{images.TAG}", "--skip-db", "-q")
    assert code == ExitCode.IMAGE_ERROR
    assert layers[0] in err
    assert out == ""


# --- output formats -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo image's report in every format, each written with --output."""
    out_dir = tmp_path_factory.mktemp("reports")
    texts = {}
    for name in writers():
        path = out_dir / f"report.{name}.json"
        code, out, err = cli("scan", demo.oci, "--skip-db", "-q", "-f", name, "-o", str(path))
        assert (code, out, err) == (0, "", "")
        texts[name] = path.read_text()
    return texts


def test_every_format_is_offered(reports: dict[str, str]) -> None:
    assert set(reports) == {"table", "json", "cyclonedx", "spdx", "sarif", "junit", "html"}


def test_json_report_matches_its_schema(reports: dict[str, str]) -> None:
    doc = json.loads(reports["json"])
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    assert doc["schema_version"]
    assert {p["name"] for p in doc["packages"]} >= {"busybox", "libcrypto3", "requests", "lodash"}
    assert doc["executables"]


def test_cyclonedx_report_is_valid_1_6(reports: dict[str, str]) -> None:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(reports["cyclonedx"])
    assert errors is None, str(errors)
    purls = {c.get("purl") for c in json.loads(reports["cyclonedx"])["components"]}
    assert "pkg:npm/lodash@4.17.15" in purls


def test_spdx_report_is_valid_2_3(reports: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(reports["spdx"])
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    assert document.creation_info.spdx_version == "SPDX-2.3"
    assert "requests" in {p.name for p in document.packages}


def test_table_report_names_what_matters(reports: dict[str, str]) -> None:
    table = reports["table"]
    for text in ("busybox", "libcrypto3", "openssl", "requests", "lodash", "Private key"):
        assert text in table
    assert "/home/app/.ssh/id_ed25519" in table


@pytest.mark.parametrize("name", ["table", "json", "cyclonedx", "spdx"])
def test_no_output_contains_the_secret(reports: dict[str, str], demo: Demo, name: str) -> None:
    text = reports[name]
    assert demo.key.strip() not in text
    leaked = {f for f in demo.key_fragments() if f in text}
    assert not leaked


def test_stdout_and_output_file_agree(demo: Demo, tmp_path: Path) -> None:
    _, stdout, _ = cli("scan", demo.oci, "--skip-db", "-q", "-f", "spdx")
    path = tmp_path / "sbom.json"
    assert cli("scan", demo.oci, "--skip-db", "-q", "-f", "spdx", "-o", str(path))[0] == 0
    document, from_file = json.loads(stdout), json.loads(path.read_text())
    document.pop("creationInfo")
    from_file.pop("creationInfo")
    assert {p["name"] for p in document["packages"]} == {p["name"] for p in from_file["packages"]}


# --- progress -------------------------------------------------------------------------------------


def test_no_progress_when_stderr_is_not_a_terminal(demo: Demo) -> None:
    code, out, err = cli("scan", demo.oci, "--skip-db")
    assert (code, err) == (0, "")
    assert "busybox" in out


def test_only_warnings_on_stderr_when_piped(demo: Demo) -> None:
    code, _, err = cli("scan", demo.oci)  # no DB in the isolated data dir: a warning
    assert code == 0
    assert err.startswith("tidegate: warning: no vulnerability database")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "env", "drawn"),
    [([], {}, True), (["--quiet"], {}, False), (["-q"], {}, False), ([], {"CI": "true"}, False)],
)
def test_progress_on_a_terminal(
    demo: Demo,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    env: dict[str, str],
    drawn: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tty = TTY()
    code, out, err = cli("scan", demo.oci, "--skip-db", *extra, stderr=tty)
    assert code == 0
    assert "libcrypto3" in out
    assert bool(err) is drawn


# --- the job `make run` does ----------------------------------------------------------------------


def test_make_run_job(tmp_path: Path) -> None:
    env = {**os.environ, "TIDEGATE_DATA_DIR": str(tmp_path / "data")}
    env.pop("CI", None)
    bin_dir = Path(sys.executable).parent
    tidegate = bin_dir / "tidegate"
    if not tidegate.exists():
        pytest.skip(f"{tidegate} is not installed (make setup)")
    subprocess.run(
        [sys.executable, "-m", "tidegate.demo", str(tmp_path / "demo")],
        check=True,
        capture_output=True,
        env=env,
    )
    proc = subprocess.run(
        [str(tidegate), "scan", f"oci:{tmp_path}/demo/layout:demo", "--skip-db"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    table = proc.stdout
    for text in ("busybox", "libcrypto3", "openssl", "requests", "lodash", "Private key"):
        assert text in table
    assert "uid 1000" in table


@pytest.mark.parametrize(
    ("compiled", "wants_compiler", "program"),
    [
        ("yes", True, "bin/tidegate-oci-hook"),
        ("auto", True, "bin/tidegate-oci-hook"),
        ("no", False, None),
    ],
)
def test_install_hook_writes_the_compiled_or_the_python_hook(
    tmp_path: Path, compiled: str, wants_compiler: bool, program: str | None
) -> None:
    if wants_compiler and shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler (apt-get install gcc)")
    hooks, state = tmp_path / "hooks.d", tmp_path / "state"
    out, err = io.StringIO(), io.StringIO()
    argv = ["enforcer", "install-hook", "--hooks-dir", str(hooks), "--state-dir", str(state)]
    assert main([*argv, "--compiled", compiled], out, err) == ExitCode.OK, err.getvalue()
    doc = json.loads((hooks / "tidegate-enforcer.json").read_text())
    assert doc["stages"] == ["createRuntime"]
    hook = doc["hook"]
    assert hook["args"][0] == hook["path"]
    assert hook["args"][-4:] == [
        "--socket",
        str((state / "enforcer.sock").resolve()),
        "--state-dir",
        str(state.resolve()),
    ]
    if program is None:
        assert hook["args"][:3] == [sys.executable, "-I", "-S"]
        assert hook["args"][3].endswith("tidegate/enforcer/hook.py")
        return
    binary = Path(hook["path"])
    assert binary == (state / program).resolve()
    assert os.access(binary, os.X_OK)
    assert binary.parent.stat().st_mode & 0o077 == 0  # run as root: nobody else may swap it
    # no enforcer listening and no fail-mode file: the compiled hook fails open, saying why
    run = subprocess.run(
        hook["args"], input=b'{"id": "c1"}', capture_output=True, timeout=10, check=False
    )
    assert run.returncode == 0
    assert b"enforcer" in run.stderr
