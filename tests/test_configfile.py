"""Options from a TOML file grouped by stage: precedence, validation, the writer, the flow."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from flows.cli import main
from flows.cli.parser import config_from, parse_args, run_config_from
from wmf import configfile, store
from wmf.config import PipelineConfig, RunConfig, TrainConfig
from wmf.configfile import ConfigFileError

TUNED = """\
[index]
holdout = "none"

[train]
factors = 128
regularization = 5

[run]
retries = 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wmf.toml"
    path.write_text(text)
    return path


def test_file_values_reach_the_stage_configs_and_flags_override_them(tmp_path: Path) -> None:
    path = write(tmp_path, TUNED)
    args = parse_args(["run", "--raw", "r", "--data", "d", "--config", str(path), "--factors", "32"])
    config = config_from(args)
    assert config.index.holdout == "none"
    assert config.train.factors == 32  # the flag beats the file
    assert config.train.regularization == 5.0 and isinstance(config.train.regularization, float)
    assert config.train.iterations == TrainConfig().iterations  # neither: the default
    assert run_config_from(args).retries == 0


def test_help_shows_the_file_values_as_defaults(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, TUNED)
    with pytest.raises(SystemExit) as exit_:
        parse_args(["run", "--config", str(path), "--help"])
    assert exit_.value.code == 0
    run_help = " ".join(capsys.readouterr().out.split())
    assert re.search(r"--factors FACTORS embedding dimension d \(default: 128\)", run_help)
    assert re.search(r"--holdout \{none,random,temporal,probe\} .*? \(default: none\)", run_help)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[trian]\nfactors = 8\n", "unknown section 'trian'; did you mean 'train'?"),
        ("train = 8\n", "train must be a table ([train])"),
        ("[train]\nfactor = 8\n", "[train] unknown key 'factor'; did you mean 'factors'?"),
        ('[train]\nfactors = "8"\n', "[train] factors = '8': expected int, got str"),
        ("[train]\nfactors = true\n", "[train] factors = True: expected int, got bool"),
        ("[train]\nfactors = 8.5\n", "[train] factors = 8.5: expected int, got float"),
        ('[index]\nholdout = "sometimes"\n', "expected one of none, random, temporal, probe"),
        ("[run]\nretries = [1]\n", "[run] retries = [1]: expected int, got list"),
        (
            "[train]\nfactors = 8\nfactors 9\n",
            "not valid TOML: Expected '=' after a key in a key/value pair (at line 3, column 9)",
        ),
    ],
)
def test_a_bad_file_is_a_clear_error_naming_it(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as error:
        configfile.load(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_the_cli_reports_a_bad_file_and_exits_2(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "[train]\nfactor = 8\n")
    assert main(["run", "--raw", "r", "--data", "d", "--config", str(path)]) == 2
    assert capsys.readouterr().err == f"wmf: {path}: [train] unknown key 'factor'; did you mean 'factors'?\n"
    assert main(["run", "--raw", "r", "--data", "d", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml: cannot read the config file: No such file or directory" in capsys.readouterr().err


def test_dumps_then_load_gives_the_config_back(tmp_path: Path) -> None:
    full = {**PipelineConfig().to_dict(), "run": dataclasses.asdict(RunConfig())}
    full["train"] |= {"factors": 96, "regularization": 0.25, "early_stopping_metric": "ndcg@20"}
    for config in (full, {"index": {"holdout": "none"}, "train": {"scale_regularization": True}}):
        path = write(tmp_path, configfile.dumps(config))
        loaded = configfile.load(path)
        assert loaded == config
        assert [type(v) for s in loaded.values() for v in s.values()] == [
            type(v) for s in config.values() for v in s.values()
        ]
    assert "[train]\nfactors = 96\n" in configfile.dumps(full)


def test_dumps_refuses_what_load_would_refuse() -> None:
    with pytest.raises(ConfigFileError, match="unknown key 'factor'"):
        configfile.dumps({"train": {"factor": 8}})


def test_merge_layers_section_by_section() -> None:
    merged = configfile.merge(
        {"train": {"factors": 8, "iterations": 2}, "run": {"retries": 0}}, {"train": {"factors": 16}}
    )
    assert merged == {"train": {"factors": 16, "iterations": 2}, "run": {"retries": 0}}


@pytest.mark.prefect
def test_the_flow_reads_its_config_file_under_the_explicit_config(
    tiny_raw: Path, tmp_path: Path, prefect_server
) -> None:
    from flows.pipeline import pipeline

    path = write(tmp_path, '[index]\nholdout = "none"\nmin_rating = 3\n\n[run]\nretries = 0\n')
    data = tmp_path / "data"
    summary = pipeline(
        data=str(data),
        raw=str(tiny_raw),
        config={"index": {"min_rating": 2}},
        only=["ingest", "index"],
        config_file=str(path),
    )
    params = store.read_manifest(data / "index" / "latest")["config"]
    assert (params["holdout"], params["min_rating"]) == ("none", 2)  # the file, then the config over it
    assert summary.stages["index"].outputs["holdout"]["rows"] == 0
