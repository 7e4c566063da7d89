"""The four stages as plain functions: plan (cache key), execute (build), publish.

Orchestration lives in `tasks/` and `flows/`; this module holds what a stage
means on disk, so it is testable without Prefect and the cache key of a stage
is defined in one place: its code version, its parameters and the fingerprints
of what it reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import wmf
from wmf import plots, resources, store
from wmf.config import STAGES as STAGES  # defined with the configs: the CLI reads it without polars
from wmf.config import PipelineConfig
from wmf.errors import MissingInputError, ShrinkError
from wmf.files import CHECKPOINT_FILE, MODEL_FILE
from wmf.fingerprints import FingerprintCache
from wmf.reuse import Reuse

Mapper = Callable[[Callable[[Any], Any], list[Any]], Iterable[Any]]

# `wmf tune` and `wmf compare` are built, keyed and published like stages, beside the pipeline's.
UPSTREAM: dict[str, str] = {
    "index": "ingest",
    "train": "index",
    "export": "train",
    "tune": "index",
    "compare": "index",
}
DIRECTORY: dict[str, str] = {
    "ingest": "ingest",
    "index": "index",
    "train": "train",
    "export": "exports",
    "tune": "tune",
    "compare": "compare",
}

# Modules whose source defines each stage's output: a change to any of them
# changes the stage's cache key (Prefect's TASK_SOURCE sees only the task body).
MODULES: dict[str, tuple[str, ...]] = {
    "ingest": ("wmf.ingest", "wmf.reuse", "wmf.quality", "wmf.errors"),
    "index": ("wmf.index", "wmf.interactions"),
    "train": (
        "wmf.train",
        "wmf.interactions",
        "wmf.model",
        "wmf.solvers",
        "wmf.kernels",
        "wmf.objective",
        "wmf.metrics",
        "wmf.recommend",
        "wmf.warmstart",
    ),
    "export": ("wmf.export", "wmf.drift", "wmf.interactions", "wmf.recommend", "wmf.plots"),
}
MODULES["tune"] = ("wmf.tune", "wmf.configfile", *MODULES["train"], "wmf.index", "wmf.plots")
MODULES["compare"] = ("wmf.compare", *MODULES["train"], "wmf.plots")
LOSS_CURVE = "loss_curve.png"
# Parameters that change nothing in a stage's output stay out of its key.
KEY_EXCLUDED: dict[str, tuple[str, ...]] = {"ingest": ("rehash", "max_shrink"), "export": ("keep",)}
FINGERPRINTS = ".fingerprints.json"


@dataclass(frozen=True)
class StagePlan:
    """Everything needed to build one stage output: small, hashable, JSON-able."""

    stage: str
    data: str
    key: str
    config: dict[str, Any]
    inputs: dict[str, Any]
    raw: str | None = None

    @property
    def output(self) -> Path:
        return store.output_dir(Path(self.data), DIRECTORY[self.stage], self.key)

    @property
    def is_built(self) -> bool:
        return store.is_complete(self.output)


def code_version(stage: str) -> str:
    """Hash of the source files that compute the stage, plus the package version."""
    h = hashlib.blake2b(wmf.__version__.encode(), digest_size=8)
    for name in MODULES[stage]:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()


def latest_manifest(data: Path, stage: str) -> dict[str, Any]:
    return store.read_manifest(store.latest_dir(Path(data), DIRECTORY[stage]))


def _published(data: Path, stage: str) -> dict[str, Any] | None:
    """The stage's published manifest, or None before its first publish."""
    try:
        return latest_manifest(data, stage)
    except MissingInputError:
        return None


