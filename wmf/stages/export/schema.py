"""The analyst tables: every column's name, type and meaning, and how the tables are written.

The export writes each table with exactly the Arrow schema built here, and
`docs/tables.md` and the README's table section are generated from the same objects
(`python -m wmf.stages.export.schema --write README.md docs/tables.md`; a test checks
them), so the documentation cannot drift from the files.
Tables are zstd Parquet with page checksums, readable and checkable by any Parquet reader
(pyarrow, DuckDB, Spark) without wmf's manifests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from wmf.layout import Export

COMPRESSION = "zstd"
BEGIN = (
    "<!-- tables: generated from wmf/stages/export/schema.py by "
    "`python -m wmf.stages.export.schema --write README.md docs/tables.md`; do not edit -->"
)
END = "<!-- tables: end -->"


@dataclass(frozen=True)
class Column:
    name: str
    type: Callable[[int], pa.DataType]  # of the factors d (an embedding's length)
    meaning: str


@dataclass(frozen=True)
class Table:
    file: str
    about: str
    columns: tuple[Column, ...]

    def schema(self, factors: int = 0, metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
        return pa.schema([(c.name, c.type(factors)) for c in self.columns], metadata=metadata)


def _fixed(t: pa.DataType) -> Callable[[int], pa.DataType]:
    return lambda _factors: t


def _embedding(factors: int) -> pa.DataType:
    return pa.list_(pa.float32(), factors)


MOVIE = (
    Column("movie_id", _fixed(pa.int32()), "Netflix movie id"),
    Column("title", _fixed(pa.string()), "from movie_titles (null where the movie has none)"),
    Column("year", _fixed(pa.int16()), "release year (null where the source says NULL)"),
)
RECOMMENDATIONS = Table(
    Export.RECOMMENDATIONS,
    "the top `--top-k` unseen movies of every customer, sorted by user then rank; ties go to the "
    "lower movie id; a customer with fewer unseen movies gets fewer rows",
    (
        Column("user_id", _fixed(pa.int32()), "Netflix customer id"),
        Column("rank", _fixed(pa.int16()), "1 = best"),
        Column(
            "movie_id",
            _fixed(pa.int32()),
            "Netflix movie id, never one the customer rated (at any rating: trained on, held out, "
            "or below `--min-rating`)",
        ),
        Column("score", _fixed(pa.float32()), "model score u.v (higher is better)"),
        Column("title", _fixed(pa.string()), "from movie_titles"),
        Column("year", _fixed(pa.int16()), "release year (null where the source says NULL)"),
    ),
)
USER_EMBEDDINGS = Table(
    Export.USER_EMBEDDINGS,
    "every indexed customer's factor vector",
    (
        Column("user_id", _fixed(pa.int32()), "Netflix customer id"),
        Column("embedding", _embedding, "the customer's factor vector (d = `--factors` floats)"),
    ),
)
MOVIE_EMBEDDINGS = Table(
    Export.MOVIE_EMBEDDINGS,
    "every indexed movie's factor vector",
    (
        *MOVIE,
        Column("embedding", _embedding, "the movie's factor vector (d = `--factors` floats)"),
        Column("n_train", _fixed(pa.int32()), "its training interactions"),
    ),
)
SIMILAR_MOVIES = Table(
    Export.SIMILAR_MOVIES,
    "the `--similar-k` movies closest to each movie, by the cosine of their embeddings",
    (
        Column("movie_id", _fixed(pa.int32()), "the movie"),
        Column("rank", _fixed(pa.int16()), "1 = most similar"),
        Column("similar_movie_id", _fixed(pa.int32()), "another movie (never itself)"),
        Column("score", _fixed(pa.float32()), "cosine of the two embeddings"),
    ),
)
TABLES = (RECOMMENDATIONS, USER_EMBEDDINGS, MOVIE_EMBEDDINGS, SIMILAR_MOVIES)

# Key-value metadata on every table, so that a file found alone says where it came from.
PROVENANCE = {
    "wmf.run_id": "the export's key: its folder DATA/exports/<run_id>/",
    "wmf.created_at": "when the export was built (UTC, ISO 8601)",
    "wmf.package_version": "the version of the wmf package that wrote it",
    "wmf.code_hash": "the export stage's code hash: the source of every wmf module it runs",
    "wmf.model_params": "the train stage's options and the model's shape (JSON)",
    "wmf.export_config": "the export's options (JSON)",
}
# The other files of an export, for the documentation.
FILES = {
    Export.METRICS: "the train stage's held-out evaluation (when a holdout exists): Recall, NDCG, MAP, "
    "precision and coverage at 10, 20, 50 and 100 for the model and the popularity baseline, "
    "`stderr` (each model metric's standard error over the evaluated users), `evaluated_model` "
    "(which model: before the refit), `n_users_evaluated` (a fixed random sample of "
    "`--eval-users`), `n_holdout`",
    Export.DRIFT: "how these recommendations differ from the previously published export's: "
    "`share_changed@10`, `jaccard@10`, `rbo`, new and dropped users and movies, both score "
    "distributions (all null on the first night)",
    Export.LOSS_CURVE: "the training loss per iteration (and validation metrics when evaluated)",
}


def write_table(path: Path, table: pa.Table) -> int:
    """One table in a single call (embeddings, similar movies)."""
    pq.write_table(table, path, compression=COMPRESSION, write_page_checksum=True)
    return table.num_rows


def writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A table written batch by batch (the recommendations)."""
    return pq.ParquetWriter(path, schema, compression=COMPRESSION, write_page_checksum=True)


def read_table(path: Path, columns: list[str]) -> pa.Table:
    """A table read back with its page checksums verified."""
    return pq.read_table(path, columns=columns, page_checksum_verification=True)


def markdown() -> str:
    """The tables as documentation: one section per table, then the metadata and the other files."""
    lines = []
    for table in TABLES:
        lines += [f"### `{table.file}`", "", table.about[0].upper() + table.about[1:] + ".", ""]
        lines += ["| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {_type_name(c.type(0))} | {c.meaning} |" for c in table.columns]
        lines.append("")
    lines += ["### Metadata of every table", "", "| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {meaning} |" for key, meaning in PROVENANCE.items()]
    lines += ["", "### Other files", "", "| file | content |", "|---|---|"]
    lines += [f"| `{name}` | {content} |" for name, content in FILES.items()]
    return "\n".join(lines) + "\n"


def with_tables(text: str) -> str:
    """`text` with what stands between its BEGIN and END markers replaced by `markdown()`."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not (begin and end):
        raise ValueError(f"no {BEGIN!r} ... {END!r} block to replace")
    return f"{head}{BEGIN}\n{markdown()}{END}{tail}"


def _type_name(t: pa.DataType) -> str:
    """The type as numpy and polars users call it (pyarrow says float for float32)."""
    if pa.types.is_fixed_size_list(t):
        return f"fixed_size_list<{_type_name(t.value_type)}>[d]"
    return {"float": "float32", "double": "float64"}.get(str(t), str(t))


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:
        for name in sys.argv[2:]:
            Path(name).write_text(with_tables(Path(name).read_text()))
    else:
        print(markdown(), end="")
