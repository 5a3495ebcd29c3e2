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
