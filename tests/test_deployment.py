"""The nightly deployment as an operator sets it up: work pool, `prefect deploy`, a worker.

Runs the same commands the README shows against the session's temporary server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from wmf import configfile

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[1]
PREFECT = [sys.executable, "-m", "prefect"]
FAST_CONFIG = {"train": {"iterations": 2, "factors": 8}}
FAST_FILE = {"export": {"top_k": 5, "similar_k": 5}}


def prefect_cli(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(
        [*PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_nightly_deployment_registers_and_runs(tiny_raw: Path, tmp_path: Path, prefect_server) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import get_current_settings

    env = {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "WMF_REPO": str(REPO),
    }
    prefect_cli("work-pool", "create", "wmf-process", "--type", "process", env=env)
    prefect_cli("--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all", env=env)

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("wmf-pipeline/nightly")
    assert deployment.work_pool_name == "wmf-process"
    assert deployment.global_concurrency_limit.limit == 1  # nights never overlap
    assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "0 3 * * *",
        "UTC",
        True,
    )
    assert {"raw", "data", "config", "config_file", "wait"} <= set(deployment.parameters)
    assert deployment.parameters["config"]["export"]["top_k"] == 100
    assert "train" not in deployment.parameters["config"]  # left to config_file and the defaults
    assert deployment.parameters["config_file"] is None
    # typed parameters: the UI shows a form with each option's default, help and choices
    forms = deployment.parameter_openapi_schema["definitions"]
    assert forms["TrainOptions"]["properties"]["factors"] == {
        "default": 32, "description": "embedding dimension d", "title": "Factors", "type": "integer"
    }  # fmt: skip
    assert forms["IndexOptions"]["properties"]["holdout"]["enum"] == ["none", "random", "temporal", "probe"]
    sections = {"ingest", "index", "train", "export", "tune", "compare"}
    assert set(forms["PipelineOptions"]["properties"]) == sections

    with get_client(sync_client=True) as client:
        weekly = client.read_deployment_by_name("wmf-tune/weekly")
    [schedule] = weekly.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 1 * * 0", "UTC")
    assert weekly.parameters["config"]["tune"]["trials"] == 20
    # the same index options as the nightly: the search tunes on the index the nightly trains on
    assert weekly.parameters["config"]["index"] == deployment.parameters["config"]["index"]

    # The run's config replaces the deployment's (export top_k 100), so top_k comes from the file.
    config_file = tmp_path / "nightly.toml"
    config_file.write_text(configfile.dumps(FAST_FILE))
    data = tmp_path / "data"
    flow_run = run_deployment(
        "wmf-pipeline/nightly",
        parameters={
            "raw": str(tiny_raw),
            "data": str(data),
            "config": FAST_CONFIG,
            "config_file": str(config_file),
        },
        timeout=0,
    )
    prefect_cli("worker", "start", "--pool", "wmf-process", "--run-once", env=env, timeout=300)

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run.id).state
    assert state is not None and state.is_completed(), state
    recs = pl.read_parquet(data / "exports" / "latest" / "recommendations.parquet")
    assert recs.group_by("user_id").len()["len"].max() == 5


def test_serve_registers_the_scheduled_flow(tiny_raw: Path, tmp_path: Path, prefect_server) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    data = tmp_path / "data"
    config_file = tmp_path / "served.toml"
    config_file.write_text(configfile.dumps({"train": {"factors": 32, "iterations": 4}}))
    cmd = [sys.executable, "-m", "flows.cli", "serve", "--raw", str(tiny_raw), "--data", str(data)]
    proc = subprocess.Popen(
        [*cmd, "--name", "served", "--cron", "15 4 * * *", "--config", str(config_file), "--factors", "16"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "wmf serve exited"
            assert time.monotonic() < deadline, "wmf serve never registered its deployment"
            try:
                with get_client(sync_client=True) as client:
                    deployment = client.read_deployment_by_name("wmf-pipeline/served")
                break
            except ObjectNotFound:
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "15 4 * * *"
    assert deployment.parameters["raw"] == str(tiny_raw.resolve())
    assert deployment.parameters["data"] == str(data.resolve())
    # The file's path, not its values, so each run reads it again; only the typed flag is pinned.
    assert deployment.parameters["config_file"] == str(config_file.resolve())
    assert deployment.parameters["config"] == {"train": {"factors": 16}}
    assert deployment.global_concurrency_limit.limit == 1  # served nights never overlap either


def test_failure_automation_file_is_a_valid_prefect_automation() -> None:
    import yaml
    from prefect.events.schemas.automations import AutomationCore

    spec = yaml.safe_load((REPO / "deployments" / "notify-on-failure.yaml").read_text())
    automation = AutomationCore.model_validate(spec)
    assert automation.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert automation.trigger.match_related.root["prefect.resource.name"] == "wmf-pipeline"
    assert [action.type for action in automation.actions] == ["send-notification"]
