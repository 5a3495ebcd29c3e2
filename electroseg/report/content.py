"""The content of a report, gathered from the products a run left in its folder.

A report is built from files only (metrics.json, comparison.json, cycling.json, *.png,
config.yaml, provenance.json), so ``electroseg report DIR`` can rebuild it at any time.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

logger = logging.getLogger(__name__)

# Long lists (per-depth profiles, histograms) are shown as figures, not table cells.
_MAX_LIST_IN_CELL = 4


@dataclass(frozen=True)
class Table:
    """A captioned table of already formatted cells."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    """One report section: text paragraphs, tables, figures (PNG paths) and preformatted text."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Path, ...] = ()
    preformatted: str = ""


@dataclass(frozen=True)
class Report:
    """A whole report: a title and its sections, in order."""

    title: str
    root: Path
    sections: tuple[Section, ...] = field(default_factory=tuple)


def format_value(value: Any) -> str:
    """Cell text: 4 significant digits for floats, '—' for missing/NaN, lists joined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Scalar leaves of nested dicts as ``{"a.b.c": value}``; long lists are left out.

    Examples
    --------
    >>> flatten({"pba": {"pooled": 0.5, "per_depth": [0.1] * 9}, "n": 3})
    {'pba.pooled': 0.5, 'n': 3}
    """
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(tree, (list, tuple)):
        if len(tree) <= _MAX_LIST_IN_CELL and all(not isinstance(v, (dict, list)) for v in tree):
            out[prefix] = list(tree)
    else:
        out[prefix] = tree
    return out


def read_json(path: Path) -> dict:
    """Load a JSON product; a broken file is skipped with a warning rather than ending the report."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        logger.warning("skipping %s: %s", path, err)
        return {}


def side_by_side(named: dict[str, dict], caption: str) -> Table:
    """Rows = flattened metric names (union, first-seen order), one column per named source."""
    flat = {name: flatten(tree) for name, tree in named.items()}
    keys: list[str] = []
    for values in flat.values():
        keys.extend(k for k in values if k not in keys)
    rows = tuple((key, *(format_value(flat[n].get(key)) for n in named)) for key in keys)
    return Table(caption=caption, columns=("metric", *named), rows=rows)


def products(root: Path, name: str) -> list[Path]:
    """Files called ``name`` anywhere under ``root``, sorted by path."""
    return sorted(root.rglob(name))


def label_of(path: Path, root: Path) -> str:
    """Name of a product by its folder relative to the run root ('.' for the root itself)."""
    rel = path.parent.relative_to(root)
    return rel.as_posix() if rel.parts else "."


def figures_under(root: Path, folders: Iterable[Path]) -> tuple[Path, ...]:
    """PNG files directly inside the given folders, sorted."""
    return tuple(p for folder in folders for p in sorted(folder.glob("*.png")))
