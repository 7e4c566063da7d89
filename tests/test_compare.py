"""`wmf compare`: every optimizer from the same factors on the exact objective, published like a stage."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from helpers_cli import wmf
from helpers_plots import drawn

from wmf import store
from wmf.config import CompareConfig, TrainConfig
from wmf.errors import WmfError
from wmf.stages.compare.study import OPTIMIZERS, SWEEP_RATES, compare

BASE = TrainConfig(factors=8, eval_users=500)


def test_every_optimizer_lowers_the_exact_loss(tiny_index: Path, tmp_path: Path) -> None:
    study = CompareConfig(optimizers=",".join(OPTIMIZERS), iterations=12, eval_every=6)
    summary = compare(tiny_index, tmp_path, study, BASE, progress=False)
    table = pl.read_parquet(tmp_path / "comparison.parquet")
    assert table["optimizer"].unique(maintain_order=True).to_list() == list(OPTIMIZERS)
    for name, curve in table.group_by("optimizer", maintain_order=True):
        losses = curve["loss"].to_list()
        assert len(losses) == 12 and losses[-1] < losses[0], name
        assert curve["seconds"].is_sorted() and curve["recall@20"].drop_nulls().len() == 2
    first = table.filter(pl.col("iteration") == 1)
    assert (
        first.filter(pl.col("optimizer") != "adam-sigmoid")["loss"].n_unique() > 1
    )  # each moved its own way
    size, colours = drawn(tmp_path / "compare.png")
    assert size == (1210, 462)  # 11 x 4.2 inches at 110 dpi
    assert colours >= {f"C{i}" for i in range(len(OPTIMIZERS))}  # a curve per optimizer
    assert [row["optimizer"] for row in summary["final"]] == list(OPTIMIZERS)


def test_sweep_budget_and_bad_names(tiny_index: Path, tmp_path: Path) -> None:
    study = CompareConfig(optimizers="adam,als", iterations=5, lr_sweep=True, sweep_iterations=3)
    compare(tiny_index, tmp_path, study, BASE, progress=False)
    sweep = pl.read_parquet(tmp_path / "sweep.parquet")
    assert sweep["learning_rate"].to_list() == list(SWEEP_RATES["adam"])  # ALS has no rate to sweep
    table = pl.read_parquet(tmp_path / "comparison.parquet")
    chosen = table.filter(pl.col("optimizer") == "adam")["learning_rate"][0]
    assert chosen == sweep.sort("loss")["learning_rate"][0]

    timed = CompareConfig(optimizers="sgd", iterations=5, seconds=1e-9, learning_rates="sgd=1e6")
    (tmp_path / "timed").mkdir()
    compare(tiny_index, tmp_path / "timed", timed, BASE, progress=False)
    one = pl.read_parquet(tmp_path / "timed" / "comparison.parquet")
    assert one.height == 1 and one["learning_rate"][0] == 1e6  # the budget was spent after one step

    with pytest.raises(WmfError, match="unknown optimizer nadam: choose from adam, adamw"):
        compare(tiny_index, tmp_path, CompareConfig(optimizers="adam,nadam"), BASE, progress=False)
    with pytest.raises(WmfError, match="a learning rate for 'als'"):
        compare(tiny_index, tmp_path, CompareConfig(learning_rates="als=1"), BASE, progress=False)


@pytest.mark.prefect
def test_compare_command_publishes_and_caches(tiny_raw: Path, tmp_path: Path, prefect_server) -> None:
    data = tmp_path / "data"
    code, _, err = wmf(
        "run", "--raw", str(tiny_raw), "--data", str(data), "--factors", "8", "--iterations", "2"
    )
    assert code == 0, err
    study = ["--optimizers", "adam,als", "--iterations", "4", "--factors", "8"]
    code, summary, err = wmf("compare", "--data", str(data), *study)
    assert code == 0, err
    assert summary["stages"]["compare"]["state"] == "Completed"
    published = data / "compare" / "latest"
    assert pl.read_parquet(published / "comparison.parquet").height == 8
    assert store.read_manifest(published)["config"]["compare"]["optimizers"] == "adam,als"
    code, summary, _ = wmf("compare", "--data", str(data), *study)
    assert code == 0 and summary["stages"]["compare"]["state"] == "Cached"
    code, _, err = wmf("compare", "--data", str(data), "--optimizers", "lbfgs")
    assert code != 0 and "unknown optimizer lbfgs" in err
