"""Squash analysed layers into what the final filesystem shows (Trivy calls this the applier).

The overlay rules themselves live in `tidegate.image.squash`; this module feeds it each layer's
findings, grouped by path (several analyzers may report on one file), and its structure.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidegate.core.models import FileFindings, Unknown
from tidegate.image.squash import LayerPaths, squash
from tidegate.scan.layers import LayerAnalysis


def visible_findings(layers: Sequence[LayerAnalysis]) -> list[FileFindings]:
    """The findings of `layers` (bottom first) that survive in the squashed filesystem, in
    layer order and, within a layer, in the order they were found."""
    per_layer: list[LayerPaths[list[FileFindings]]] = []
    for layer in layers:
        by_path: dict[str, list[FileFindings]] = {}
        for found in layer.findings:
            by_path.setdefault(found.path, []).append(found)
        per_layer.append(
            LayerPaths(
                by_path,
                frozenset(layer.paths),
                frozenset(layer.non_dirs),
                frozenset(layer.whiteouts),
                frozenset(layer.opaques),
            )
        )
    kept = {id(f) for _, group in squash(per_layer).values() for f in group}
    return [f for layer in layers for f in layer.findings if id(f) in kept]


def layer_unknowns(layers: Sequence[LayerAnalysis]) -> list[Unknown]:
    """Unknowns of the layer readers: kept whatever the layers above say (they are about input)."""
    return [u for layer in layers for u in layer.unknowns]
