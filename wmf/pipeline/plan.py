"""Planning a stage: its cache key, from its code, its parameters and what it reads.

The key hashes the stage's code hash (`codehash`), the parameters that change its output,
and the content fingerprints of every file it reads: the raw files (an ingest), the listed
files of the upstream outputs it reads, and those of its own earlier output it continues
from (a warm start, the previous export). It hashes the upstream's content, not the
upstream's key, so a code change that leaves an output's bytes as they were leaves every
later stage Cached (early cutoff). Where each output read lives (`sources`: the keys) is
recorded beside the key, not in it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmf import store
from wmf.config import PipelineConfig, sections
from wmf.errors import MissingInputError
from wmf.fingerprints import FingerprintCache
from wmf.layout import FINGERPRINTS, LATEST
from wmf.pipeline import outputs
from wmf.pipeline.codehash import code_hash
from wmf.pipeline.registry import STAGES
from wmf.stages import Follow, Stage


@dataclass(frozen=True)
class StagePlan:
    """Everything needed to build one stage output: small, picklable, JSON-able."""

    stage: str
    data: str
    key: str
    code_hash: str
    config: dict[str, Any]  # every parameter: the stage's section, or {section: ...} with `sections`
    inputs: dict[str, Any]  # what the key hashes: per source (or "raw"), {file: fingerprint}
    sources: dict[str, str]  # per source, the key of the output read
    raw: str | None = None
    notes: tuple[str, ...] = ()  # what planning chose to do without (a damaged warm start), to log

    @property
    def spec(self) -> Stage:
        return STAGES[self.stage]

    @property
    def root(self) -> Path:
        return Path(self.data) / self.spec.directory

    @property
    def output(self) -> Path:
        return self.root / self.key

    def source_stage(self, role: str) -> str:
        """Which stage wrote the output read as `role`: an upstream, or this one (its follow)."""
        return self.stage if self.spec.follows and role == self.spec.follows.role else role

    def source(self, role: str) -> Path:
        """The directory of an output this stage reads (an upstream's, or its own earlier one)."""
        return Path(self.data) / STAGES[self.source_stage(role)].directory / self.sources[role]

    def typed(self) -> tuple[Any, dict[str, Any]]:
        """(the stage's config, its other sections) as the config dataclasses."""
        spec = self.spec
        if not spec.sections:
            return spec.config(**self.config), {}
        typed = {name: sections()[name](**self.config[name]) for name in spec.sections}
        return spec.config(**self.config[spec.name]), typed


def plan(
    stage: str, data: Path, config: PipelineConfig, raw: Path | None = None, distrust: bool = False
) -> StagePlan:
    """The stage's key and what it reads, from its code, parameters and input fingerprints.

    `distrust`: read every byte of the earlier output the stage would follow before choosing it
    (else a file unchanged since it was last hashed is trusted).
    """
    spec, data = STAGES[stage], Path(data)
    own = getattr(config, stage)
    params = dataclasses.asdict(own)
    keyed = {k: v for k, v in params.items() if k not in spec.unkeyed}
    if spec.sections:
        params = {stage: params, **{s: dataclasses.asdict(getattr(config, s)) for s in spec.sections}}
        keyed = {**params, stage: keyed}
    inputs: dict[str, Any] = {}
    sources: dict[str, str] = {}
    read_by: dict[str, dict[str, Any]] = {}  # the manifests of the outputs read
    notes: list[str] = []
    if spec.raw is not None:
        inputs["raw"] = _raw_fingerprints(spec, data, raw, own)
    if spec.external is not None and (named := spec.external(config)):
        inputs["external"] = named
    for read in spec.reads:
        key, read_by[read.stage] = _upstream(spec, data, read.stage)
        inputs[read.stage] = outputs.fingerprints(read_by[read.stage], read.files)
        sources[read.stage] = key
        if read.agrees_with is not None:
            _check_agreement(
                spec, read.stage, inputs[read.stage], read.agrees_with, read_by[read.agrees_with]
            )
    if spec.follows is not None and spec.follows.wanted(own):
        found = _followed(spec, spec.follows, data, inputs, own, distrust, notes)
        inputs[spec.follows.role] = (
            None if found is None else outputs.fingerprints(found[1], spec.follows.files)
        )
        if found is not None:
            sources[spec.follows.role] = found[0]
    hashed = code_hash(spec.build)
    key = store.fingerprint_json({"stage": stage, "code": hashed, "config": keyed, "inputs": inputs})[:16]
    return StagePlan(
        stage,
        str(data),
        key,
        hashed,
        params,
        inputs,
        sources,
        None if raw is None else str(raw),
        tuple(notes),
    )


def _raw_fingerprints(spec: Stage, data: Path, raw: Path | None, config: Any) -> dict[str, str]:
    if raw is None:
        raise MissingInputError(f"the {spec.name} stage needs --raw RAW")
    files = spec.raw(Path(raw))
    known = FingerprintCache(data / spec.directory / FINGERPRINTS, spec.rehash(config))
    fingerprints = dict(zip((str(p.relative_to(raw)) for p in files), known.get_all(files), strict=True))
    known.save()
    return fingerprints


def _upstream(spec: Stage, data: Path, stage: str) -> tuple[str, dict[str, Any]]:
    """The key and manifest of the published `stage` output that `spec` reads."""
    root = data / STAGES[stage].directory
    found = outputs.published(root)
    if found is None:
        why = "was written by an older wmf" if store.latest(root) is not None else "does not exist"
        raise MissingInputError(
            f"the {spec.name} stage reads the published output of stage '{stage}', and {root / LATEST} "
            f"{why}: run `wmf {stage}` (or `wmf run`) first"
        )
    return found[0].name, found[1]


def _check_agreement(
    spec: Stage, stage: str, read: dict[str, str], other: str, other_manifest: dict[str, Any]
) -> None:
    """The files `spec` reads of `stage` are those the `other` output it reads was built from,
    wherever that output read them too (an export's users and movies, its model's)."""
    built_from = other_manifest["inputs"].get(stage, {})
    differ = sorted(name for name, fp in read.items() if name in built_from and built_from[name] != fp)
    if differ:
        raise MissingInputError(
            f"the {spec.name} stage reads {', '.join(differ)} of the published {stage} output, and the "
            f"published {other} output was built from other ones: run `wmf {other}` (or `wmf run`) first"
        )


def _followed(
    spec: Stage,
    follow: Follow,
    data: Path,
    inputs: dict[str, Any],
    config: Any,
    distrust: bool,
    notes: list[str],
) -> tuple[str, dict[str, Any]] | None:
    """The key and manifest of the stage's own earlier output that tonight's continues from.

    The published one, unless it was built on tonight's very inputs (a rerun, or other options
    on the same night): then the one it followed in turn, so an unchanged rerun keeps its key.
    None when there is none, it cannot serve (`follow.usable`), or its files are damaged: an
    earlier night cannot be rebuilt, so tonight goes without it (and says so in `notes`).
    """
    root = data / spec.directory
    found = outputs.published(root)
    if found is None:
        return None
    latest, manifest = found
    same_night = all(manifest["inputs"].get(name) == value for name, value in inputs.items())
    key = manifest["sources"].get(follow.role) if same_night else latest.name
    source = None if key is None else outputs.read(root / key)
    if source is None or not follow.usable(config, root / key, source):
        return None
    damaged = outputs.damaged(root / key, outputs.fingerprints(source, follow.files), trust=not distrust)
    if damaged:
        notes.append(
            f"{', '.join(damaged)} of {root / key} changed since written: the {spec.name} stage goes "
            f"without its {follow.role}"
        )
        return None
    return key, source
