"""Business rules inside the top-k (`--rules`): allow with availability windows, deny, exclude."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from safetensors.numpy import save_file

from wmf.config import ExportConfig, PipelineConfig
from wmf.data.interactions import load_seen
from wmf.errors import BadInputError
from wmf.evaluation.topk import similar_items, top_k
from wmf.pipeline.registry import STAGES
from wmf.stages.export import rules
from wmf.stages.export.tables import export

K = 20


@pytest.fixture(scope="module")
def model(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train output of random factors over the tiny index (the rules do not care how it was fit)."""
    users = pl.read_parquet(tiny_index / "users.parquet").height
    movies = pl.read_parquet(tiny_index / "movies.parquet").height
    rng = np.random.default_rng(0)
    train = tmp_path_factory.mktemp("train")
    factors = {
        "user_factors": rng.normal(size=(users, 8)).astype(np.float32),
        "movie_factors": rng.normal(size=(movies, 8)).astype(np.float32),
    }
    save_file(factors, train / "model.safetensors")
    return train


@pytest.fixture(scope="module")
def ids(tiny_index: Path) -> tuple[np.ndarray, np.ndarray]:
    movies = pl.read_parquet(tiny_index / "movies.parquet").sort("movie_idx")["movie_id"].to_numpy()
    users = pl.read_parquet(tiny_index / "users.parquet").sort("user_idx")["user_id"].to_numpy()
    return movies, users


def write_rules(folder: Path, ids: tuple[np.ndarray, np.ndarray], **tables: pl.DataFrame) -> Path:
    """rules.toml naming each table, written as CSV (allow, exclude) or Parquet (deny)."""
    folder.mkdir(exist_ok=True)
    lines = []
    for kind, table in tables.items():
        name = f"{kind}.parquet" if kind == "deny" else f"{kind}.csv"
        table.write_parquet(folder / name) if kind == "deny" else table.write_csv(folder / name)
        lines.append(f'{kind} = "{name}"')
    (folder / "rules.toml").write_text("\n".join(lines) + "\n")
    return folder / "rules.toml"


def test_top_k_over_candidates_is_the_full_ranking_filtered() -> None:
    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(50, 6)).astype(np.float32), rng.normal(size=(300, 6)).astype(np.float32)
    seen = (np.arange(0, 51 * 5, 5, dtype=np.int64), rng.integers(0, 300, 250).astype(np.int32))
    candidates = np.sort(rng.choice(300, 120, replace=False))
    full, _ = top_k(users, items, 300, exclude=seen)
    got, scores = top_k(users, items, 10, exclude=seen, candidates=candidates)
    allowed = np.isin(full, candidates)
    for row in range(50):
        assert got[row].tolist() == full[row][allowed[row] & (full[row] >= 0)][:10].tolist()
    assert np.all(np.diff(scores, axis=1) <= 0)
    near, _ = similar_items(items, 5, candidates=candidates)
    assert np.isin(near, candidates).all() and not (near == np.arange(300)[:, None]).any()


def test_rules_act_inside_the_top_k(tiny_index: Path, model: Path, ids, tmp_path: Path) -> None:
    movie_ids, user_ids = ids
    plain = tmp_path / "plain"
    export(tiny_index, model, plain, ExportConfig(top_k=200, similar_k=5), progress=False)
    unruled = pl.read_parquet(plain / "recommendations.parquet")
    top = unruled.filter(pl.col("rank") <= 3)
    denied = movie_ids[::10]
    windows = pl.DataFrame(
        {
            "movie_id": movie_ids,
            "available_from": ["2006-01-01" if i % 7 == 1 else "" for i in range(len(movie_ids))],
            "available_until": ["2004-12-31" if i % 7 == 2 else "2099-01-01" for i in range(len(movie_ids))],
        }
    )
    excluded = top.select("user_id", "movie_id").head(500)
    path = write_rules(
        tmp_path / "rules",
        ids,
        allow=windows,
        deny=pl.DataFrame({"movie_id": denied}),
        exclude=excluded,
    )
    ruled_dir = tmp_path / "ruled"
    summary = export(
        tiny_index,
        model,
        ruled_dir,
        ExportConfig(top_k=K, similar_k=5, rules=str(path)),
        progress=False,
        day="2005-06-01",
    )
    unavailable = set(movie_ids[[i for i in range(len(movie_ids)) if i % 7 in (1, 2)]].tolist())
    blocked = set(denied.tolist()) | unavailable
    pairs = set(excluded.iter_rows())
    assert summary["rules"]["excluded_pairs"] == 500 and summary["rules"]["denied"] == len(denied)
    assert summary["rules"]["allowed"] == len(set(movie_ids.tolist()) - blocked)

    ruled = pl.read_parquet(ruled_dir / "recommendations.parquet")
    expected = (
        unruled.filter(~pl.col("movie_id").is_in(list(blocked)))
        .join(excluded.with_columns(out=True), on=["user_id", "movie_id"], how="left")
        .filter(pl.col("out").is_null())
        .sort("user_id", "rank")
        .group_by("user_id", maintain_order=True)
        .head(K)
    )
    assert ruled["movie_id"].is_in(list(blocked)).sum() == 0
    assert not pairs & set(ruled.select("user_id", "movie_id").iter_rows())
    counts = ruled.group_by("user_id").len()
    assert counts["len"].min() == K  # every customer still gets --top-k rows
    assert ruled.sort("user_id", "rank")["movie_id"].to_list() == expected["movie_id"].to_list()
    similar = pl.read_parquet(ruled_dir / "similar_movies.parquet")
    assert similar["similar_movie_id"].is_in(list(blocked)).sum() == 0
    assert similar["movie_id"].n_unique() == len(movie_ids)  # every movie still has its neighbours
    seen_ptr, seen_idx = load_seen(tiny_index)
    assert len(seen_ptr) == len(user_ids) + 1 and len(seen_idx) > 0


