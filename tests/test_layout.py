"""Architecture rules: the core library never imports Prefect; --help shows every parameter."""

from __future__ import annotations

import dataclasses
import pkgutil
import subprocess
import sys

import pytest

import wmf
from flows.cli import build_parser
from wmf.config import STAGE_CONFIGS, PipelineConfig, TrainConfig


def test_core_does_not_import_prefect() -> None:
    modules = [m.name for m in pkgutil.iter_modules(wmf.__path__, "wmf.")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] == 'prefect'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_every_config_field(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    run_help = capsys.readouterr().out
    for cls in STAGE_CONFIGS.values():
        for f in dataclasses.fields(cls):
            assert "--" + f.name.replace("_", "-") in run_help


def test_cli_options_reach_the_config() -> None:
    from flows.cli import _config_from

    args = build_parser().parse_args(
        ["run", "--raw", "r", "--data", "d", "--factors", "16", "--scale-regularization", "--top-k", "5"]
    )
    config = _config_from(args)
    assert config.train.factors == 16 and config.train.scale_regularization
    assert config.export.top_k == 5
    assert config.train.unobserved_weight == TrainConfig().unobserved_weight
    assert PipelineConfig.from_dict(config.to_dict()) == config
