"""Option values checked before anything runs: one `ConfigError` naming the option as typed, the
value and what is expected, whether the value comes from the command line, a config file or
flow parameters; and the command line's --version and --verbose."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli.parser import build_parser, parse_args
from wmf import configfile
from wmf.config import (
    CompareConfig,
    ExportConfig,
    IndexConfig,
    IngestConfig,
    PipelineConfig,
    RunConfig,
    TrainConfig,
    TuneConfig,
)
from wmf.errors import ConfigError, WmfError
from wmf.values import parse_factor_choices, parse_learning_rates, parse_metric, parse_optimizers

WMF = Path(sys.executable).with_name("wmf")


def refused(cls: type, **values) -> str:
    with pytest.raises(ConfigError) as error:
        cls(**values)
    return str(error.value)


@pytest.mark.parametrize("until", ["2005-13-01", "2005-02-30", "30/06/2005", "20050101", "2005-1-1", " "])
def test_until_is_empty_or_a_real_date(until: str) -> None:
    assert refused(IndexConfig, until=until).startswith(f"--until {until!r}: expected a ")
    assert IndexConfig(until="2005-12-31").until == "2005-12-31" and IndexConfig(until="").until == ""
    assert "month must be in 1..12" in refused(IndexConfig, until="2005-13-01")


@pytest.mark.parametrize(
    ("cls", "name", "bad", "good"),
    [
        (IndexConfig, "holdout_fraction", [0.0, 1.0, 1.5, -0.1], [0.5]),
        (TuneConfig, "validation_fraction", [0.0, 1.0], [0.1]),
        (IngestConfig, "max_shrink", [-0.1, 1.5], [0.0, 1.0]),
        (TrainConfig, "momentum", [-0.1, 1.0], [0.0, 0.9]),
        (CompareConfig, "sgd_momentum", [1.0], [0.0]),
    ],
)
def test_fractions_shares_and_momenta_stay_in_their_range(cls, name, bad, good) -> None:
    for value in bad:
        assert refused(cls, **{name: value}).startswith(f"--{name.replace('_', '-')} {value!r}: expected a ")
    for value in good:
        assert getattr(cls(**{name: value}), name) == value


@pytest.mark.parametrize(
    ("cls", "name", "low"),
    [
        (TrainConfig, "factors", 1),
        (TrainConfig, "iterations", 1),
        (TrainConfig, "cg_steps", 1),
        (TrainConfig, "eval_k", 1),
        (TrainConfig, "patience", 1),
        (TrainConfig, "eval_users", 0),
        (TrainConfig, "eval_every", 0),
        (TrainConfig, "refit_iterations", 0),
        (TrainConfig, "warm_iterations", 0),
        (IndexConfig, "min_user_ratings", 0),
        (IndexConfig, "holdout_min_user_ratings", 0),
        (ExportConfig, "top_k", 1),
        (ExportConfig, "similar_k", 1),
        (ExportConfig, "keep", 1),
        (ExportConfig, "batch_users", 1),
        (TuneConfig, "trials", 1),
        (TuneConfig, "trial_iterations", 1),
        (TuneConfig, "trial_patience", 1),
        (TuneConfig, "folds", 0),
        (TuneConfig, "startup_trials", 0),
        (CompareConfig, "steps", 1),
        (CompareConfig, "sweep_steps", 1),
        (RunConfig, "retries", 0),
        (RunConfig, "keep_stage_outputs", 1),
    ],
)
def test_counts_have_their_least_meaningful_value(cls, name, low) -> None:
    message = refused(cls, **{name: low - 1})
    assert message == f"--{name.replace('_', '-')} {low - 1}: expected a whole number >= {low}"
    assert getattr(cls(**{name: low}), name) == low


@pytest.mark.parametrize(
    ("cls", "name", "bad"),
    [
        (TrainConfig, "unobserved_weight", -0.1),
        (TrainConfig, "regularization", -1.0),
        (TrainConfig, "alpha", -1.0),
        (TrainConfig, "learning_rate", 0.0),
        (TrainConfig, "init_scale", 0.0),
        (TuneConfig, "unobserved_weight_min", 0.0),
        (TuneConfig, "alpha_max", -1.0),
        (TuneConfig, "timeout_minutes", -1.0),
        (CompareConfig, "seconds", -1.0),
        (CompareConfig, "compare_learning_rate", -0.1),
        (RunConfig, "retry_delay_seconds", -1.0),
        (IndexConfig, "min_rating", 6),
    ],
)
def test_weights_rates_and_budgets_are_not_negative(cls, name, bad) -> None:
    assert refused(cls, **{name: bad}).startswith(f"--{name.replace('_', '-')} {bad!r}: expected a ")


def test_a_search_range_runs_upwards() -> None:
    message = refused(TuneConfig, regularization_min=10.0, regularization_max=1.0)
    assert message == "--regularization-min 10.0: expected at most --regularization-max (1.0)"


@pytest.mark.parametrize("text", ["", "32,x", "0,32", "32,-4", "8.5", ","])
def test_factor_choices_are_positive_whole_numbers(text: str) -> None:
    assert "comma-separated list of positive whole numbers" in refused(TuneConfig, factor_choices=text)
    assert parse_factor_choices(" 8, 16 ,") == [8, 16]


@pytest.mark.parametrize("text", ["lbfgs", "", "adam,,lbfgs", "adam;als"])
def test_compare_optimizers_are_known(text: str) -> None:
    assert refused(CompareConfig, optimizers=text).startswith(
        f"--optimizers {text!r}: expected a comma-separated list"
    )
    assert parse_optimizers("adam, als") == ["adam", "als"]


@pytest.mark.parametrize("text", ["als=1", "adam", "adam=fast", "adam=-1", "nadam=0.1"])
def test_learning_rates_are_rates_of_gradient_optimizers(text: str) -> None:
    assert "NAME=RATE" in refused(CompareConfig, learning_rates=text)
    assert parse_learning_rates("adam=0.05, sgd=1e6") == {"adam": 0.05, "sgd": 1e6}


@pytest.mark.parametrize("text", ["auc", "ndcg", "ndcg@", "ndcg@0", "ndcg@x", "coverage@10", "NDCG@10"])
def test_metrics_are_a_known_name_at_a_cut_off(text: str) -> None:
    assert refused(TuneConfig, metric=text).startswith(
        f"--metric {text!r}: expected NAME@K with NAME one of recall"
    )
    assert "or empty (no early stopping)" in refused(TrainConfig, early_stopping_metric=text)
    assert parse_metric("map@50") == ("map", 50)


def test_a_metric_s_cut_off_is_one_the_evaluation_computes() -> None:
    assert "a cut-off the evaluation computes: 10, 20, 50, 100 or --eval-k (20)" in refused(
        TrainConfig, early_stopping_metric="ndcg@30"
    )
    assert TrainConfig(early_stopping_metric="ndcg@30", eval_k=30).eval_k == 30
    with pytest.raises(ConfigError, match="--metric 'recall@30': expected a cut-off"):
        PipelineConfig(tune=TuneConfig(metric="recall@30"))
    assert PipelineConfig(tune=TuneConfig(metric="recall@30"), train=TrainConfig(eval_k=30))


def test_types_choices_and_the_sigmoid_solver() -> None:
    assert refused(TrainConfig, factors="8") == "--factors '8': expected int, got str"
    assert refused(TrainConfig, factors=True) == "--factors True: expected int, got bool"
    assert (
        refused(TrainConfig, solver="lbfgs")
        == "--solver 'lbfgs': expected one of als, adam, adamw, adagrad, sgd"
    )
    assert "--sigmoid needs a gradient --solver" in refused(TrainConfig, sigmoid=True)
    assert TrainConfig(regularization=5).regularization == 5  # an int will do for a float


def test_a_bad_value_is_the_same_error_from_the_cli_a_file_and_flow_parameters(tmp_path: Path) -> None:
    cli = ["run", "--raw", "r", "--data", "d"]
    with pytest.raises(ConfigError) as typed:
        parse_args([*cli, "--until", "2005-13-01"])
    with pytest.raises(ConfigError) as flow:
        PipelineConfig.from_dict({"index": {"until": "2005-13-01"}})
    expected = "expected a real date as YYYY-MM-DD (month must be in 1..12), or empty (every rating)"
    assert str(typed.value) == str(flow.value) == f"--until '2005-13-01': {expected}"
    path = tmp_path / "wmf.toml"
    path.write_text('[index]\nuntil = "2005-13-01"\n')
    with pytest.raises(ConfigError) as file:
        configfile.load(path)
    assert str(file.value) == f"{path}: [index] until = '2005-13-01': {expected}"
    with pytest.raises(ConfigError, match=r"^--top-k 0: expected a whole number >= 1$"):
        parse_args([*cli, "--top-k", "0"])
    path.write_text("[run]\nretries = -1\n")
    with pytest.raises(ConfigError, match=r"\[run\] retries = -1: expected a whole number >= 0"):
        parse_args([*cli, "--config", str(path)])
    with pytest.raises(ConfigError, match="--retries -1"):
        parse_args([*cli, "--retries", "-1"])
    assert issubclass(ConfigError, WmfError)


def test_the_cli_refuses_a_bad_date_at_once_without_touching_data(tmp_path: Path) -> None:
    raw, data = tmp_path / "raw", tmp_path / "d"
    raw.mkdir()
    started = time.monotonic()
    done = subprocess.run(
        [str(WMF), "run", "--raw", str(raw), "--data", str(data), "--until", "2005-13-01"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 5
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wmf: --until '2005-13-01'"), done.stderr
    assert not data.exists()


def test_version_prints_the_installed_package_s() -> None:
    done = subprocess.run([str(WMF), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout == f"wmf {importlib.metadata.version('wmf')}\n"


def test_every_command_that_runs_flows_takes_verbose() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    takes = {name for name, p in sub.choices.items() if any(a.dest == "verbose" for a in p._actions)}
    assert takes == set(sub.choices) - {"generate", "status", "serve"}
    args = parse_args(["train", "--data", "d", "--verbose"])
    assert args.verbose is True and parse_args(["demo"]).verbose is False
    help_text = next(a.help for a in sub.choices["run"]._actions if a.dest == "verbose")
    assert (
        help_text == "also print Prefect's log and tracebacks on the console (they always go to DATA/logs/)"
    )


def test_every_field_has_its_check_or_is_free() -> None:
    """A field without a check takes any value of its type: a seed, a switch, a choice."""
    free = {"split_seed", "seed", "tune_seed"}
    for cls in configfile.SECTIONS.values():
        for f in dataclasses.fields(cls):
            checked = f.metadata.get("check") or f.metadata.get("choices") or isinstance(f.default, bool)
            assert checked or f.name in free, f"{cls.__name__}.{f.name} has no check"


def test_the_known_names_are_those_the_code_computes_and_runs() -> None:
    """The metric names an option may give are those every evaluation computes, at every
    cut-off; the optimizer names are those `wmf compare` has train options for."""
    import numpy as np

    from wmf.evaluation.metrics import ranking_metrics
    from wmf.stages.compare import OPTIMIZERS as COMPARED
    from wmf.values import EVALUATED_KS, OPTIMIZERS, RANKING_METRICS

    items = np.arange(100, dtype=np.int32).reshape(1, 100)
    metrics = ranking_metrics(items, np.array([0]), (np.array([0]), np.array([3])), 100, EVALUATED_KS)
    assert {f"{name}@{k}" for name in RANKING_METRICS for k in EVALUATED_KS} <= set(metrics)
    assert tuple(COMPARED) == OPTIMIZERS
