"""Tidegate's JSON document: schema, content and the schema export."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import jsonschema
import pydantic
import pytest
from report_results import APP_LAYER, debian_result, minimal_result

from tidegate.core.models import Executable, Location, ScanResult
from tidegate.report import ReportOptions, get_writer
from tidegate.report.json_doc import ReportDocument, json_schema, main


def _doc(result: ScanResult, options: ReportOptions | None = None) -> dict[str, Any]:
    out = io.StringIO()
    get_writer("json").write(result, out, options or ReportOptions())
    loaded: dict[str, Any] = json.loads(out.getvalue())
    return loaded


@pytest.mark.parametrize("result", [debian_result(), minimal_result()], ids=["debian", "minimal"])
def test_documents_validate_against_the_exported_schema(result: ScanResult) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(_doc(result))


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("schema_version",), "2.0"),
        (("findings", 0, "severity"), "severe"),
        (("packages", 0, "name"), None),
        (("image", "config", "uid"), "root"),
    ],
)
def test_schema_rejects_a_broken_document(path: tuple[str | int, ...], bad_value: Any) -> None:
    doc = _doc(debian_result())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())


def test_schema_rejects_unknown_fields() -> None:
    doc = _doc(debian_result())
    doc["image"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())


def test_document_reads_back_into_its_model() -> None:
    text = json.dumps(_doc(debian_result()))
    document = ReportDocument.model_validate_json(text)
    assert document.schema_version == "1.1"
    bumped = text.replace('"schema_version": "1.1"', '"schema_version": "9"')
    with pytest.raises(pydantic.ValidationError):
        ReportDocument.model_validate_json(bumped)


def test_packages_are_sorted_and_carry_their_facts() -> None:
    packages = _doc(debian_result())["packages"]
    assert [(p["type"], p["name"]) for p in packages] == [
        ("deb", "base-files"),
        ("deb", "libssl3"),
        ("deb", "tzdata"),
        ("deb", "zlib1g"),
        ("pypi", "requests"),
    ]
    libssl = packages[1]
    assert libssl["source_name"] == "openssl"
    assert libssl["source_version"] == "3.0.11-1~deb12u1"
    assert libssl["arch"] == "amd64"
    assert libssl["locations"] == [{"path": "/var/lib/dpkg/status", "layer": "sha256:" + "1" * 64}]
    assert libssl["found_by"] == "dpkg"
    assert libssl["purl"].startswith("pkg:deb/debian/libssl3@")


def test_findings_point_at_listed_packages_most_severe_first() -> None:
    doc = _doc(debian_result())
    refs = {p["ref"] for p in doc["packages"]}
    assert [f["id"] for f in doc["findings"]] == [
        "CVE-2023-45853",
        "CVE-2023-5678",
        "GHSA-j8r2-6x86-q33q",
    ]
    assert all(f["package"]["ref"] in refs for f in doc["findings"])
    fixed = doc["findings"][1]
    assert fixed["status"] == "fixed"
    assert fixed["fixed_versions"] == ["3.0.11-1~deb12u2"]
    assert fixed["evidence"][0]["matched_on"] == "source"
    assert fixed["evidence"][0]["searched_name"] == "openssl"


@pytest.mark.parametrize(
    ("mode", "text", "setuid", "setgid"),
    [(0o755, "0755", False, False), (0o4755, "4755", True, False), (0o2711, "2711", False, True)],
)
def test_executable_modes_are_octal_strings(
    mode: int, text: str, setuid: bool, setgid: bool
) -> None:
    result = debian_result()
    exe = Executable("/usr/bin/x", mode, 10, "0" * 64, layer=APP_LAYER)
    result = replace(result, catalogue=replace(result.catalogue, executables=(exe,)))
    (doc_exe,) = _doc(result)["executables"]
    assert (doc_exe["mode"], doc_exe["setuid"], doc_exe["setgid"]) == (text, setuid, setgid)


def test_executables_can_be_left_out() -> None:
    assert len(_doc(debian_result())["executables"]) == 3
    assert _doc(debian_result(), ReportOptions(include_executables=False))["executables"] is None


def test_duplicate_purls_get_distinct_refs() -> None:
    result = debian_result()
    requests = next(p for p in result.catalogue.packages if p.name == "requests")
    copy = replace(requests, locations=(Location("/opt/other/requests-2.31.0.dist-info/METADATA"),))
    result = replace(result, catalogue=replace(result.catalogue, packages=(requests, copy)))
    refs = [p["ref"] for p in _doc(result)["packages"]]
    assert len(set(refs)) == 2


def test_secrets_and_unknowns_are_reported_without_secret_values() -> None:
    doc = _doc(debian_result())
    (secret,) = doc["secrets"]
    assert secret == {
        "path": "/app/config/settings.ini",
        "rule_id": "aws-access-key-id",
        "title": "AWS Access Key ID",
        "severity": "critical",
        "line": 7,
        "layer": APP_LAYER,
        "redacted": "AKIA****************",
    }
    (unknown,) = doc["unknowns"]
    assert unknown["analyzer"] == "python-dist"
    assert "missing Name" in unknown["reason"]


def test_schema_command_prints_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidegate.report.json_doc", "--schema"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == json_schema()


def test_schema_command_refuses_other_arguments() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["--scheme"], out, err) == 2
    assert out.getvalue() == ""
    assert "usage" in err.getvalue()
