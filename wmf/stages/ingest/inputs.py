"""Which raw files an ingest reads: Kaggle's combined_data_*.txt or the original training_set/.

Light on purpose: planning a night lists (and fingerprints) these files without importing
the parser.
"""

from __future__ import annotations

from pathlib import Path

from wmf.errors import MissingInputError
from wmf.layout import Raw


def find_inputs(raw: Path) -> dict[str, list[Path]]:
    """The raw files by kind: ratings (in name order), movies (the titles file), probe."""
    raw = Path(raw)
    if not raw.is_dir():
        raise MissingInputError(f"raw data folder {raw} does not exist")
    ratings = next((found for pattern in Raw.RATINGS if (found := sorted(raw.glob(pattern)))), [])
    if not ratings:
        raise MissingInputError(f"no ratings files in {raw}: expected {' or '.join(Raw.RATINGS)}")
    movies = [raw / name for name in Raw.TITLES if (raw / name).is_file()][:1]
    if not movies:
        raise MissingInputError(f"no {' (or '.join(Raw.TITLES)}) in {raw}")
    probe = [raw / Raw.PROBE] if (raw / Raw.PROBE).is_file() else []
    return {"ratings": ratings, "movies": movies, "probe": probe}


def raw_files(raw: Path) -> list[Path]:
    """Every raw file an ingest of RAW reads, in a fixed order: what its key fingerprints."""
    return [path for group in find_inputs(raw).values() for path in group]
