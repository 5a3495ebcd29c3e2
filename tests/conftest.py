"""Shared fixtures: paths to the real third-party data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ELECTROSEG_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real third-party electrode data (published values): ``$ELECTROSEG_DATA``, else
    ``../shared/data`` beside the checkout. Absent: the test is skipped with that reason
    (``-ra`` lists it), or fails when ``ELECTROSEG_REQUIRE_DATA=1`` says the data must be there."""
    if not SHARED_DATA.is_dir():
        message = f"real data folder {SHARED_DATA} is not present (set ELECTROSEG_DATA to it)"
        if os.environ.get("ELECTROSEG_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def _coated_columns(z: int = 6, y: int = 12, x: int = 16):
    """(truth, segmentation) constant along Z (the slicing axis): two AM blocks, each coated on
    one side by a CBD column; the segmentation labels the second coat AM. The same error in
    every slice, so a correction measured on any slice is exact."""
    import numpy as np

    truth = np.zeros((z, y, x), np.uint8)
    truth[:, 2:10, 2:6] = 2
    truth[:, 2:10, 6] = 1
    truth[:, 2:10, 9:13] = 2
    truth[:, 2:10, 13] = 1
    seg = truth.copy()
    seg[:, 2:10, 13] = 2
    return truth, seg


@pytest.fixture(scope="session")
def coated_columns():
    """``coated_columns(z=6, y=12, x=16) -> (truth, segmentation)``: see `_coated_columns`."""
    return _coated_columns
