"""Cache keys that cannot go stale, early cutoff, and outputs checked against their manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import wmf
from wmf.config import PipelineConfig
from wmf.errors import DamagedOutputError
from wmf.fingerprints import digest
from wmf.layout import Ingest
from wmf.pipeline import codehash, runner
from wmf.pipeline import plan as planning
from wmf.pipeline.registry import PIPELINE, STAGES
from wmf.pipeline.status import status

FAST = {"train": {"factors": 4, "iterations": 2, "refit_iterations": 1}, "export": {"top_k": 5}}


def run_night(data: Path, raw: Path, options: dict[str, Any]) -> dict[str, runner.Outcome]:
    """One night without Prefect: every pipeline stage planned, run (or Cached) and published."""
    config = PipelineConfig.from_dict(options)
    outcomes = {}
    for stage in PIPELINE:
        plan = planning.plan(stage.name, data, config, raw)
        outcomes[stage.name] = runner.run(plan, progress=False)
        runner.publish(plan, keep=2)
    return outcomes


def night(data: Path, raw: Path) -> dict[str, runner.Outcome]:
    return run_night(data, raw, FAST)


def states(outcomes: dict[str, runner.Outcome]) -> dict[str, str]:
    return {stage: outcome.state for stage, outcome in outcomes.items()}


def _code_hashes(package_root: Path) -> dict[str, str]:
    """Every stage's code hash, computed in a fresh process on the wmf package under `package_root`."""
    code = (
        "import json; from wmf.pipeline.codehash import code_hash; from wmf.pipeline.registry import STAGES\n"
        "print(json.dumps({name: code_hash(s.build) for name, s in STAGES.items()}))"
    )
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=package_root, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(Path(wmf.__file__).parent, root / "wmf", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("edited", "changed"),
    [
        ("stages/ingest/ratings_parser.py", {"ingest"}),  # a hand-kept list once missed it
        ("model/kernels.py", {"train", "tune", "compare"}),
        ("evaluation/topk.py", {"train", "export", "tune", "compare"}),
        ("stages/export/drift.py", {"export"}),
        ("layout.py", set(STAGES)),
    ],
)
def test_editing_a_module_changes_the_keys_of_the_stages_that_run_it(
    package_copy: Path, edited: str, changed: set[str]
) -> None:
    before = _code_hashes(package_copy)
    path = package_copy / "wmf" / edited
    text = path.read_text()
    try:
        path.write_text(text + "\n# an upgrade\n")
        after = _code_hashes(package_copy)
    finally:
        path.write_text(text)
    assert {name for name in STAGES if after[name] != before[name]} == changed


