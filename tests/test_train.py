"""The training loop: resumable, deterministic, persistent, and better than popularity."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from helpers_train import planted, random_interactions

from wmf.config import TrainConfig
from wmf.layout import Train
from wmf.model.factorization import MatrixFactorization

SMALL = TrainConfig(factors=8, iterations=5, device="cpu", unobserved_weight=0.05)


class Crash(Exception):
    pass


def crash_after(n: int):
    def callback(model: MatrixFactorization, record: dict) -> None:
        if record["iteration"] == n:
            raise Crash

    return callback


@pytest.mark.parametrize(
    "config",
    [SMALL, dataclasses.replace(SMALL, solver="adam", learning_rate=0.01)],
    ids=["als", "adam"],
)
def test_resume_after_crash_gives_identical_factors(tmp_path, config):
    train = random_interactions(60, 90, density=0.1)
    full = MatrixFactorization(config).fit(train, progress=False)
    with pytest.raises(Crash):
        MatrixFactorization(config).fit(
            train, checkpoint_dir=tmp_path, progress=False, callback=crash_after(2)
        )
    assert (tmp_path / Train.CHECKPOINT).exists()
    resumed = MatrixFactorization(config)
    iterations_run = []
    resumed.fit(
        train,
        checkpoint_dir=tmp_path,
        progress=False,
        callback=lambda m, r: iterations_run.append(r["iteration"]),
    )
    assert iterations_run == [3, 4, 5]
    assert torch.equal(resumed.U, full.U)
    assert torch.equal(resumed.V, full.V)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]


def test_seed_determines_factors():
    train = random_interactions(60, 90, density=0.1)
    a = MatrixFactorization(SMALL).fit(train, progress=False)
    b = MatrixFactorization(SMALL).fit(train, progress=False)
    c = MatrixFactorization(dataclasses.replace(SMALL, seed=1)).fit(train, progress=False)
    assert np.array_equal(a.user_factors, b.user_factors)
    assert not np.array_equal(a.user_factors, c.user_factors)


def test_history_records_decreasing_exact_loss():
    train = random_interactions(60, 90, density=0.1)
    model = MatrixFactorization(SMALL).fit(train, progress=False)
    losses = [r["loss"] for r in model.history]
    assert len(losses) == 5
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(losses))
    assert model.loss() == pytest.approx(losses[-1])
    assert all(r["seconds"] > 0 for r in model.history)


def test_save_load_round_trip(tmp_path):
    train = random_interactions(40, 70, density=0.1)
    model = MatrixFactorization(SMALL).fit(train, progress=False)
    model.save(tmp_path)
    described = json.loads((tmp_path / "config.json").read_text())
    assert described["n_users"] == 40 and described["factors"] == 8
    loaded = MatrixFactorization.load(tmp_path)
    assert loaded.config == SMALL
    assert loaded.user_factors.dtype == np.float32
    assert np.array_equal(loaded.user_factors, model.user_factors)
    assert np.array_equal(loaded.movie_factors, model.movie_factors)


def test_beats_popularity_on_planted_data():
    train, holdout = planted(n_users=600, n_movies=300, rank=4, per_user=30, seed=0)
    config = TrainConfig(factors=16, iterations=10, device="cpu", unobserved_weight=0.05, regularization=0.05)
    model = MatrixFactorization(config).fit(train, holdout=holdout, progress=False)
    for metric in ("recall@20", "ndcg@100"):
        assert model.metrics[metric] > 1.2 * model.popularity[metric], metric
        assert model.history[-1]["metrics"][metric] == model.metrics[metric]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("solver", ["als", "adam"])
def test_cuda_loss_curve_matches_cpu(solver):
    train = random_interactions(300, 500, density=0.05)
    config = dataclasses.replace(SMALL, factors=16, solver=solver, learning_rate=0.01)
    cpu = MatrixFactorization(config).fit(train, progress=False)
    cuda = MatrixFactorization(dataclasses.replace(config, device="cuda")).fit(train, progress=False)
    np.testing.assert_allclose([r["loss"] for r in cuda.history], [r["loss"] for r in cpu.history], rtol=1e-4)
    np.testing.assert_allclose(cuda.user_factors, cpu.user_factors, rtol=1e-3, atol=1e-4)


def test_train_stage_writes_model_history_and_metrics(tmp_path):
    from wmf.config import IndexConfig, IngestConfig
    from wmf.data.generate import generate
    from wmf.data.interactions import load_train
    from wmf.stages.index.build import build_index
    from wmf.stages.ingest.parse import ingest
    from wmf.stages.train.fit import train

    for stage in ("ingest", "index", "out"):  # stages write into an existing empty dir
        (tmp_path / stage).mkdir()
    generate(tmp_path / "raw", scale=0.001, progress=False)
    ingest(tmp_path / "raw", tmp_path / "ingest", IngestConfig(), progress=False)
    build_index(tmp_path / "ingest", tmp_path / "index", IndexConfig(), progress=False)
    config = TrainConfig(factors=8, iterations=3, device="cpu")
    result = train(tmp_path / "index", tmp_path / "out", config, progress=False)

    assert result["iterations"] == 3 and result["device"] == "cpu"
    assert set(result["metrics"]) >= {"recall@20", "ndcg@100"}
    assert set(result["popularity"]) >= {"recall@20", "ndcg@100"}
    for name in result["files"].values():
        assert (tmp_path / "out" / name).is_file()
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    # evaluated after 3 iterations, then refit on every interaction for the default 5
    assert [(r["phase"], r["iteration"]) for r in history] == [("train", i) for i in (1, 2, 3)] + [
        ("refit", i) for i in range(1, 6)
    ]
    assert result["refit_iterations"] == 5
    assert history[-1]["loss"] == result["final_loss"]
    model = MatrixFactorization.load(tmp_path / "out")
    assert model.user_factors.shape == (load_train(tmp_path / "index").n_users, 8)


def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path):
    train, holdout = planted(n_users=300, n_movies=200, rank=4, per_user=30, seed=1)
    config = TrainConfig(
        factors=8,
        iterations=40,
        device="cpu",
        eval_every=1,
        early_stopping_metric="ndcg@20",
        patience=2,
    )
    model = MatrixFactorization(config).fit(train, holdout=holdout, checkpoint_dir=tmp_path, progress=False)
    values = [r["metrics"]["ndcg@20"] for r in model.history]
    assert len(values) < 40
    best_before = max(values[:-2])
    assert all(v <= best_before for v in values[-2:])
    # a rerun over its checkpoint stays stopped
    again = MatrixFactorization(config)
    again.fit(train, holdout=holdout, checkpoint_dir=tmp_path, progress=False)
    assert len(again.history) == len(values)
