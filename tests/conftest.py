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


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset in the Kaggle layout (no real bytes)."""
    from wmf.data.generate import generate

    raw = tmp_path_factory.mktemp("raw")
    generate(raw, scale=0.0005, seed=7, progress=False)
    return raw


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index output (default options: a random holdout) of a generated set of ~100k ratings."""
    from wmf.config import IndexConfig, IngestConfig
    from wmf.data.generate import generate
    from wmf.stages.index.build import build_index
    from wmf.stages.ingest.parse import ingest

    root = tmp_path_factory.mktemp("tiny-index")
    for stage in ("ingest", "index"):
        (root / stage).mkdir()
    generate(root / "raw", scale=0.001, seed=3, progress=False)
    ingest(root / "raw", root / "ingest", IngestConfig(), progress=False)
    build_index(root / "ingest", root / "index", IndexConfig(), progress=False)
    return root / "index"


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server and database for the whole test session."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