def _inputs(stage: str, data: Path, raw: Path | None, config: PipelineConfig) -> dict[str, Any]:
    if stage == "ingest":
        from wmf.ingest import find_inputs

        if raw is None:
            raise MissingInputError("the ingest stage needs --raw RAW")
        files = find_inputs(Path(raw))
        root = store.stage_root(Path(data), DIRECTORY["ingest"])
        known = FingerprintCache(root / FINGERPRINTS, config.ingest.rehash)
        paths = [p for group in files.values() for p in group]
        inputs = dict(zip((str(p.relative_to(raw)) for p in paths), known.get_all(paths), strict=True))
        known.save()
        return inputs
    upstream = latest_manifest(data, UPSTREAM[stage])
    inputs = {UPSTREAM[stage]: upstream["key"]}
    if stage == "export":
        inputs["index"] = upstream["inputs"]["index"]
        inputs["previous_export"] = _previous(Path(data), "export", upstream["key"], "previous_export")
    if stage == "train" and (config.train.warm_start or config.train.fold_in_only):
        inputs["warm_start"] = _warm_source(Path(data), upstream["key"], config.train.factors)
    return inputs


def _previous(data: Path, stage: str, upstream_key: str, field: str) -> str | None:
    """The key of the published output of `stage` that one built on `upstream_key` follows.

    That is the published output, unless it was itself built on this very upstream (a
    rerun, or other options on the same night): then the one it followed (its `field`
    input), so that an unchanged rerun keeps its key. One pruned since is none.
    """
    latest = _published(data, stage)
    if latest is None:
        return None
    same_night = latest["inputs"][UPSTREAM[stage]] == upstream_key
    source = latest["inputs"].get(field) if same_night else latest["key"]
    if source is None or not store.is_complete(store.output_dir(data, DIRECTORY[stage], source)):
        return None
    return source


def _warm_source(data: Path, index_key: str, factors: int) -> str | None:
    """The published model a train on `index_key` starts from: None for a cold start (also when
    it has other factors, or was saved without its ids by an older version)."""
    source = _previous(data, "train", index_key, "warm_start")
    if source is None:
        return None
    directory = store.output_dir(data, DIRECTORY["train"], source)
    if store.read_manifest(directory)["config"]["factors"] != factors:
        return None
    from safetensors import safe_open

    with safe_open(directory / MODEL_FILE, framework="numpy") as f:
        return source if "user_ids" in f.keys() else None  # noqa: SIM118 - not a dict; older models: cold


def _params(stage: str, config: PipelineConfig) -> dict[str, Any]:
    """The stage's parameters; a search also depends on the train options it does not search."""
    if stage in ("tune", "compare"):
        return {stage: dataclasses.asdict(getattr(config, stage)), "train": dataclasses.asdict(config.train)}
    return dataclasses.asdict(getattr(config, stage))


def plan(stage: str, data: Path, config: PipelineConfig, raw: Path | None = None) -> StagePlan:
    """Compute the stage's cache key from its code, parameters and input fingerprints."""
    params = _params(stage, config)
    keyed = {k: v for k, v in params.items() if k not in KEY_EXCLUDED.get(stage, ())}
    inputs = _inputs(stage, Path(data), raw, config)
    key = store.fingerprint_json(
        {"stage": stage, "code": code_version(stage), "config": keyed, "inputs": inputs}
    )[:16]
    return StagePlan(
        stage=stage,
        data=str(data),
        key=key,
        config=params,
        inputs=inputs,
        raw=None if raw is None else str(raw),
    )


def _reusable_ingest(plan: StagePlan) -> Reuse | None:
    """The published ingest and the raw files unchanged since (same name and fingerprint)."""
    published = _published(Path(plan.data), "ingest")
    if published is None or published["key"] == plan.key or published.get("raw") != plan.raw:
        return None
    same = frozenset(n for n, fp in plan.inputs.items() if published["inputs"].get(n) == fp)
    return Reuse(store.latest_dir(Path(plan.data), DIRECTORY["ingest"]).resolve(), same)


def _upstream_dir(plan: StagePlan, stage: str) -> Path:
    directory = store.output_dir(Path(plan.data), DIRECTORY[stage], plan.inputs[stage])
    if not store.is_complete(directory):
        raise MissingInputError(f"input of stage '{plan.stage}' is gone: {directory}")
    return directory


