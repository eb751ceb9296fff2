"""Squash analysed layers into what the final filesystem shows (Trivy calls this the applier).

A finding at path P of layer i is visible unless a layer above it
- has an entry at P itself (a new file, directory or link replaces it),
- whites out P or one of its parent directories,
- marks a parent directory of P opaque, or
- puts a non-directory (file, symlink) where a parent directory of P was.
Layers are walked top-down, so each finding is checked once against what is above it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tidegate.core.models import FileFindings, Unknown
from tidegate.scan.layers import LayerAnalysis


def visible_findings(layers: Sequence[LayerAnalysis]) -> list[FileFindings]:
    """The findings of `layers` (bottom first) that survive in the squashed filesystem."""
    above_paths: set[str] = set()
    above_cuts: set[str] = set()
    """Paths under which nothing from lower layers survives: whiteouts, opaques, non-dirs."""
    visible: list[FileFindings] = []
    for layer in reversed(layers):
        for found in layer.findings:
            if found.path not in above_paths and not _cut(found.path, above_cuts):
                visible.append(found)
        above_paths.update(layer.paths)
        above_cuts.update(layer.whiteouts)
        above_cuts.update(layer.non_dirs)
        above_cuts.update(layer.opaques)
        # A whiteout hides the path itself too, not only what is below it.
        above_paths.update(layer.whiteouts)
    visible.reverse()
    return visible


def layer_unknowns(layers: Sequence[LayerAnalysis]) -> list[Unknown]:
    """Unknowns of the layer readers: kept whatever the layers above say (they are about input)."""
    return [u for layer in layers for u in layer.unknowns]


def _cut(path: str, cuts: set[str]) -> bool:
    if not cuts:
        return False
    return any(parent in cuts for parent in _parents(path))


def _parents(path: str) -> Iterator[str]:
    end = path.rfind("/")
    while end > 0:
        yield path[:end]
        end = path.rfind("/", 0, end)
