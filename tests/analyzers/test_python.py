"""Python distributions: hand-written metadata documents shaped like real ones, and this venv."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from util import LAYER, file_entry, run_analyzer

from tidegate.analyzers.interface import AnalyzerError
from tidegate.analyzers.python import PythonAnalyzer, normalise_name
from tidegate.core.models import Location, PackageType

FIXTURES = Path(__file__).parent / "fixtures_lang" / "python"
SITE = "/usr/local/lib/python3.11/site-packages"


@pytest.mark.parametrize(
    ("fixture", "path", "name", "version", "purl", "licenses"),
    [
        (
            "requests.METADATA",
            f"{SITE}/requests-2.31.0.dist-info/METADATA",
            "requests",
            "2.31.0",
            "pkg:pypi/requests@2.31.0",
            ("Apache 2.0",),
        ),
        (
            "ruamel.METADATA",
            "/opt/venv/lib/python3.12/site-packages/ruamel.yaml-0.18.6.dist-info/METADATA",
            "ruamel.yaml",
            "0.18.6",
            "pkg:pypi/ruamel-yaml@0.18.6",
            ("MIT",),
        ),
        (
            "zope.PKG-INFO",
            "/usr/lib/python3/dist-packages/Zope_Interface-5.5.2.egg-info/PKG-INFO",
            "Zope_Interface",
            "5.5.2",
            "pkg:pypi/zope-interface@5.5.2",
            ("ZPL 2.1",),
        ),
        (
            "six.egg-info",
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info",
            "six",
            "1.16.0",
            "pkg:pypi/six@1.16.0",
            ("MIT License",),
        ),
        (
            "longlicense.METADATA",
            "/app/.venv/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA",
            "numpy",
            "1.26.4+local.1",
            "pkg:pypi/numpy@1.26.4%2Blocal.1",
            ("BSD License",),
        ),
    ],
)
def test_metadata_documents(
    fixture: str, path: str, name: str, version: str, purl: str, licenses: tuple[str, ...]
) -> None:
    findings = run_analyzer(
        PythonAnalyzer(), path, (FIXTURES / fixture).read_bytes(), chunk_size=64
    )
    assert findings.unknowns == ()
    (package,) = findings.packages
    assert (package.name, package.version, package.purl) == (name, version, purl)
    assert package.licenses == licenses
    assert package.type is PackageType.PYPI
    assert package.found_by == "python"
    assert package.locations == (Location(path, LAYER),)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (f"{SITE}/pip-23.0.dist-info/METADATA", True),
        ("/usr/lib/python3/dist-packages/apt-2.6.0.egg-info", True),
        ("/usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO", True),
        ("/home/u/src/proj/build/lib/x.dist-info/METADATA", True),
        (f"{SITE}/pip-23.0.dist-info/RECORD", False),
        (f"{SITE}/pip-23.0.dist-info/LICENSE", False),
        (f"{SITE}/foo.egg-info/SOURCES.txt", False),
        ("/usr/share/doc/METADATA", False),
        (f"{SITE}/pip/__init__.py", False),
    ],
)
def test_wants(path: str, wanted: bool) -> None:
    assert PythonAnalyzer().wants(file_entry(path, b"")) is wanted


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "without a Name and a Version"),
        (b"Metadata-Version: 2.1\nName: foo\n", "without a Name and a Version"),
        (b"Metadata-Version: 2.1\nVersion: 1.0\n", "without a Name and a Version"),
        (b"garbage first line\nName: x\nVersion: 1\n", "headers end early"),
        (b"Name: foo bar\nVersion: 1.0\n", "not a valid distribution name"),
        (b"Name: -foo\nVersion: 1.0\n", "not a valid distribution name"),
        (b"Name: foo\nVersion: 1.0 beta\n", "not a valid version"),
        (b"\x7fELF\x00\x00Name: foo\n", "binary data"),
    ],
)
def test_malformed_metadata_is_an_error_naming_the_file(data: bytes, message: str) -> None:
    path = f"{SITE}/foo-1.0.dist-info/METADATA"
    with pytest.raises(AnalyzerError, match=message) as caught:
        run_analyzer(PythonAnalyzer(), path, data)
    assert path in str(caught.value)


def test_oversized_metadata_is_an_unknown() -> None:
    analyzer = PythonAnalyzer()
    data = b"Name: x\nVersion: 1\n\n" + b"x" * (analyzer.max_size + 1)
    findings = run_analyzer(analyzer, f"{SITE}/x-1.dist-info/METADATA", data, chunk_size=1 << 20)
    assert findings.packages == ()
    assert "limit" in findings.unknowns[0].reason


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Foo_Bar", "foo-bar"), ("zope.interface", "zope-interface"), ("a-_.b", "a-b"), ("x", "x")],
)
def test_pep503_normalisation(raw: str, normalised: str) -> None:
    assert normalise_name(raw) == normalised


@pytest.mark.parametrize("distribution", ["pydantic", "httpx", "packageurl-python", "PyYAML"])
def test_real_installed_distributions_agree_with_importlib(distribution: str) -> None:
    dist = importlib.metadata.distribution(distribution)
    (record,) = [
        f for f in dist.files or [] if f.name == "METADATA" and f.parent.name.endswith(".dist-info")
    ]
    metadata_file = Path(str(record.locate()))
    path = f"/venv/site-packages/{metadata_file.parent.name}/METADATA"
    findings = run_analyzer(PythonAnalyzer(), path, metadata_file.read_bytes())
    (package,) = findings.packages
    assert package.name == dist.metadata["Name"]
    assert package.version == dist.version
    assert package.purl == f"pkg:pypi/{normalise_name(dist.metadata['Name'])}@{dist.version}"
