"""SPDX 2.3 JSON: a document that DESCRIBES the image, which CONTAINS its OS and its packages.
Built and validated with spdx-tools, the SPDX project's own library.

Licenses are declared only when they are valid SPDX expressions (after mapping the short names
Debian copyright files use); anything else is NOASSERTION with the original text in the
package's license comment, so the document stays valid and nothing is lost.
"""

from __future__ import annotations

from datetime import UTC
from typing import TextIO

from license_expression import (  # no py.typed
    ExpressionError,
    LicenseExpression,
)
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    PackagePurpose,
)
from spdx_tools.spdx.model.package import Package as SpdxPackage
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from tidegate.core.errors import ReportError
from tidegate.core.models import OSInfo, Package, ScanResult
from tidegate.core.policy import Verdict
from tidegate.report.common import (
    document_id,
    image_name,
    image_purl,
    image_version,
    sorted_packages,
    spdx_id,
)
from tidegate.report.interface import ReportOptions

_DEBIAN_LICENSES = {
    "GPL-1": "GPL-1.0-only",
    "GPL-1+": "GPL-1.0-or-later",
    "GPL-2": "GPL-2.0-only",
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-3": "GPL-3.0-only",
    "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2": "LGPL-2.0-only",
    "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3": "LGPL-3.0-only",
    "LGPL-3+": "LGPL-3.0-or-later",
    "AGPL-3": "AGPL-3.0-only",
    "AGPL-3+": "AGPL-3.0-or-later",
    "Expat": "MIT",
    "Apache-2": "Apache-2.0",
    "Artistic": "Artistic-1.0-Perl",
    "GFDL-1.2+": "GFDL-1.2-or-later",
    "GFDL-1.3+": "GFDL-1.3-or-later",
}
"""DEP-5 short names (https://dep-team.pages.debian.net/deps/dep5/) to SPDX identifiers."""


class SpdxWriter:
    """SPDX 2.3 JSON SBOM."""

    name = "spdx"
    description = "SPDX 2.3 JSON SBOM"
    media_type = "application/spdx+json"
    file_extension = ".spdx.json"

    def write(
        self,
        result: ScanResult,
        out: TextIO,
        options: ReportOptions,
        verdict: Verdict | None = None,
    ) -> None:
        del verdict  # an SBOM describes what is in the image, not the gate's decision on it
        try:
            document = build_document(result, options)
            write_document_to_stream(document, out, validate=True)
        except (ValueError, TypeError) as exc:
            # spdx-tools reports invalid documents as ValueError and bad field types as TypeError
            raise ReportError(
                f"cannot write an SPDX document for {result.image.reference}: {exc}"
            ) from exc
        out.write("\n")


def build_document(result: ScanResult, options: ReportOptions) -> Document:
    """The spdx-tools `Document` of `result` (serialised and validated by `SpdxWriter`)."""
    image_package = _image_package(result)
    packages = [_package(p) for p in sorted_packages(result)]
    if result.catalogue.os is not None:
        packages.append(_os_package(result.catalogue.os))
    uid = document_id(result, options.document_id)
    name = result.image.reference
    creation = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=name,
        document_namespace=f"https://tidegate.dev/spdx/{_namespace_name(name)}-{uid}",
        creators=[Actor(ActorType.TOOL, f"tidegate-{options.tool_version}")],
        created=result.scanned_at.astimezone(UTC).replace(microsecond=0),
    )
    relationships = [
        Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, image_package.spdx_id)
    ]
    relationships.extend(
        Relationship(image_package.spdx_id, RelationshipType.CONTAINS, p.spdx_id) for p in packages
    )
    return Document(
        creation_info=creation,
        packages=[image_package, *packages],
        relationships=relationships,
    )


def _image_package(result: ScanResult) -> SpdxPackage:
    image = result.image
    purl = image_purl(result)
    refs = [_purl_ref(purl)] if purl else []
    comment = f"transport {image.transport}"
    if image.config_digest:
        comment += f"; image ID {image.config_digest}"
    return SpdxPackage(
        spdx_id=spdx_id("Image", image_name(result), image_version(result)),
        name=image_name(result),
        version=image_version(result),
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        external_references=refs,
        primary_package_purpose=PackagePurpose.CONTAINER,
        comment=comment,
    )


def _os_package(os_info: OSInfo) -> SpdxPackage:
    return SpdxPackage(
        spdx_id=spdx_id("OperatingSystem", os_info.id, os_info.version_id),
        name=os_info.id,
        version=os_info.version_id or None,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        description=os_info.pretty_name or None,
        primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
    )


def _package(package: Package) -> SpdxPackage:
    declared, comment = _declared_license(package.licenses)
    path = package.locations[0].path if package.locations else ""
    return SpdxPackage(
        spdx_id=spdx_id("Package", package.type.value, package.name, package.version, path),
        name=package.name,
        version=package.version,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        source_info=_source_info(package),
        license_concluded=SpdxNoAssertion(),
        license_declared=declared,
        license_comment=comment,
        copyright_text=SpdxNoAssertion(),
        external_references=[_purl_ref(package.purl)] if package.purl else [],
        primary_package_purpose=PackagePurpose.LIBRARY,
        comment=f"found by {package.found_by} at {path}" if path else None,
    )


def _source_info(package: Package) -> str | None:
    if not package.source_name:
        return None
    version = package.source_version or package.version
    return f"built from source package {package.source_name} {version}"


def _purl_ref(purl: str) -> ExternalPackageRef:
    return ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)


def _declared_license(
    licenses: tuple[str, ...],
) -> tuple[LicenseExpression | SpdxNoAssertion, str | None]:
    """All licenses ANDed as one SPDX expression, or NOASSERTION and the text as a comment."""
    names = sorted({name.strip() for name in licenses if name.strip()})
    if not names:
        return SpdxNoAssertion(), None
    text = " AND ".join(f"({_DEBIAN_LICENSES.get(n, n)})" for n in names)
    try:
        expression = spdx_licensing.parse(text, validate=True, strict=True)
    except ExpressionError:
        return SpdxNoAssertion(), "declared by the package: " + ", ".join(names)
    return expression, None


def _namespace_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-_" else "-" for c in name).strip("-") or "image"
