"""Running a planned stage: Cached or built, then published. The one place that decides.

A stage is Cached when the output its key names is complete, of this format, and its
files still match their fingerprints (files unchanged since they were hashed are trusted
by size, modification time and inode; `wmf status --verify` reads every byte). Otherwise
it is built: the outputs it reads are checked byte for byte against the fingerprints its
key hashed, its build module writes into a temporary folder, every file is fingerprinted
into the manifest (written last), and the folder is renamed into place. Publishing runs
the stage's check, swaps `latest` and prunes.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wmf import __version__, resources, store
from wmf.errors import DamagedOutputError
from wmf.fingerprints import FingerprintCache, digest_all
from wmf.layout import CONFIG, FINGERPRINTS, MANIFEST
from wmf.pipeline import outputs
from wmf.pipeline.plan import StagePlan
from wmf.pipeline.registry import STAGES
from wmf.stages import BuildContext, Mapper

Report = Callable[[float, str | None], None]  # share of the build done, a line to log


@dataclass(frozen=True)
class Outcome:
    state: str  # "Completed" or "Cached"
    manifest: dict[str, Any]
    note: str | None = None  # why a stage was built though its output existed


def run(
    plan: StagePlan,
    force: bool = False,
    progress: bool = True,
    report: Report | None = None,
    mapper: Mapper = map,
    parallel: int = 1,
    distributed: bool = False,
) -> Outcome:
    """Take the stage's output from the cache, or build it (always, with `force`: a search
    then starts its study afresh)."""
    note = None
    if force and plan.spec.resume and plan.spec.keep_resume:
        store.remove_tree(plan.root / plan.spec.resume / plan.key)
    manifest = None if force else outputs.read(plan.output)
    if manifest is not None:
        bad = outputs.damaged(plan.output, outputs.fingerprints(manifest), trust=True)
        if not bad:
            return Outcome("Cached", manifest)
        note = f"rebuilt {plan.stage}: {', '.join(bad)} in {plan.output} had changed since written"
    return Outcome("Completed", execute(plan, progress, report, mapper, parallel, distributed), note)


def execute(
    plan: StagePlan,
    progress: bool = True,
    report: Report | None = None,
    mapper: Mapper = map,
    parallel: int = 1,
    distributed: bool = False,
) -> dict[str, Any]:
    """Build the stage output in a temporary directory and rename it into place; its manifest.

    `report` gets the share of the build done and log lines; `mapper` runs independent jobs
    (a Dask client's map, or one Prefect task per trial), `parallel` of them at a time, on a
    cluster when `distributed`.
    """
    spec = plan.spec
    report = report or (lambda _done, _line: None)
    report(0.0, f"building {plan.stage} -> {plan.output}")
    sources = {role: plan.source(role) for role in plan.sources}
    checking = time.perf_counter()
    for role, directory in sources.items():
        verify(plan.source_stage(role), directory, plan.inputs[role])
    verified_seconds = round(time.perf_counter() - checking, 3)
    config, sections = plan.typed()
    resume = plan.root / spec.resume / plan.key if spec.resume else None
    previous = outputs.published(plan.root)
    build = importlib.import_module(spec.build).build
    started = time.perf_counter()
    resources.reset_peak_rss()
    with store.building(plan.root, plan.key) as tmp:
        summary = build(
            BuildContext(
                out=tmp,
                config=config,
                sections=sections,
                sources=sources,
                inputs=plan.inputs,
                provenance={"key": plan.key, "code_hash": plan.code_hash, "package_version": __version__},
                raw=None if plan.raw is None else Path(plan.raw),
                published=None if previous is None else previous[0],
                resume=resume,
                progress=progress,
                report=report,
                mapper=mapper,
                parallel=parallel,
                distributed=distributed,
                verify=lambda directory, names: verify(
                    plan.stage, directory, outputs.fingerprints(outputs.read(directory), names)
                ),
            )
        )
        if not (tmp / CONFIG).exists():  # a model writes a richer one of its own
            store.write_json(tmp / CONFIG, {plan.stage: plan.config})
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        sizes = [(tmp / name).stat().st_size for name in files]
        digests = digest_all([tmp / name for name in files])
        digest_of = dict(zip(files, digests, strict=True))
        tables = summary.pop("tables", {})
        manifest = {
            "format": outputs.FORMAT,
            "stage": plan.stage,
            "key": plan.key,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_hash": plan.code_hash,
            "package_version": __version__,
            "config": plan.config,
            "inputs": plan.inputs,
            "sources": plan.sources,
            "raw": plan.raw,
            "files": {n: {"bytes": b, "sha256": d} for n, b, d in zip(files, sizes, digests, strict=True)},
            "outputs": {
                name: {
                    "path": str(plan.output / info["path"]),
                    "rows": int(info["rows"]),
                    "fingerprint": digest_of[info["path"]],
                }
                for name, info in tables.items()
            },
            "seconds": round(time.perf_counter() - started, 3),
            "verify_seconds": verified_seconds,  # reading every byte of the inputs, before `seconds`
            "peak_rss_gb": round(resources.peak_rss_gb(), 3),
            "summary": summary,
        }
        store.write_json(tmp / MANIFEST, manifest)
    known = FingerprintCache(plan.root / FINGERPRINTS)
    known.record([plan.output / name for name in files], digests)
    known.save()
    if resume is not None and not spec.keep_resume:
        store.remove_tree(resume)
    return manifest


def verify(stage: str, directory: Path, expected: dict[str, str]) -> None:
    """Check every byte of the files a build is about to read against `expected`."""
    bad = outputs.damaged(directory, expected)
    if bad:
        raise DamagedOutputError(stage, directory, bad)


def publish(plan: StagePlan, keep: int) -> dict[str, Any]:
    """Make the plan's output the stage's `latest`; its manifest.

    The stage's check (an ingest much smaller than the published one) may refuse it: then
    every published output stays as it was. The outputs of this stage it was built from (a
    warm start, the previous export) are kept: an unchanged rerun finds its key through them.
    """
    spec = plan.spec
    manifest = store.read_manifest(plan.output)
    config, _ = plan.typed()
    if spec.check is not None:  # against the published output, whichever wmf wrote it
        before = store.latest(plan.root)
        spec.check(manifest, None if before is None else store.read_manifest(before), config)
    own = manifest["sources"].get(spec.follows.role) if spec.follows else None
    kept = spec.keep(config)
    store.publish(plan.root, plan.key, keep if kept is None else kept, protect=[own] if own else [])
    return manifest


def clean_stale(data: Path) -> list[Path]:
    """Remove what killed runs left behind in every stage's folder (only under DATA's lock)."""
    return [
        path
        for spec in STAGES.values()
        for path in store.clean_stale(Path(data) / spec.directory, spec.resume)
    ]
