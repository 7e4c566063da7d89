"""The train stage's refit: evaluate on the holdout, then publish a model trained on everything."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wmf.config import TrainConfig
from wmf.data.interactions import load_all, load_holdout, load_train
from wmf.evaluation.metrics import split_stderr
from wmf.layout import Train
from wmf.model.factorization import MatrixFactorization
from wmf.stages.train.fit import train

CONFIG = TrainConfig(factors=8, iterations=3, refit_iterations=2, device="cpu")


def run(index_dir: Path, out: Path, config: TrainConfig, **kwargs) -> dict:
    out.mkdir()
    return train(index_dir, out, config, progress=False, **kwargs)


def evaluated_model(index_dir: Path, config: TrainConfig) -> MatrixFactorization:
    holdout = load_holdout(index_dir)
    return MatrixFactorization(config).fit(load_train(index_dir), holdout=holdout, progress=False)


def test_refit_continues_on_every_interaction_from_the_evaluated_factors(tiny_index, tmp_path):
    result = run(tiny_index, tmp_path / "out", CONFIG)
    published = MatrixFactorization.load(tmp_path / "out")
    evaluated = evaluated_model(tiny_index, CONFIG)
    expected = MatrixFactorization(CONFIG).fit(
        load_all(tiny_index), init=(evaluated.U, evaluated.V), iterations=2, progress=False
    )
    assert torch.equal(published.U, expected.U) and torch.equal(published.V, expected.V)
    assert not torch.equal(published.U, evaluated.U)
    # the metrics are the evaluated model's, and say so
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    means, stderr = split_stderr(evaluated.metrics)
    assert metrics["model"] == means == result["metrics"] and metrics["stderr"] == stderr
    assert metrics["refit"] is True and metrics["evaluated_model"].startswith("pre-refit")
    assert metrics["n_users_evaluated"] > 0 and metrics["ks"] == [10, 20, 50, 100]
    assert result["iterations"] == 3 and result["refit_iterations"] == 2


def test_no_refit_publishes_the_evaluated_model(tiny_index, tmp_path):
    config = dataclasses.replace(CONFIG, refit=False)
    result = run(tiny_index, tmp_path / "out", config)
    published = MatrixFactorization.load(tmp_path / "out")
    evaluated = evaluated_model(tiny_index, config)
    assert torch.equal(published.U, evaluated.U)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["refit"] is False and metrics["evaluated_model"].startswith("the published model")
    assert result["refit_iterations"] == 0
    assert {r["phase"] for r in json.loads((tmp_path / "out" / "history.json").read_text())} == {"train"}


class Crash(Exception):
    pass


def test_a_crash_during_the_refit_resumes_to_the_same_model(tiny_index, tmp_path):
    run(tiny_index, tmp_path / "full", CONFIG)

    def crash(_model: MatrixFactorization, record: dict) -> None:
        if record["phase"] == "refit" and record["iteration"] == 1:
            raise Crash

    ckpt = tmp_path / "checkpoints"
    with pytest.raises(Crash):
        run(tiny_index, tmp_path / "crashed", CONFIG, checkpoint_dir=ckpt, callback=crash)
    assert (ckpt / Train.REFIT).is_dir()
    seen: list[tuple[str, int]] = []
    run(
        tiny_index,
        tmp_path / "resumed",
        CONFIG,
        checkpoint_dir=ckpt,
        callback=lambda _m, r: seen.append((r["phase"], r["iteration"])),
    )
    assert seen == [("refit", 2)]
    full, resumed = (MatrixFactorization.load(tmp_path / d) for d in ("full", "resumed"))
    assert torch.equal(full.U, resumed.U) and torch.equal(full.V, resumed.V)


def test_refit_initial_factors_must_fit_the_data(tiny_index):
    with pytest.raises(ValueError, match="do not fit"):
        MatrixFactorization(CONFIG).fit(
            load_all(tiny_index), init=(torch.zeros(3, 8), torch.zeros(4, 8)), progress=False
        )


def test_evaluation_scores_a_fixed_sample_of_held_out_users_with_standard_errors(tiny_index, tmp_path):
    holdout_users = len(np.unique(load_holdout(tiny_index)[0]))
    config = dataclasses.replace(CONFIG, eval_users=5)
    run(tiny_index, tmp_path / "a", config)
    run(tiny_index, tmp_path / "b", config)
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert holdout_users > 5 and a["n_users_evaluated"] == 5 and a == b  # the same sample every run
    assert set(a["stderr"]) == {k for k in a["model"] if not k.startswith("coverage")}
    assert a["stderr"]["ndcg@100"] > 0
    every = dataclasses.replace(config, eval_users=0)
    run(tiny_index, tmp_path / "c", every)
    c = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert c["n_users_evaluated"] == holdout_users
    assert c["stderr"]["ndcg@100"] < a["stderr"]["ndcg@100"]  # more users, a tighter estimate
