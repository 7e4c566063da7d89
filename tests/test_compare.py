"""`wmf compare`: every optimizer from the same factors on the exact objective, published like a stage."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from helpers_cli import wmf
from helpers_plots import drawn

from flows.cli import main
from wmf import store
from wmf.config import CompareConfig, TrainConfig
from wmf.errors import ConfigError
from wmf.stages.compare import OPTIMIZERS
from wmf.stages.compare.study import SWEEP_RATES, compare

BASE = TrainConfig(factors=8, eval_users=500)


def test_every_optimizer_lowers_the_exact_loss(tiny_index: Path, tmp_path: Path) -> None:
    study = CompareConfig(optimizers=",".join(OPTIMIZERS), steps=12, compare_eval_every=6)
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
    study = CompareConfig(optimizers="adam,als", steps=5, lr_sweep=True, sweep_steps=3)
    compare(tiny_index, tmp_path, study, BASE, progress=False)
    sweep = pl.read_parquet(tmp_path / "sweep.parquet")
    assert sweep["learning_rate"].to_list() == list(SWEEP_RATES["adam"])  # ALS has no rate to sweep
    table = pl.read_parquet(tmp_path / "comparison.parquet")
    chosen = table.filter(pl.col("optimizer") == "adam")["learning_rate"][0]
    assert chosen == sweep.sort("loss")["learning_rate"][0]

    timed = CompareConfig(optimizers="sgd", steps=5, seconds=1e-9, learning_rates="sgd=1e6")
    (tmp_path / "timed").mkdir()
    compare(tiny_index, tmp_path / "timed", timed, BASE, progress=False)
    one = pl.read_parquet(tmp_path / "timed" / "comparison.parquet")
    assert one.height == 1 and one["learning_rate"][0] == 1e6  # the budget was spent after one step


def test_bad_names_are_refused_before_the_study() -> None:
    with pytest.raises(
        ConfigError, match=r"--optimizers 'adam,nadam': expected .*adam, adamw.*unknown optimizer nadam"
    ):
        CompareConfig(optimizers="adam,nadam")
    with pytest.raises(ConfigError, match=r"--learning-rates 'als=1': expected comma-separated NAME=RATE"):
        CompareConfig(learning_rates="als=1")
    with pytest.raises(ConfigError, match=r"--learning-rates 'adam=fast'"):
        CompareConfig(learning_rates="adam=fast")
    assert CompareConfig(learning_rates="adam=0.1, sgd=1e6").learning_rates == "adam=0.1, sgd=1e6"


def test_the_compare_options_name_every_train_option_an_optimizer_sets() -> None:
    """What `wmf compare --help` says of the train options (the base of every run) is what
    the study changes in them: each optimizer's own, and those the compare options stand in for."""
    from wmf.stages import compare as declaration
    from wmf.stages.compare.study import options

    base = TrainConfig(
        solver="sgd", momentum=0.5, learning_rate=0.3, iterations=7, eval_every=3, sigmoid=True
    )
    said = {*declaration.PER_OPTIMIZER, *declaration.FROM_COMPARE, *declaration.PER_RUN}
    for name in OPTIMIZERS:
        run = options(name, base, CompareConfig(steps=9, compare_eval_every=2), cells=100)
        changed = {f for f in vars(base) if getattr(run, f) != getattr(base, f)}
        assert changed <= said, (name, changed - said)
        assert (run.iterations, run.eval_every, run.refit) == (9, 2, False)


@pytest.mark.prefect
def test_compare_command_publishes_and_caches(tiny_raw: Path, tmp_path: Path, prefect_server, capsys) -> None:
    data = tmp_path / "data"
    code, _, err = wmf(
        "run", "--raw", str(tiny_raw), "--data", str(data), "--factors", "8", "--iterations", "2"
    )
    assert code == 0, err
    study = ["--optimizers", "adam,als", "--steps", "4", "--factors", "8"]
    code, summary, err = wmf("compare", "--data", str(data), *study)
    assert code == 0, err
    assert summary["stages"]["compare"]["state"] == "Completed"
    published = data / "compare" / "latest"
    assert pl.read_parquet(published / "comparison.parquet").height == 8
    assert store.read_manifest(published)["config"]["compare"]["optimizers"] == "adam,als"
    code, summary, _ = wmf("compare", "--data", str(data), *study)
    assert code == 0 and summary["stages"]["compare"]["state"] == "Cached"
    assert main(["compare", "--data", str(data), "--optimizers", "lbfgs"]) == 2  # before any run
    assert "unknown optimizer lbfgs" in capsys.readouterr().err