def _checkpoints(plan: StagePlan) -> Path:
    return store.stage_root(Path(plan.data), DIRECTORY["train"]) / ".checkpoints" / plan.key


def checkpoint_iteration(plan: StagePlan) -> int:
    """Iterations already saved in the train stage's checkpoint (0 when there is none)."""
    from safetensors import safe_open

    path = _checkpoints(plan) / CHECKPOINT_FILE
    if plan.stage != "train" or not path.is_file():
        return 0
    with safe_open(path, framework="numpy") as f:  # the header only: no torch needed
        return int(f.metadata().get("iteration", 0))


def clean_stale(data: Path) -> list[Path]:
    """Remove what killed runs left behind: temporary outputs, trash and half-made links.

    Only safe while holding DATA's lock (`store.exclusive`): then no other run is building.
    """
    stale = [
        p
        for stage in DIRECTORY.values()
        for pattern in (
            ".tmp-*",
            ".trash-*",
            ".latest-*",
            ".*.tmp",
            ".checkpoints/*/.*.tmp",
            ".checkpoints/*/*/.*.tmp",
        )
        for p in store.stage_root(Path(data), stage).glob(pattern)
    ]
    for p in stale:
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        else:
            store.remove_tree(p)
    return stale


def _check_shrink(plan: StagePlan) -> None:
    published = _published(Path(plan.data), "ingest")
    if published is None:
        return
    before = published["outputs"]["ratings"]["rows"]
    now = store.read_manifest(plan.output)["outputs"]["ratings"]["rows"]
    limit = float(plan.config["max_shrink"])
    if now < (1.0 - limit) * before:
        raise ShrinkError(
            f"the new ingest has {now:,} ratings, {1 - now / before:.1%} fewer than the {before:,} of "
            f"the published one ({published['key']}), more than --max-shrink {limit:g} allows: a "
            "truncated or partial raw file? Nothing was published. If the data really shrank, "
            "rerun with --max-shrink 1"
        )


def study_journal(plan: StagePlan) -> Path:
    """Where a search keeps its Optuna study: kept across kills, one per search key."""
    return store.stage_root(Path(plan.data), DIRECTORY["tune"]) / ".studies" / f"{plan.key}.journal"


def _core(
    plan: StagePlan,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    mapper: Mapper | None = None,
    parallel: int = 1,
) -> Callable[[Path, bool], dict[str, Any]]:
    """Bind the core function of the stage to its inputs: (out, progress) -> summary."""
    from wmf import config as cfg

    if plan.stage == "ingest":
        from wmf.ingest import ingest, ingest_partitioned

        c = cfg.IngestConfig(**plan.config)
        raw = Path(plan.raw or "")
        if mapper is not None:
            return lambda out, progress: ingest_partitioned(raw, out, c, mapper, progress=progress)
        reuse = _reusable_ingest(plan)
        return lambda out, progress: ingest(raw, out, c, progress=progress, reuse=reuse)
    if plan.stage == "index":
        from wmf.index import build_index

        c = cfg.IndexConfig(**plan.config)
        src = _upstream_dir(plan, "ingest")
        return lambda out, progress: build_index(src, out, c, progress=progress)
    if plan.stage == "train":
        from wmf.train import train

        c = cfg.TrainConfig(**plan.config)
        src = _upstream_dir(plan, "index")
        ckpt = _checkpoints(plan)
        callback = None if on_iteration is None else lambda _model, record: on_iteration(record)
        warm = plan.inputs.get("warm_start")
        warm_from = None if warm is None else store.output_dir(Path(plan.data), DIRECTORY["train"], warm)
        return lambda out, progress: train(
            src, out, c, checkpoint_dir=ckpt, progress=progress, callback=callback, warm_from=warm_from
        )
    if plan.stage == "export":
        from wmf.export import export

        c = cfg.ExportConfig(**plan.config)
        index_dir, train_dir = _upstream_dir(plan, "index"), _upstream_dir(plan, "train")
        before = plan.inputs.get("previous_export")
        previous = None if before is None else store.output_dir(Path(plan.data), DIRECTORY["export"], before)
        return lambda out, progress: export(
            index_dir, train_dir, out, c, progress=progress, mapper=mapper or map, previous=previous
        )
    if plan.stage == "tune":
        from wmf.tune import tune

        search, base = cfg.TuneConfig(**plan.config["tune"]), cfg.TrainConfig(**plan.config["train"])
        src, journal = _upstream_dir(plan, "index"), study_journal(plan)
        return lambda out, progress: tune(
            src, out, search, base, journal, mapper=mapper or map, parallel=parallel, progress=progress
        )
    if plan.stage == "compare":
        from wmf.compare import compare

        study, base = cfg.CompareConfig(**plan.config["compare"]), cfg.TrainConfig(**plan.config["train"])
        src = _upstream_dir(plan, "index")
        return lambda out, progress: compare(src, out, study, base, progress=progress)
    raise ValueError(f"unknown stage {plan.stage!r}")


