"""Analyzers: one module per kind of file; `default_analyzers()` is the explicit registry.

No import-time registration: the list below is the whole set, in the order they are asked.
"""

from __future__ import annotations

from tidegate.analyzers.apk import ApkAnalyzer
from tidegate.analyzers.dpkg import DpkgAnalyzer
from tidegate.analyzers.executables import ExecutablesAnalyzer
from tidegate.analyzers.golang import GoBinaryAnalyzer
from tidegate.analyzers.interface import Analyzer, AnalyzerError, BufferedAnalyzer, FileConsumer
from tidegate.analyzers.java import JavaAnalyzer
from tidegate.analyzers.npm import NpmAnalyzer
from tidegate.analyzers.os_release import OSReleaseAnalyzer
from tidegate.analyzers.passwd import PasswdAnalyzer
from tidegate.analyzers.python import PythonAnalyzer
from tidegate.analyzers.rpm import RpmAnalyzer
from tidegate.analyzers.secrets import SecretsAnalyzer

__all__ = [
    "Analyzer",
    "AnalyzerError",
    "BufferedAnalyzer",
    "FileConsumer",
    "default_analyzers",
]


def default_analyzers() -> list[Analyzer]:
    """A fresh instance of every analyzer Tidegate ships."""
    return [
        OSReleaseAnalyzer(),
        PasswdAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        PythonAnalyzer(),
        NpmAnalyzer(),
        JavaAnalyzer(),
        GoBinaryAnalyzer(),
        ExecutablesAnalyzer(),
        SecretsAnalyzer(),
    ]
