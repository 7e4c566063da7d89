"""Options from a TOML file grouped by stage: precedence, validation, the writer, the flow."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest
from helpers_options import NEEDS, another

from flows.cli import main
from flows.cli.parser import build_parser, config_from, parse_args, run_config_from
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[export]\ndevice = "cpu"\n', "[export] device is now called export_device"),
        ("[tune]\npatience = 3\n", "[tune] patience is now called trial_patience"),
        ("[tune]\nmax_iterations = 3\n", "[tune] max_iterations is now called trial_iterations"),
        ('[tune]\nfactors = "8,16"\n', "[tune] factors is now called factor_choices"),
        ("[tune]\nseed = 1\n", "[tune] seed is now called tune_seed"),
        ("[compare]\niterations = 5\n", "[compare] iterations is now called steps"),
        ("[compare]\nlearning_rate = 0.1\n", "[compare] learning_rate is now called compare_learning_rate"),
        ("[compare]\nmomentum = 0.5\n", "[compare] momentum is now called sgd_momentum"),
        ("[compare]\neval_every = 5\n", "[compare] eval_every is now called compare_eval_every"),
        ("[compare]\nsweep_iterations = 5\n", "[compare] sweep_iterations is now called sweep_steps"),
        (
            '[train]\nexport_device = "cpu"\n',
            "[train] export_device is an option of [export], not of [train]",
        ),
    ],
)
def test_an_old_or_misplaced_key_names_its_new_name_or_section(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as error:
        configfile.load(path)
    assert str(error.value).startswith(f"{path}: {expected}")


def test_every_renamed_key_names_an_option_of_its_section() -> None:
    for section, renamed in configfile.RENAMED.items():
        fields = {f.name for f in dataclasses.fields(configfile.SECTIONS[section])}
        assert set(renamed.values()) <= fields and not set(renamed) & fields, section


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _required(parser: argparse.ArgumentParser) -> list[str]:
    values = {"--start": "2005-01-01"}
    return [
        arg
        for a in parser._actions
        if a.required
        for arg in (a.option_strings[0], values.get(a.option_strings[0], "x"))
    ]


@pytest.mark.parametrize("command", list(_commands()))
def test_every_option_of_every_command_is_a_key_of_its_section_in_a_file(
    tmp_path: Path, command: str
) -> None:
    """Each option mapping to a config field is accepted in a file under its name (dashes as
    underscores), in its section, and its value from the file reaches the parsed config."""
    parser = _commands()[command]
    fields = {
        f"{cls.__name__}.{f.name}": (section, f)
        for section, cls in configfile.SECTIONS.items()
        for f in dataclasses.fields(cls)
    }
    offered = [a for a in parser._actions if a.dest in fields]
    if not offered:
        assert command in ("generate", "demo"), command  # the only commands without config options
        return
    for action in offered:
        section, f = fields[action.dest]
        assert action.option_strings[0] == "--" + f.name.replace("_", "-")
        assert configfile.OWNERS[f.name] == section
        value = another(f)
        options = {section: {f.name: value}}
        for name, needed in NEEDS.get(f.name, {}).items():
            options.setdefault(configfile.OWNERS[name], {})[name] = needed
        path = write(tmp_path, configfile.dumps(options))
        args = parse_args([command, *_required(parser), "--config", str(path)])
        parsed = run_config_from(args) if section == "run" else getattr(config_from(args), section)
        assert getattr(parsed, f.name) == value, (command, f.name)
