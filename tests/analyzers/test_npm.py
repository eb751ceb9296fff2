"""npm: installed package.json files as npm, yarn and pnpm lay them out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from util import LAYER, file_entry, run_analyzer

from tidegate.analyzers.interface import AnalyzerError
from tidegate.analyzers.npm import NpmAnalyzer
from tidegate.core.models import Location, PackageType

APP = "/usr/src/app/node_modules"

# Trimmed from what npm 10 writes into node_modules (underscore fields of older npm included).
_EXPRESS = {
    "name": "express",
    "description": "Fast, unopinionated, minimalist web framework",
    "version": "4.18.2",
    "author": "TJ Holowaychuk <tj@vision-media.ca>",
    "license": "MIT",
    "repository": "expressjs/express",
    "dependencies": {"accepts": "~1.3.8", "body-parser": "1.20.1"},
    "engines": {"node": ">= 0.10.0"},
    "_resolved": "https://registry.npmjs.org/express/-/express-4.18.2.tgz",
}


@pytest.mark.parametrize(
    ("path", "manifest", "name", "version", "purl", "licenses"),
    [
        (
            f"{APP}/express/package.json",
            _EXPRESS,
            "express",
            "4.18.2",
            "pkg:npm/express@4.18.2",
            ("MIT",),
        ),
        (
            f"{APP}/@babel/core/package.json",
            {"name": "@babel/core", "version": "7.23.2", "license": {"type": "MIT", "url": "x"}},
            "@babel/core",
            "7.23.2",
            "pkg:npm/%40babel/core@7.23.2",
            ("MIT",),
        ),
        (
            f"{APP}/.pnpm/lodash@4.17.21/node_modules/lodash/package.json",
            {
                "name": "lodash",
                "version": "4.17.21",
                "licenses": [{"type": "MIT"}, {"type": "GPL-2.0"}],
            },
            "lodash",
            "4.17.21",
            "pkg:npm/lodash@4.17.21",
            ("MIT", "GPL-2.0"),
        ),
        (
            f"{APP}/express/node_modules/debug/package.json",
            {"name": "debug", "version": "2.6.9", "license": "(MIT OR Apache-2.0)"},
            "debug",
            "2.6.9",
            "pkg:npm/debug@2.6.9",
            ("(MIT OR Apache-2.0)",),
        ),
        (
            # npm aliases ("npm i my-alias@npm:left-pad"): the real package is what is installed.
            f"{APP}/my-alias/package.json",
            {"name": "left-pad", "version": "1.3.0+build.5"},
            "left-pad",
            "1.3.0+build.5",
            "pkg:npm/left-pad@1.3.0%2Bbuild.5",
            (),
        ),
    ],
)
def test_installed_packages(
    path: str,
    manifest: dict[str, Any],
    name: str,
    version: str,
    purl: str,
    licenses: tuple[str, ...],
) -> None:
    data = json.dumps(manifest, indent=2).encode()
    findings = run_analyzer(NpmAnalyzer(), path, data, chunk_size=50)
    (package,) = findings.packages
    assert (package.name, package.version, package.purl, package.licenses) == (
        name,
        version,
        purl,
        licenses,
    )
    assert package.type is PackageType.NPM
    assert package.found_by == "npm"
    assert package.locations == (Location(path, LAYER),)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (f"{APP}/express/package.json", True),
        (f"{APP}/@types/node/package.json", True),
        ("/usr/lib/node_modules/npm/package.json", True),
        ("/usr/lib/node_modules/npm/node_modules/semver/package.json", True),
        ("/usr/src/app/package.json", False),  # the application itself
        ("/usr/src/app/package-lock.json", False),
        (f"{APP}/.package-lock.json", False),
        (f"{APP}/express/lib/package.json", False),  # a sub-directory marker ({"type": ...})
        (f"{APP}/@babel/package.json", False),
        (f"{APP}/.bin/package.json", False),
        (f"{APP}/@scope/pkg/dist/package.json", False),
    ],
)
def test_wants(path: str, wanted: bool) -> None:
    assert NpmAnalyzer().wants(file_entry(path, b"{}")) is wanted


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"version": "1.0.0"}', "has no name"),
        (b'{"name": 5, "version": "1.0.0"}', "has no name"),
        (b'{"name": "x"}', "has no version"),
        (b'{"name": "x", "version": {"v": 1}}', "has no version"),
        (b'{"name": "a/b/c", "version": "1.0.0"}', "not a valid npm package name"),
    ],
)
def test_bad_manifests_are_errors_naming_the_file(data: bytes, message: str) -> None:
    path = f"{APP}/x/package.json"
    with pytest.raises(AnalyzerError, match=message) as caught:
        run_analyzer(NpmAnalyzer(), path, data)
    assert path in str(caught.value)


def test_utf8_bom_is_accepted() -> None:
    data = b"\xef\xbb\xbf" + json.dumps({"name": "bom", "version": "1.0.0"}).encode()
    findings = run_analyzer(NpmAnalyzer(), f"{APP}/bom/package.json", data)
    assert [p.name for p in findings.packages] == ["bom"]
