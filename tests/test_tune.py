"""`wmf tune` core: the validation split, the search loop, its outputs and its resumption."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import polars as pl
import pytest
from helpers_plots import drawn
from helpers_train import random_interactions

from wmf import configfile
from wmf.config import TrainConfig, TuneConfig
from wmf.data.interactions import load_holdout, load_train, sample_users
from wmf.errors import WmfError
from wmf.layout import Tune
from wmf.stages.tune.search import (
    TrialJob,
    n_folds,
    open_study,
    run_trial,
    tune,
    validation_split,
)

SEARCH = TuneConfig(trials=3, trial_iterations=4, startup_trials=2, validation_users=0)
BASE = TrainConfig(device="cpu")


def pairs(indptr: np.ndarray, indices: np.ndarray) -> set[tuple[int, int]]:
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return set(zip(rows.tolist(), indices.tolist(), strict=True))


def test_validation_split_partitions_the_training_interactions():
    train = random_interactions(80, 60, density=0.2, seed=4)
    fit, (users, movies) = validation_split(train, SEARCH)
    held = set(zip(users.tolist(), movies.tolist(), strict=True))
    kept = pairs(fit.indptr, fit.indices)
    assert kept | held == pairs(train.indptr, train.indices) and not kept & held
    share = len(held) / train.nnz
    assert 0.15 < share < 0.25
    assert fit.shape == train.shape and len(fit.ratings) == fit.nnz
    again = validation_split(train, SEARCH)[1]
    np.testing.assert_array_equal(again[0], users)
    other = validation_split(train, dataclasses.replace(SEARCH, tune_seed=1))[1]
    assert set(zip(*other, strict=True)) != held


def test_folds_are_independent_splits_and_their_number_follows_the_validation_users():
    train = random_interactions(80, 60, density=0.2, seed=4)
    first, second = (set(zip(*validation_split(train, SEARCH, fold)[1], strict=True)) for fold in (0, 1))
    assert first != second and first & second  # random, not disjoint: each fold is a fresh split
    auto = dataclasses.replace(SEARCH, folds=0, validation_users=5000)
    assert n_folds(auto, 943) == 5 and n_folds(auto, 2000) == 3 and n_folds(auto, 48_000) == 1
    assert n_folds(dataclasses.replace(auto, validation_users=0), 943) == 1
    assert n_folds(dataclasses.replace(auto, folds=2), 48_000) == 2


def job_of(index, journal, trial: optuna.Trial, train: TrainConfig, search: TuneConfig) -> TrialJob:
    """The job of an asked trial, as the search loop builds it."""
    return TrialJob(
        str(index),
        str(journal),
        "wmf-tune",
        trial._trial_id,
        trial.number,
        dataclasses.asdict(train),
        dataclasses.asdict(search),
    )


def test_a_trial_is_judged_by_the_mean_of_its_folds(tiny_index, tmp_path):
    search = dataclasses.replace(SEARCH, folds=3)
    journal = tmp_path / "study.journal"
    study = open_study(journal, "wmf-tune", search)
    train = dataclasses.replace(BASE, iterations=3, eval_every=1, early_stopping_metric="ndcg@100", factors=8)

    def trial_of(folds: int) -> dict:
        config = dataclasses.replace(search, folds=folds)
        return run_trial(job_of(tiny_index, journal, study.ask(), train, config))

    three, one = trial_of(3), trial_of(1)
    assert three["state"] == "COMPLETE" and three["folds"] == 3 and three["iterations"] == 9
    assert one["folds"] == 1 and three["value"] != one["value"]  # the other folds' splits moved the mean


def test_sample_users_keeps_every_pair_of_the_chosen_users():
    holdout = (np.repeat(np.arange(10, dtype=np.int32), 3), np.tile(np.arange(3, dtype=np.int32), 10))
    users, _ = sample_users(holdout, 4, seed=0)
    assert len(np.unique(users)) == 4 and len(users) == 12
    assert sample_users(holdout, 0, seed=0) is holdout


def counting(calls: list[int]):
    def mapper(function, jobs):
        calls.extend(job.number for job in jobs)
        return [function(job) for job in jobs]

    return mapper


def test_search_publishes_best_options_trials_and_plot(tiny_index, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    calls: list[int] = []
    summary = tune(
        tiny_index, out, SEARCH, BASE, tmp_path / "study.journal", mapper=counting(calls), progress=False
    )
    assert calls == [0, 1, 2]
    trials = pl.read_parquet(out / Tune.TRIALS)
    assert trials.height == 3 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert (trials["iterations"] <= 4).all() and (trials["seconds"] > 0).all()
    assert trials.filter(pl.col("state") == "COMPLETE")["value"].max() == summary["best_value"]
    best = configfile.load(out / Tune.BEST)
    assert set(best) == {"train"}
    options = best["train"]
    assert options["factors"] in (32, 64, 128) and 1 <= options["iterations"] <= 4
    assert SEARCH.unobserved_weight_min <= options["unobserved_weight"] <= SEARCH.unobserved_weight_max
    low, high = (
        (SEARCH.scaled_regularization_min, SEARCH.scaled_regularization_max)
        if options["scale_regularization"]
        else (SEARCH.regularization_min, SEARCH.regularization_max)
    )
    assert low <= options["regularization"] <= high
    size, colours = drawn(out / Tune.PLOT)
    assert size == (1200, 340) and "C0" in colours  # the trials, and the metric against each option
    assert summary["tables"]["trials"]["rows"] == 3


def test_search_resumes_its_study_and_fails_trials_a_kill_left_running(tiny_index, tmp_path):
    journal = tmp_path / "study.journal"
    first = tmp_path / "first"
    first.mkdir()
    tune(tiny_index, first, dataclasses.replace(SEARCH, trials=2), BASE, journal, progress=False)
    open_study(journal, "wmf-tune", SEARCH).ask()  # a trial whose process was killed
    second = tmp_path / "second"
    second.mkdir()
    calls: list[int] = []
    tune(tiny_index, second, SEARCH, BASE, journal, mapper=counting(calls), progress=False)
    assert calls == [3]  # trials 0 and 1 are reused, 2 was left running
    states = pl.read_parquet(second / Tune.TRIALS).sort("number")["state"].to_list()
    assert states[2] == "FAIL" and len(states) == 4


def test_trials_never_see_the_evaluation_holdout(tiny_index, tmp_path, monkeypatch):
    import wmf.stages.tune.search as tune_module

    seen: list[set[tuple[int, int]]] = []
    real_split = tune_module.validation_split

    def spy(train, config, fold=0):
        fit, validation = real_split(train, config, fold)
        seen.append(pairs(fit.indptr, fit.indices) | set(zip(*validation, strict=True)))
        return fit, validation

    monkeypatch.setattr(tune_module, "validation_split", spy)
    out = tmp_path / "out"
    out.mkdir()
    search = dataclasses.replace(SEARCH, trials=1, folds=2)
    tune(tiny_index, out, search, BASE, tmp_path / "j", progress=False)
    train = load_train(tiny_index)
    holdout = set(zip(*load_holdout(tiny_index), strict=True))
    assert seen == [pairs(train.indptr, train.indices)] * 2 and not seen[0] & holdout


def test_a_trial_stops_at_the_first_iteration_the_pruner_rejects(tiny_index, tmp_path, monkeypatch):
    # a pruner that rejects every value above 0, in place of the median pruner
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **_: optuna.pruners.ThresholdPruner(upper=0.0))
    journal = tmp_path / "study.journal"
    trial = open_study(journal, "wmf-tune", SEARCH).ask()
    train = dataclasses.replace(BASE, iterations=4, eval_every=1, early_stopping_metric="ndcg@100", factors=8)
    result = run_trial(job_of(tiny_index, journal, trial, train, SEARCH))
    assert result["state"] == "PRUNED" and result["iterations"] == 1 and result["value"] > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trials": 0}, "--trials"),
        ({"metric": "auc"}, "--metric"),
        ({"validation_fraction": 1.0}, "fraction"),
    ],
)
def test_bad_search_options_fail_clearly(tiny_index, tmp_path, change, message):
    with pytest.raises(WmfError, match=message):
        tune(
            tiny_index, tmp_path, dataclasses.replace(SEARCH, **change), BASE, tmp_path / "j", progress=False
        )


def test_the_search_starts_from_the_given_train_options(tiny_index, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    base = TrainConfig(device="cpu", factors=64, unobserved_weight=0.2, regularization=3.0, alpha=0.5)
    tune(tiny_index, out, dataclasses.replace(SEARCH, trials=1), base, tmp_path / "j", progress=False)
    first = pl.read_parquet(out / Tune.TRIALS).row(0, named=True)
    assert {k: first[k] for k in ("factors", "unobserved_weight", "regularization", "alpha")} == {
        "factors": 64,
        "unobserved_weight": 0.2,
        "regularization": 3.0,
        "alpha": 0.5,
    }
    assert first["scale_regularization"] is False