def execute(
    plan: StagePlan,
    progress: bool = True,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    mapper: Mapper | None = None,
    parallel: int = 1,
) -> dict[str, Any]:
    """Build the stage output in a temporary directory and rename it into place.

    Returns the manifest, which is also written (last) beside the outputs.
    `on_iteration` receives each training iteration's history record; with a
    `mapper` (e.g. a Dask client's), ingest parses the raw files and export scores the
    batches of users in parallel, and a search runs its trials through it, `parallel`
    at a time.
    """
    core = _core(plan, on_iteration, mapper, parallel)
    data = Path(plan.data)
    started = time.perf_counter()
    resumed_from = checkpoint_iteration(plan)
    resources.reset_peak_rss()
    with store.building(data, DIRECTORY[plan.stage], plan.key) as tmp:
        summary = core(tmp, progress)
        if plan.stage == "train":
            summary["resumed_from_iteration"] = resumed_from
            summary["warm_start_from"] = plan.inputs.get("warm_start")
        if plan.stage == "export":
            history = store.read_json(_upstream_dir(plan, "train") / "history.json")
            if plots.loss_curve(history, tmp / LOSS_CURVE):
                summary.setdefault("files", {})["loss_curve"] = LOSS_CURVE
        built = summary.pop("tables", {})
        fingerprints = store.fingerprint_files([tmp / info["path"] for info in built.values()])
        tables = {
            name: {"path": str(plan.output / info["path"]), "rows": int(info["rows"]), "fingerprint": fp}
            for (name, info), fp in zip(built.items(), fingerprints, strict=True)
        }
        manifest = {
            "stage": plan.stage,
            "key": plan.key,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(plan.stage),
            "wmf_version": wmf.__version__,
            "config": plan.config,
            "inputs": plan.inputs,
            "raw": plan.raw,
            "outputs": tables,
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_gb": round(resources.peak_rss_gb(), 3),
            "summary": summary,
        }
        if not (tmp / "config.json").exists():  # the model writes a richer one of its own
            store.write_json(tmp / "config.json", {plan.stage: plan.config})
        store.write_json(tmp / store.MANIFEST, manifest)
    if plan.stage == "train":
        store.remove_tree(_checkpoints(plan))
    return manifest


def publish(plan: StagePlan, keep: int) -> dict[str, Any]:
    """Make the plan's output the stage's `latest` and return its manifest.

    An ingest much smaller than the published one is refused (`max_shrink`): every
    published output stays as it was.
    """
    if plan.stage == "ingest":
        _check_shrink(plan)
    directory = store.publish(Path(plan.data), DIRECTORY[plan.stage], plan.key, keep=keep)
    return store.read_manifest(directory)