@pytest.mark.parametrize("stage", list(STAGES.values()), ids=list(STAGES))
def test_every_module_a_build_runs_is_in_its_code_hash(stage: Any) -> None:
    """What importing the build module loads is a part of what its hash reads (which also has
    the modules its functions import when they run)."""
    code = (
        f"import importlib, sys; importlib.import_module({stage.build!r})\n"
        "print(sorted(m for m in sys.modules if m == 'wmf' or m.startswith('wmf.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(done.stdout))  # our own printed list
    hashed = set(codehash.modules(stage.build))
    assert loaded <= hashed, loaded - hashed
    assert all(codehash.source(m).is_file() for m in hashed)


def test_planning_imports_neither_torch_nor_the_builds(tiny_raw: Path, tmp_path: Path) -> None:
    night(tmp_path / "data", tiny_raw)
    code = (
        "import sys; from pathlib import Path; from wmf.config import PipelineConfig\n"
        "from wmf.pipeline.plan import plan\n"
        f"for stage in ('ingest', 'index', 'train', 'export'):\n"
        f"    plan(stage, Path({str(tmp_path / 'data')!r}), PipelineConfig.from_dict({FAST!r}), "
        f"Path({str(tiny_raw)!r}))\n"
        "print(sorted(m for m in ('torch', 'polars', 'numba', 'pyarrow') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_code_change_that_keeps_an_output_keeps_every_later_stage_cached(
    tiny_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Early cutoff: a comment in the ingest's code reruns the ingest, which writes the same
    bytes, so the index, train and export keep their keys."""
    data = tmp_path / "data"
    first = night(data, tiny_raw)
    released = planning.code_hash
    monkeypatch.setattr(
        planning, "code_hash", lambda build: released(build) + ("+" if "ingest" in build else "")
    )
    again = night(data, tiny_raw)
    assert states(again) == {"ingest": "Completed", "index": "Cached", "train": "Cached", "export": "Cached"}
    assert again["ingest"].manifest["key"] != first["ingest"].manifest["key"]
    for stage in ("index", "train", "export"):
        assert again[stage].manifest["key"] == first[stage].manifest["key"]


def _damage(path: Path, keep_stat: bool, pattern: int = 0x5A) -> None:
    """XOR 16 bytes at four places of a file (as a failing disk might); optionally with its size,
    modification time and inode as they were."""
    st = path.stat()
    with path.open("r+b") as f:
        for at in (st.st_size // 5, 2 * st.st_size // 5, 3 * st.st_size // 5, 4 * st.st_size // 5):
            f.seek(at)
            chunk = f.read(16)
            f.seek(at)
            f.write(bytes(b ^ pattern for b in chunk))
    if keep_stat:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_damaged_output_is_rebuilt_not_taken_from_the_cache(tiny_raw: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = night(data, tiny_raw)
    ratings = Path(first["ingest"].manifest["outputs"]["ratings"]["path"])
    _damage(ratings, keep_stat=False)
    again = night(data, tiny_raw)
    assert states(again) == {"ingest": "Completed", "index": "Cached", "train": "Cached", "export": "Cached"}
    assert Ingest.RATINGS in again["ingest"].note and "had changed since written" in again["ingest"].note
    assert digest(ratings) == first["ingest"].manifest["files"][Ingest.RATINGS]["sha256"]


def test_damage_behind_an_unchanged_file_date_is_caught_when_the_file_is_read(
    tiny_raw: Path, tmp_path: Path
) -> None:
    """A file whose size, date and inode are as they were is trusted by the cache check, but a
    build reads every byte of its inputs first, and names the damaged file."""
    data = tmp_path / "data"
    first = night(data, tiny_raw)
    ratings = Path(first["ingest"].manifest["outputs"]["ratings"]["path"])
    _damage(ratings, keep_stat=True)
    config = PipelineConfig.from_dict(FAST)
    assert runner.run(planning.plan("ingest", data, config, tiny_raw)).state == "Cached"
    with pytest.raises(DamagedOutputError) as caught:
        runner.run(planning.plan("index", data, config), force=True, progress=False)
    assert caught.value.stage == "ingest" and caught.value.damaged == [Ingest.RATINGS]
    message = str(caught.value)
    assert str(ratings) in message and "`wmf run` rebuilds the ingest stage" in message
    assert digest(ratings) != first["ingest"].manifest["files"][Ingest.RATINGS]["sha256"]  # nothing read


def test_an_output_of_an_older_wmf_is_not_read(tiny_raw: Path, tmp_path: Path) -> None:
    """Outputs written before every file had a fingerprint: rebuilt, and never read unchecked."""
    data = tmp_path / "data"
    first = night(data, tiny_raw)
    path = data / "index" / "latest" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in manifest.items() if k not in ("format", "files")}))
    with pytest.raises(wmf.errors.MissingInputError, match="written by an older wmf"):
        planning.plan("train", data, PipelineConfig.from_dict(FAST))
    report = status(data, tiny_raw, PipelineConfig.from_dict(FAST))
    assert report.stages["index"]["published"] is False and "older wmf" in report.stages["index"]["reason"]
    again = night(data, tiny_raw)
    assert states(again)["index"] == "Completed" and states(again)["train"] == "Cached"
    assert again["index"].manifest["key"] == first["index"].manifest["key"]


def test_a_damaged_warm_start_is_left_out_not_fatal(tiny_raw: Path, tmp_path: Path) -> None:
    """An earlier night's model cannot be rebuilt: tonight trains cold, and says why."""
    data = tmp_path / "data"
    first = run_night(data, tiny_raw, {**FAST, "index": {"until": "2005-06-30"}})
    model = data / "train" / first["train"].manifest["key"] / "model.safetensors"
    config = PipelineConfig.from_dict({**FAST, "index": {"until": "2005-09-30"}})
    for stage in ("ingest", "index"):  # the next night's index
        plan = planning.plan(stage, data, config, tiny_raw)
        runner.run(plan, progress=False)
        runner.publish(plan, keep=2)
    assert planning.plan("train", data, config).sources["warm_start"] == first["train"].manifest["key"]
    _damage(model, keep_stat=True)
    trusted = planning.plan("train", data, config)  # its date is as it was: trusted while planning
    with pytest.raises(DamagedOutputError) as caught:
        runner.run(trusted, progress=False)  # but read in full before the build uses it
    assert caught.value.stage == "train" and caught.value.damaged == ["model.safetensors"]
    cold = planning.plan("train", data, config, distrust=True)
    assert cold.inputs["warm_start"] is None and "model.safetensors" in cold.notes[0]
    assert runner.run(cold, progress=False).manifest["summary"]["warm_start_from"] is None
    _damage(model, keep_stat=False, pattern=0x33)  # changed again, its date too: noticed while planning
    assert planning.plan("train", data, config).inputs["warm_start"] is None


def test_the_export_reads_what_customers_rated_tonight_though_the_model_is_cached(
    tiny_raw: Path, tmp_path: Path
) -> None:
    """A rating below --min-rating changes only which movies a customer has seen: the model is
    Cached, and the export, which reads the published index, no longer recommends that movie."""
    raw, data = tmp_path / "raw", tmp_path / "data"
    shutil.copytree(tiny_raw, raw)
    options = {**FAST, "index": {"min_rating": 3}}
    run_night(data, raw, options)
    recs = pl.read_parquet(data / "exports" / "latest" / "recommendations.parquet")
    user, movie = recs.filter(pl.col("rank") == 1).row(0)[0], recs.filter(pl.col("rank") == 1).row(0)[2]
    (raw / "combined_data_5.txt").write_text(f"{movie}:\n{user},1,2005-12-31\n")
    assert states(run_night(data, raw, options)) == {
        "ingest": "Completed",
        "index": "Completed",
        "train": "Cached",
        "export": "Completed",
    }
    recs = pl.read_parquet(data / "exports" / "latest" / "recommendations.parquet")
    assert recs.filter((pl.col("user_id") == user) & (pl.col("movie_id") == movie)).is_empty()


def test_an_export_never_pairs_a_model_with_another_index(tiny_raw: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    night(data, tiny_raw)
    config = PipelineConfig.from_dict({**FAST, "index": {"min_user_ratings": 30}})  # other users
    plan = planning.plan("index", data, config)
    runner.run(plan, progress=False)
    runner.publish(plan, keep=2)
    with pytest.raises(wmf.errors.MissingInputError, match="run `wmf train` \\(or `wmf run`\\) first"):
        planning.plan("export", data, config)
