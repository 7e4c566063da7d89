"""The nightly cycle on tiny generated data: replayed nights, warm starts, fold-in and drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from safetensors.numpy import load_file

from wmf import store
from wmf.config import IndexConfig, IngestConfig, PipelineConfig, RunConfig, TrainConfig
from wmf.errors import ConfigError, WmfError
from wmf.layout import Export, Train
from wmf.pipeline import plan as planning
from wmf.pipeline import runner
from wmf.pipeline.registry import PIPELINE
from wmf.stages.export.drift import drift, read_lists
from wmf.stages.index.build import build_index
from wmf.stages.ingest.parse import ingest

NIGHT_1, NIGHT_2 = "2005-06-30", "2005-09-30"


def night(data: Path, raw: Path, keep: int = 5, **options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One night as the pipeline flow runs it, without Prefect: plan, build if new, publish."""
    config = PipelineConfig.from_dict(options)
    manifests = {}
    for stage in PIPELINE:
        plan = planning.plan(stage.name, data, config, raw)
        runner.run(plan, progress=False)
        manifests[stage.name] = runner.publish(plan, keep=keep)
    return manifests


def model(data: Path, train: dict[str, Any]) -> dict[str, np.ndarray]:
    """The tensors of a published train output (factors, ids)."""
    return load_file(data / Train.DIRECTORY / train["key"] / Train.MODEL)


