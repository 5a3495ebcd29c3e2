"""The docs name code that exists: every ``module:function`` of the metric reference resolves, and
every ``electroseg/...py`` path a doc page names is a file of the package."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
REPO = DOCS.parent


def _references() -> list[str]:
    text = (DOCS / "reference-metrics.md").read_text(encoding="utf-8")
    found = set(re.findall(r"`((?:analysis|classical|evaluation|inference|report|io|training|models)"
                           r"(?:\.[a-z_]+)+:[A-Za-z_]+)`", text))
    return sorted(found)


def test_the_metric_reference_names_many_functions():
    assert len(_references()) >= 30


@pytest.mark.parametrize("reference", _references())
def test_each_metric_reference_resolves(reference):
    module, name = reference.split(":")
    assert hasattr(importlib.import_module(f"electroseg.{module}"), name), reference


def test_module_paths_named_in_the_docs_exist():
    missing, named = [], 0
    for page in [REPO / "README.md", *DOCS.glob("*.md")]:
        for path in re.findall(r"(?<![\w/.])((?:electroseg/)?(?:analysis|classical|evaluation|inference|report|io|"
                               r"training|models|synthetic|preprocess|commands|pipeline|napari_plugin)/[a-z_]+\.py)",
                               page.read_text(encoding="utf-8")):
            named += 1
            full = REPO / (path if path.startswith("electroseg/") else f"electroseg/{path}")
            if not full.is_file():
                missing.append(f"{page.name}: {path}")
    assert named >= 10 and not missing, missing
