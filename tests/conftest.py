"""Shared fixtures: the real Netflix samples (skipped where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "netflix-sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The folder of real Netflix Prize samples; tests using it skip cleanly where absent."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"real Netflix samples not found at {SAMPLE_DIR} (not redistributable)")
    return SAMPLE_DIR
