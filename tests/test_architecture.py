"""Architecture rules: the layers (import-linter), stages known only through the registry,
small modules, and a command line that offers every option of every stage."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_options import another, needs

import wmf
from flows.cli.parser import build_parser, config_from, parse_args
from wmf import configfile
from wmf.config import PipelineConfig, sections
from wmf.pipeline.registry import PIPELINE, SEARCHES, STAGES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("wmf", "flows", "tasks")
MAX_LINES = 400


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_import_contracts_hold() -> None:
    """The layers of pyproject.toml's [tool.importlinter], checked from the import graph."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and done.stdout.count(" KEPT") == 5


def test_core_does_not_import_prefect_even_at_run_time() -> None:
    """The static contract cannot see an import by name (importlib): importing every module can."""
    modules = [m.name for m in pkgutil.walk_packages(wmf.__path__, "wmf.")]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] == 'prefect'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_code_outside_a_stage_compares_a_stage_name() -> None:
    """What a stage does lives in its package: elsewhere, code iterates the registry."""
    names = set(STAGES)
    found = []
    for path in _sources():
        own = {part for part in path.relative_to(ROOT).parts if part in names and "stages" in path.parts}
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            for side in [node.left, *node.comparators]:
                values = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                for value in values:
                    if isinstance(value, ast.Constant) and value.value in names - own:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {value.value!r}")
    assert not found, "compares a stage's name outside its package:\n" + "\n".join(found)


def test_modules_stay_small() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by responsibility (over {MAX_LINES} lines): {long}"


def test_every_module_says_what_it_is_for() -> None:
    missing = [
        str(p.relative_to(ROOT)) for p in _sources() if ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert not missing, missing


@pytest.mark.parametrize("stage", list(STAGES.values()), ids=list(STAGES))
def test_every_stage_is_declared_completely(stage) -> None:
    """Its config is a section of PipelineConfig, its build and report modules have the hooks
    the pipeline calls, what it reads comes from stages before it, a search has its flow."""
    assert sections()[stage.name] is stage.config
    assert set(stage.sections) <= set(sections()) and set(stage.option_sections) <= set(sections())
    build = importlib.import_module(stage.build)
    assert list(inspect.signature(build.build).parameters) == ["ctx"]
    if stage.report is not None:
        report = importlib.import_module(stage.report)
        hooks = {"artifacts", "details", "lines", "figures", "history"}
        assert {n for n, f in vars(report).items() if callable(f) and n in hooks}, stage.report
    order = [s.name for s in (*PIPELINE, *SEARCHES)]
    assert all(order.index(read.stage) < order.index(stage.name) for read in stage.reads)
    fields = {f.name for f in dataclasses.fields(stage.config)}
    assert set(stage.unkeyed) <= fields
    offered = {f.name for name in stage.option_sections for f in dataclasses.fields(sections()[name])}
    for section, _role, note in stage.about_sections:  # what its --help says of another section
        assert section in stage.option_sections
        named = {flag.removeprefix("--no-").removeprefix("--") for flag in re.findall(r"--[a-z-]+", note)}
        assert {name.replace("-", "_") for name in named} <= offered, note
    if stage in SEARCHES:
        flow = getattr(importlib.import_module(f"flows.{stage.name}"), stage.name)
        assert flow.name == f"wmf-{stage.name}"


def _flags(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """dest -> option string of every option of a subcommand."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: a.option_strings[0] for a in sub._actions if a.option_strings}


@pytest.mark.parametrize("command", ["run", *STAGES])
def test_every_option_of_a_command_sets_its_own_field_and_no_other(command: str, capsys) -> None:
    """Each config field a command offers has its own flag, its name (`--until`), in --help, that
    sets that field alone: a train flag cannot stand in for an export one (`--device`,
    `--export-device`)."""
    parser = build_parser()
    flags = _flags(parser, command)
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    shown = capsys.readouterr().out
    offered = [s.config for s in PIPELINE] if command == "run" else []
    if command in STAGES:
        offered = [sections()[name] for name in STAGES[command].option_sections]
    required = ["--data", "d"] + (["--raw", "r"] if "raw" in flags else [])
    for cls in offered:
        section = next(name for name, c in sections().items() if c is cls)
        for f in dataclasses.fields(cls):
            flag = flags[f"{cls.__name__}.{f.name}"]
            assert flag == "--" + f.name.replace("_", "-") and flag in shown, flag
            base = [*required, *needs(f)]
            if isinstance(f.default, bool):  # --flag or --no-flag, whichever is not the default
                argv = [command, *base, flag if not f.default else "--no-" + flag[2:]]
            else:
                argv = [command, *base, flag, str(another(f))]
            default = config_from(parser.parse_args([command, *base]))
            config = config_from(parser.parse_args(argv))
            changed = {
                (name, g.name)
                for name in sections()
                for g in dataclasses.fields(sections()[name])
                if getattr(getattr(config, name), g.name) != getattr(getattr(default, name), g.name)
            }
            assert changed == {(section, f.name)}, (command, flag, changed)


def test_every_option_has_one_name_across_all_sections() -> None:
    """An option's flag, config-file key and field are one name, so no two sections may share one;
    configfile refuses (on import) a name given twice."""
    names = [f.name for cls in configfile.SECTIONS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))
    assert set(configfile.OWNERS) == set(names)
    clash = dataclasses.make_dataclass("Clash", [("factors", int, dataclasses.field(default=1))])
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(configfile.SECTIONS, "clash", clash)
        with pytest.raises(TypeError, match=r"'factors' is in \[train\] and \[clash\]"):
            configfile.owners()


def test_config_round_trips_through_the_command_line() -> None:
    args = parse_args(["run", "--raw", "r", "--data", "d", "--factors", "16", "--top-k", "5"])
    config = config_from(args)
    assert config.train.factors == 16 and config.export.top_k == 5
    assert PipelineConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("document", ["README.md", "docs/tables.md"])
def test_the_documented_tables_are_the_schemas_in_code(document: str) -> None:
    from wmf.stages.export import schema

    text = (ROOT / document).read_text()
    assert schema.with_tables(text) == text, f"run: python -m wmf.stages.export.schema --write {document}"


def test_the_readme_stays_short_and_runs_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in readme  # the test command, verbatim