def test_an_id_the_data_does_not_hold_is_a_warning(
    tiny_index: Path, model: Path, ids, tmp_path: Path
) -> None:
    path = write_rules(tmp_path / "rules", ids, deny=pl.DataFrame({"movie_id": [ids[0][0], 99_999_999]}))
    summary = export(
        tiny_index, model, tmp_path / "out", ExportConfig(top_k=5, rules=str(path)), progress=False
    )
    assert summary["rules"]["denied"] == 1
    assert any("99999999" in w and "not in the data" in w for w in summary["warnings"])


@pytest.mark.parametrize(
    "kind, table, where, reason",
    [
        ("allow", "movie_id,shown\n1,yes\n", ":1:", "unknown column 'shown'"),
        (
            "allow",
            "movie_id,available_from\n1,2005-01-01\n8,2005-13-01\n",
            ":3:",
            "available_from is not a date",
        ),
        ("exclude", "user_id,movie_id\n6,1\n6,abc\n", ":3:", "movie_id is not a whole number"),
        ("exclude", "user_id\n6\n", ":1:", "no movie_id column"),
    ],
)
def test_a_bad_rule_table_names_its_file_line_and_reason(
    kind: str, table: str, where: str, reason: str, tiny_index: Path, model: Path, tmp_path: Path
) -> None:
    (tmp_path / f"{kind}.csv").write_text(table)
    (tmp_path / "rules.toml").write_text(f'{kind} = "{kind}.csv"\n')
    with pytest.raises(BadInputError, match=reason) as caught:
        export(
            tiny_index,
            model,
            tmp_path / "out",
            ExportConfig(rules=str(tmp_path / "rules.toml")),
            progress=False,
        )
    assert f"{tmp_path / f'{kind}.csv'}{where}" in str(caught.value)


def test_a_bad_rules_file_is_refused_while_planning(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text('# the catalogue\nblock = "x.csv"\n')
    with pytest.raises(BadInputError, match="unknown key") as caught:
        rules.files(tmp_path / "rules.toml")
    assert f"{tmp_path / 'rules.toml'}:2: " in str(caught.value)
    (tmp_path / "rules.toml").write_text('allow = "catalogue.csv"\n')
    with pytest.raises(Exception, match="does not exist"):
        rules.files(tmp_path / "rules.toml")


def test_the_rule_tables_and_their_day_are_in_the_export_key(tmp_path: Path, ids) -> None:
    spec = STAGES["export"]
    assert spec.external(PipelineConfig()) == {}  # no rules: the key is as it was
    path = write_rules(tmp_path / "rules", ids, deny=pl.DataFrame({"movie_id": ids[0][:3]}))
    config = PipelineConfig.from_dict({"export": {"rules": str(path)}, "index": {"until": "2005-06-01"}})
    first = spec.external(config)
    assert first["day"] == "2005-06-01" and set(first["files"]) == {"rules", "deny"}
    pl.DataFrame({"movie_id": ids[0][:4]}).write_parquet(path.parent / "deny.parquet")
    assert spec.external(config)["files"]["deny"] != first["files"]["deny"]
    later = PipelineConfig.from_dict({"export": {"rules": str(path)}, "index": {"until": "2005-07-01"}})
    assert spec.external(later)["day"] == "2005-07-01"


@pytest.mark.prefect
def test_a_bad_rule_row_fails_the_export_and_keeps_the_published_one(
    tiny_raw: Path, tmp_path: Path, prefect_server, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main
    from wmf import store

    data = tmp_path / "data"
    fast = ["--factors", "4", "--iterations", "2", "--refit-iterations", "1", "--top-k", "5"]
    assert main(["run", "--raw", str(tiny_raw), "--data", str(data), *fast]) == 0
    published = store.latest(data / "exports")
    (tmp_path / "deny.csv").write_text("movie_id\n1\n-3\n")
    (tmp_path / "rules.toml").write_text('deny = "deny.csv"\n')
    capsys.readouterr()
    assert main(["export", "--data", str(data), *fast[-2:], "--rules", str(tmp_path / "rules.toml")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"export failed: {tmp_path / 'deny.csv'}:3: movie_id is not a whole number >= 0" in line
    assert store.latest(data / "exports") == published

    (tmp_path / "rules.toml").write_text('deny = "missing.csv"\n')
    assert main(["export", "--data", str(data), *fast[-2:], "--rules", str(tmp_path / "rules.toml")]) == 2
    assert "missing.csv does not exist" in capsys.readouterr().err  # refused before the run began
