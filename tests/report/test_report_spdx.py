"""SPDX 2.3: valid per spdx-tools' own validator, read back by its own parser."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from report_results import FIXED_ID, debian_result, minimal_result
from spdx_tools.spdx.model.relationship import RelationshipType
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tidegate.core.errors import ReportError
from tidegate.core.models import Location, ScanResult
from tidegate.report import ReportOptions, get_writer
from tidegate.report.spdx import build_document

OPTIONS = ReportOptions(document_id=FIXED_ID, tool_version="0.0.0-test")


def _write(result: ScanResult) -> str:
    out = io.StringIO()
    get_writer("spdx").write(result, out, OPTIONS)
    return out.getvalue()


def _with_licenses(licenses: tuple[str, ...]) -> dict[str, Any]:
    result = debian_result()
    zlib = next(p for p in result.catalogue.packages if p.name == "zlib1g")
    result = replace(
        result,
        catalogue=replace(result.catalogue, packages=(replace(zlib, licenses=licenses),)),
    )
    packages = json.loads(_write(result))["packages"]
    found: dict[str, Any] = next(p for p in packages if p["name"] == "zlib1g")
    return found


@pytest.mark.parametrize("result", [debian_result(), minimal_result()], ids=["debian", "minimal"])
def test_document_model_is_valid(result: ScanResult) -> None:
    assert validate_full_spdx_document(build_document(result, OPTIONS)) == []


@pytest.mark.parametrize("result", [debian_result(), minimal_result()], ids=["debian", "minimal"])
def test_written_document_parses_back_valid(result: ScanResult, tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(_write(result), encoding="utf-8")
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    assert document.creation_info.creators[0].name == "tidegate-0.0.0-test"
    assert document.creation_info.created.isoformat() == "2026-03-01T12:30:05"
    assert str(FIXED_ID) in document.creation_info.document_namespace


def test_document_describes_the_image_which_contains_everything() -> None:
    document = build_document(debian_result(), OPTIONS)
    image, *rest = document.packages
    assert image.version == "sha256:" + "d" * 64
    assert image.external_references[0].locator.startswith("pkg:oci/api@sha256:")
    describes = [
        r for r in document.relationships if r.relationship_type is RelationshipType.DESCRIBES
    ]
    assert [(r.spdx_element_id, r.related_spdx_element_id) for r in describes] == [
        ("SPDXRef-DOCUMENT", image.spdx_id)
    ]
    contained = {
        r.related_spdx_element_id
        for r in document.relationships
        if r.relationship_type is RelationshipType.CONTAINS and r.spdx_element_id == image.spdx_id
    }
    assert contained == {p.spdx_id for p in rest}
    assert {p.name for p in rest} == {
        "base-files",
        "libssl3",
        "tzdata",
        "zlib1g",
        "requests",
        "debian",
    }


def test_package_has_purl_and_source() -> None:
    libssl = next(
        p for p in json.loads(_write(debian_result()))["packages"] if p["name"] == "libssl3"
    )
    assert libssl["versionInfo"] == "3.0.11-1~deb12u1"
    assert libssl["downloadLocation"] == "NOASSERTION"
    assert libssl["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE_MANAGER",
            "referenceLocator": libssl["externalRefs"][0]["referenceLocator"],
            "referenceType": "purl",
        }
    ]
    assert libssl["externalRefs"][0]["referenceLocator"].startswith("pkg:deb/debian/libssl3@")
    assert libssl["sourceInfo"] == "built from source package openssl 3.0.11-1~deb12u1"


@pytest.mark.parametrize(
    ("licenses", "declared", "comment"),
    [
        (("MIT",), "MIT", None),
        (("GPL-2+",), "GPL-2.0-or-later", None),
        (("MIT", "Apache-2.0"), "Apache-2.0 AND MIT", None),
        (("Expat", "LGPL-2.1+"), "MIT AND LGPL-2.1-or-later", None),
        (("GPL-2.0-only OR MIT",), "GPL-2.0-only OR MIT", None),
        (("public-domain",), "NOASSERTION", "declared by the package: public-domain"),
        (
            ("GPL-2+", "public-domain"),
            "NOASSERTION",
            "declared by the package: GPL-2+, public-domain",
        ),
        (("(broken",), "NOASSERTION", "declared by the package: (broken"),
        ((), "NOASSERTION", None),
        (("", "  "), "NOASSERTION", None),
    ],
)
def test_declared_license(licenses: tuple[str, ...], declared: str, comment: str | None) -> None:
    package = _with_licenses(licenses)
    assert package["licenseDeclared"] == declared
    assert package.get("licenseComments") == comment


def test_copies_of_one_package_get_distinct_spdx_ids() -> None:
    result = debian_result()
    requests = next(p for p in result.catalogue.packages if p.name == "requests")
    copy = replace(requests, locations=(Location("/opt/tool/requests-2.31.0.dist-info/METADATA"),))
    result = replace(result, catalogue=replace(result.catalogue, packages=(requests, copy)))
    document = build_document(result, OPTIONS)
    ids = [p.spdx_id for p in document.packages if p.name == "requests"]
    assert len(set(ids)) == 2
    assert validate_full_spdx_document(document) == []


def test_hostile_names_still_make_valid_ids_and_namespace() -> None:
    result = debian_result()
    odd = replace(result.catalogue.packages[0], name="we!rd name/ü", version="1.0 beta")
    result = replace(
        result,
        image=replace(result.image, reference="dir:/tmp/my rootfs?x#y", repository=None),
        catalogue=replace(result.catalogue, packages=(odd,)),
        findings=(),
    )
    assert validate_full_spdx_document(build_document(result, OPTIONS)) == []


def test_bad_purl_is_a_report_error_naming_the_image() -> None:
    result = debian_result()
    bad = replace(result.catalogue.packages[0], purl="not a purl")
    result = replace(result, catalogue=replace(result.catalogue, packages=(bad,)), findings=())
    with pytest.raises(ReportError, match=r"registry.example.com/shop/api:1.4.2.*not a purl"):
        _write(result)