@pytest.fixture(scope="module")
def nights(tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("nightly")
    first = night(data, tiny_raw, index={"until": NIGHT_1})
    second = night(data, tiny_raw, index={"until": NIGHT_2})
    return {"data": data, "first": first, "second": second}


def test_until_leaves_out_later_ratings(tiny_raw: Path, nights: dict[str, Any]) -> None:
    ratings = pl.read_parquet(Path(nights["first"]["ingest"]["outputs"]["ratings"]["path"]))
    for name, until in (("first", NIGHT_1), ("second", NIGHT_2)):
        expected = ratings.filter(pl.col("date") <= pl.lit(until).str.to_date()).height
        assert nights[name]["index"]["summary"]["n_ratings_in"] == expected
    assert nights["first"]["index"]["summary"]["n_ratings_in"] < ratings.height
    ingest_dir = Path(nights["first"]["ingest"]["outputs"]["ratings"]["path"]).parent
    with pytest.raises(ConfigError, match="--until '30/06/2005': expected a date as YYYY-MM-DD"):
        build_index(ingest_dir, nights["data"] / "unused", IndexConfig(until="30/06/2005"), progress=False)


def test_warm_start_is_taken_recorded_and_keeps_reruns_cached(tiny_raw: Path, nights: dict[str, Any]) -> None:
    first, second = nights["first"]["train"], nights["second"]["train"]
    assert first["summary"]["warm_start_from"] is None  # nothing published before the first night
    assert second["sources"]["warm_start"] == second["summary"]["warm_start_from"] == first["key"]
    assert second["inputs"]["warm_start"] == {  # the key hashes the model's content, not its key
        name: entry["sha256"] for name, entry in first["files"].items() if name.endswith(".safetensors")
    }
    warm = TrainConfig().warm_iterations
    assert second["summary"]["iterations"] == second["summary"]["refit_iterations"] == warm
    before, after = model(nights["data"], first), model(nights["data"], second)
    assert second["summary"]["fold_in"] == {
        "users_new": len(np.setdiff1d(after["user_ids"], before["user_ids"])),
        "users_dropped": 0,
        "users_folded_in": len(np.setdiff1d(after["user_ids"], before["user_ids"])),
        "movies_new": len(np.setdiff1d(after["movie_ids"], before["movie_ids"])),
        "movies_dropped": 0,
    }
    assert second["summary"]["fold_in"]["users_new"] > 0 and second["summary"]["fold_in"]["movies_new"] > 0
    config = PipelineConfig.from_dict({"index": {"until": NIGHT_2}})
    for stage in PIPELINE:  # the same night again: every stage keeps its key, so is cached
        again = planning.plan(stage.name, nights["data"], config, tiny_raw)
        assert again.key == nights["second"][stage.name]["key"]
    options = {"index": {"until": NIGHT_2}, "train": {"warm_start": False}}
    cold = planning.plan("train", nights["data"], PipelineConfig.from_dict(options))
    assert "warm_start" not in cold.inputs and cold.key != second["key"]


def test_after_an_upgrade_the_rerun_of_the_night_is_cached(
    tiny_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New train code retrains the night from the published model, once: pruning to the
    default two outputs keeps that model, which the rerun's key is found through."""
    keep = RunConfig().keep_stage_outputs
    night(tmp_path, tiny_raw, keep, index={"until": NIGHT_1})
    before = night(tmp_path, tiny_raw, keep, index={"until": NIGHT_2})
    published = before["train"]
    released = planning.code_hash
    monkeypatch.setattr(
        planning, "code_hash", lambda build: released(build) + ("+1" if "train" in build else "")
    )
    upgraded = night(tmp_path, tiny_raw, keep, index={"until": NIGHT_2})
    assert upgraded["train"]["key"] != published["key"]
    assert upgraded["train"]["sources"]["warm_start"] == published["sources"]["warm_start"]
    config = PipelineConfig.from_dict({"index": {"until": NIGHT_2}})
    rerun = planning.plan("train", tmp_path, config, tiny_raw)
    assert rerun.key == upgraded["train"]["key"] and runner.run(rerun).state == "Cached"
    # the retrained model is the same model: the export after it keeps its key (early cutoff)
    assert upgraded["export"]["key"] == before["export"]["key"]


def test_fold_in_only_solves_new_and_changed_users_into_the_published_model(
    tiny_raw: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with pytest.raises(WmfError, match="--fold-in-only needs a published model"):
        night(data, tiny_raw, index={"until": NIGHT_1}, train={"fold_in_only": True})
    first = night(data, tiny_raw, index={"until": NIGHT_1})["train"]
    second = night(data, tiny_raw, index={"until": NIGHT_2}, train={"fold_in_only": True})["train"]
    assert second["summary"]["iterations"] == 0 and second["summary"]["warm_start_from"] == first["key"]
    before, after = model(data, first), model(data, second)
    kept = np.isin(after["movie_ids"], before["movie_ids"])
    assert np.array_equal(after["movie_factors"][kept], before["movie_factors"])  # published ones kept
    assert np.abs(after["movie_factors"][~kept]).sum(1).min() > 0  # new movies solved in
    position = np.searchsorted(before["user_ids"], after["user_ids"]).clip(max=len(before["user_ids"]) - 1)
    known = before["user_ids"][position] == after["user_ids"]
    same = known & (before["user_counts"][position] == after["user_counts"])
    assert np.array_equal(after["user_factors"][same], before["user_factors"][position[same]])
    refolded = ~same
    assert refolded.sum() == second["summary"]["fold_in"]["users_folded_in"] > (~known).sum() > 0
    assert not np.allclose(
        after["user_factors"][refolded & known], before["user_factors"][position[refolded & known]]
    )


def test_drift_compares_with_the_previous_export(nights: dict[str, Any]) -> None:
    first, second = (
        nights["first"]["export"]["summary"]["drift"],
        nights["second"]["export"]["summary"]["drift"],
    )
    assert first["previous_run"] is None and first["rbo"] is None and first["scores"]["previous"] is None
    assert second["previous_run"] == nights["first"]["export"]["key"]
    users = pl.read_parquet(Path(nights["first"]["export"]["outputs"]["user_embeddings"]["path"]))
    assert second["users_compared"] == users.height  # no user vanished in between
    assert second["new_users"] == nights["second"]["train"]["summary"]["fold_in"]["users_new"]
    assert 0 < second["rbo"] < 1 and 0 < second["jaccard@10"] < 1 and 0 < second["share_changed@10"] <= 1
    assert second["scores"]["previous"] == first["scores"]["current"]
    directory = Path(nights["second"]["export"]["outputs"]["recommendations"]["path"]).parent
    assert store.read_json(directory / "drift.json") == second
    previous = Path(nights["first"]["export"]["outputs"]["recommendations"]["path"]).parent
    reread = drift(previous, read_lists(directory / Export.RECOMMENDATIONS), directory)
    assert reread == second  # the lists the export kept while writing are the published ones


def _rbo(a: list[int], b: list[int], p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap straight from its definition (Webber et al. 2010, eq. 32)."""
    k = min(len(a), len(b))
    overlap = [len(set(a[:d]) & set(b[:d])) / d for d in range(1, k + 1)]
    return overlap[-1] * p**k + (1 - p) * sum(p ** (d - 1) * x for d, x in enumerate(overlap, 1))


def test_drift_figures_match_their_definitions(tmp_path: Path) -> None:
    lists = {  # user -> (previous list, current list)
        1: ([5, 6, 7, 8], [5, 6, 7, 8]),
        2: ([1, 2, 3, 4], [2, 1, 9, 4]),
        3: ([1, 2, 3, 4], [7, 8, 9, 10]),
    }
    for side, name in ((0, "previous"), (1, "current")):
        (tmp_path / name).mkdir()
        rows = [(u, r + 1, m) for u, pair in lists.items() for r, m in enumerate(pair[side])]
        frame = pl.DataFrame(rows, schema=["user_id", "rank", "movie_id"], orient="row")
        frame.with_columns(score=pl.lit(0.5)).write_parquet(tmp_path / name / Export.RECOMMENDATIONS)
        frame.select("user_id").unique().write_parquet(tmp_path / name / Export.USER_EMBEDDINGS)
        frame.select("movie_id").unique().write_parquet(tmp_path / name / Export.MOVIE_EMBEDDINGS)
    now = read_lists(tmp_path / "current" / Export.RECOMMENDATIONS)
    result = drift(tmp_path / "previous", now, tmp_path / "current")
    assert result["users_compared"] == 3
    assert result["share_changed@10"] == pytest.approx(2 / 3)
    assert result["jaccard@10"] == pytest.approx((1 + 3 / 5 + 0) / 3)
    assert result["rbo"] == pytest.approx(np.mean([_rbo(*pair) for pair in lists.values()]))
    assert (result["new_movies"], result["dropped_movies"]) == (2, 1)


def test_quality_reports_every_kind_of_defect(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    (raw / "combined_data_1.txt").write_text(
        "1:\n10,3,2005-01-01\n10,4,2005-02-01\n11,5,2099-01-01\n2:\n12,1,1997-05-05\n"
    )
    (raw / "combined_data_2.txt").write_text("99:\n13,2,2004-01-01\n14,2,2004-03-01\n")
    (raw / "movie_titles.csv").write_text("1,2003,Title A\n2,2004,Title B, with a comma\n")
    summary = ingest(raw, out, IngestConfig(), progress=False)
    report = store.read_json(out / "quality.json")
    assert report["files"] == [
        {"name": "combined_data_1.txt", "lines": 6, "ratings": 4, "rejected": 0,
         "first_date": "1997-05-05", "last_date": "2099-01-01"},
        {"name": "combined_data_2.txt", "lines": 3, "ratings": 2, "rejected": 0,
         "first_date": "2004-01-01", "last_date": "2004-03-01"},
    ]  # fmt: skip
    assert report["ratings_per_value"] == {"1": 1, "2": 2, "3": 1, "4": 1, "5": 1}
    assert report["duplicate_pairs"] == 1
    assert report["movies_without_title"] == [99]
    assert (report["dates_after_today"], report["dates_before_1998"]) == (1, 1)
    assert len(report["findings"]) == 4 and summary["quality"]["findings"] == report["findings"]
    assert "latest" in report["findings"][0] and "99" in report["findings"][1]


@pytest.mark.parametrize("bad_line", ["", "oops\n"])
def test_quality_counts_a_pair_repeated_in_another_file(tmp_path: Path, bad_line: str) -> None:
    """Files are summed up one by one; a movie rated in two files still finds its repeats.
    With a bad line the checked scan writes the table and quality.json reads it back."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    (raw / "combined_data_1.txt").write_text("1:\n10,3,2005-01-01\n2:\n10,1,2005-01-03\n")
    (raw / "combined_data_2.txt").write_text(f"1:\n11,2,2005-01-02\n10,4,2005-02-01\n{bad_line}")
    (raw / "movie_titles.csv").write_text("1,2003,Title A\n2,2004,Title B\n")
    ingest(raw, out, IngestConfig(on_bad_lines="skip"), progress=False)
    report = store.read_json(out / "quality.json")
    assert report["duplicate_pairs"] == 1
    assert [(f["ratings"], f["first_date"], f["last_date"]) for f in report["files"]] == [
        (2, "2005-01-01", "2005-01-03"),
        (2, "2005-01-02", "2005-02-01"),
    ]
    assert report["ratings_per_value"] == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert report["movies_without_title"] == []


def test_a_model_saved_without_ids_is_no_warm_start(tiny_raw: Path, tmp_path: Path) -> None:
    """After an upgrade, the first night starts cold from a model that predates the ids."""
    from safetensors.numpy import save_file

    data = tmp_path / "data"
    first = night(data, tiny_raw, index={"until": NIGHT_1})["train"]
    config = PipelineConfig.from_dict({"index": {"until": NIGHT_2}})
    for stage in ("ingest", "index"):  # tonight's index, published
        plan = planning.plan(stage, data, config, tiny_raw)
        runner.run(plan, progress=False)
        runner.publish(plan, keep=5)
    assert planning.plan("train", data, config).sources["warm_start"] == first["key"]
    path = data / Train.DIRECTORY / first["key"] / Train.MODEL
    tensors = load_file(path)
    save_file({k: tensors[k] for k in ("user_factors", "movie_factors")}, path)
    cold = planning.plan("train", data, config)
    assert cold.inputs["warm_start"] is None and "warm_start" not in cold.sources


def test_a_night_with_a_delta_file_parses_only_that_file(
    tiny_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import wmf.stages.ingest.parse

    raw, data = tmp_path / "raw", tmp_path / "data"
    shutil.copytree(tiny_raw, raw)
    config = PipelineConfig()
    first = planning.plan("ingest", data, config, raw)
    runner.execute(first, progress=False)
    runner.publish(first, keep=5)
    (raw / "combined_data_5.txt").write_text("1:\n2649999,4,2005-12-31\n3:\n2649998,5,2005-12-31\n")
    parsed: list[list[str]] = []
    parse = wmf.stages.ingest.parse.read_lines_table
    monkeypatch.setattr(
        wmf.stages.ingest.parse,
        "read_lines_table",
        lambda paths, *a: parsed.append([p.name for p in paths]) or parse(paths, *a),
    )
    tonight = planning.plan("ingest", data, config, raw)
    manifest = runner.execute(tonight, progress=False)
    assert ["combined_data_5.txt"] in parsed and not any("combined_data_1.txt" in p for p in parsed)
    full = tmp_path / "full"
    full.mkdir()
    monkeypatch.setattr(wmf.stages.ingest.parse, "read_lines_table", parse)
    expected = ingest(raw, full, IngestConfig(), progress=False)  # everything parsed again
    got = pl.read_parquet(tonight.output / "ratings.parquet")
    assert got.equals(pl.read_parquet(full / "ratings.parquet"))
    assert got.height == first_rows(first) + 2
    assert manifest["summary"]["files"] == expected["files"]
    assert store.read_json(tonight.output / "quality.json")["files"][-1]["ratings"] == 2


def first_rows(plan: planning.StagePlan) -> int:
    return store.read_manifest(plan.output)["outputs"]["ratings"]["rows"]


def test_after_an_ingest_upgrade_a_delta_night_parses_every_file(
    tiny_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows parsed by older code are never taken: the fixed parser must see every file."""
    import shutil

    import wmf.stages.ingest.parse

    raw, data = tmp_path / "raw", tmp_path / "data"
    shutil.copytree(tiny_raw, raw)
    first = planning.plan("ingest", data, PipelineConfig(), raw)
    runner.execute(first, progress=False)
    runner.publish(first, keep=5)
    (raw / "combined_data_5.txt").write_text("1:\n2649999,4,2005-12-31\n")
    released = planning.code_hash
    monkeypatch.setattr(planning, "code_hash", lambda build: released(build) + "+")
    parsed: list[str] = []
    parse = wmf.stages.ingest.parse.read_lines_table
    monkeypatch.setattr(
        wmf.stages.ingest.parse,
        "read_lines_table",
        lambda paths, *a: parsed.extend(p.name for p in paths) or parse(paths, *a),
    )
    runner.execute(planning.plan("ingest", data, PipelineConfig(), raw), progress=False)
    assert {f"combined_data_{i}.txt" for i in range(1, 6)} <= set(parsed)
