"""The optimizer study as a user runs it: `wmf compare` on a published index, timed whole.

    python benchmarks/bench_compare.py --setting notebook   # 55 movies x 142,475 users, w0 0.005, 500 steps
    python benchmarks/bench_compare.py --setting full       # the full-scale set, 100 iterations each

The ingest and index stages are built and published into a DATA folder under .bench/
(kept: a second run reuses them), then `wmf compare` runs in its own process. Printed:
each optimizer's learning rate, final loss, Recall@20 and NDCG@100 on the index's holdout,
its seconds, and the whole command's minutes (issue 11's floor at full scale on this CPU:
adam, adagrad, sgd, sgd-momentum and als, 100 iterations each, within 30 minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import BENCH_DIR, adopt, bench_raw, report  # noqa: E402

from wmf.config import PipelineConfig  # noqa: E402
from wmf.data.generate import generate  # noqa: E402
from wmf.layout import LATEST, Compare  # noqa: E402
from wmf.pipeline import plan as planning  # noqa: E402
from wmf.pipeline import runner  # noqa: E402

# The notebook's setting: its subset's shape (the ratings count is not recorded: an assumption),
# its w0 and its 500 steps, every optimizer including the sigmoid output.
NOTEBOOK_SHAPE = {"users": 142_475, "movies": 55, "ratings": 300_000}
SETTINGS = {
    "notebook": {
        "args": ["--optimizers", "adam,adamw,adagrad,sgd,sgd-momentum,adam-sigmoid,als",
                 "--steps", "500", "--unobserved-weight", "0.005", "--compare-eval-every", "100"],
    },
    "full": {
        "args": ["--optimizers", "adam,adagrad,sgd,sgd-momentum,als", "--steps", "100"],
    },
}  # fmt: skip


def raw_for(setting: str) -> Path:
    if setting == "full":
        return bench_raw(1.0)
    target = BENCH_DIR / "raw-notebook"
    if not target.is_dir():
        tmp = BENCH_DIR / ".tmp-raw-notebook"
        shutil.rmtree(tmp, ignore_errors=True)
        generate(tmp, seed=0, progress=False, **NOTEBOOK_SHAPE)
        adopt(tmp, target)
    return target


def published_index(raw: Path, data: Path) -> None:
    """Build (or reuse) and publish the default ingest and index stages."""
    config = PipelineConfig()
    for stage in ("ingest", "index"):
        plan = planning.plan(stage, data, config, raw)
        runner.run(plan, progress=False)
        runner.publish(plan, keep=2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--setting", choices=sorted(SETTINGS), default="notebook")
    p.add_argument("extra", nargs="*", help="more `wmf compare` options (after --)")
    args = p.parse_args()
    BENCH_DIR.mkdir(exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    data = BENCH_DIR / f"compare-{args.setting}"
    published_index(raw_for(args.setting), data)
    cmd = [sys.executable, "-m", "flows.cli", "compare", "--data", str(data), "--force"]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    started = time.perf_counter()
    subprocess.run([*cmd, *SETTINGS[args.setting]["args"], *args.extra], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    table = pl.read_parquet(data / Compare.DIRECTORY / LATEST / Compare.COMPARISON)
    final = table.group_by("optimizer", maintain_order=True).agg(
        pl.col("learning_rate").first(),
        pl.col("iteration").last(),
        pl.col("loss").first().alias("first loss"),
        pl.col("loss").last().alias("final loss"),
        pl.col("recall@20").drop_nulls().last(),
        pl.col("ndcg@100").drop_nulls().last(),
        pl.col("seconds").last(),
    )
    columns = ("optimizer", "learning rate", "iterations", "first loss", "final loss", "Recall@20",
               "NDCG@100", "seconds")  # fmt: skip
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for r in final.iter_rows(named=True):
        cells = (
            r["optimizer"],
            "" if r["learning_rate"] is None else f"{r['learning_rate']:.3g}",
            r["iteration"],
            f"{r['first loss']:.6g}",
            f"{r['final loss']:.6g}",
            f"{r['recall@20'] or float('nan'):.4f}",
            f"{r['ndcg@100'] or float('nan'):.4f}",
            f"{r['seconds']:.1f}",
        )
        print("| " + " | ".join(map(str, cells)) + " |")
    report(
        f"compare {args.setting}", minutes=minutes, plot=str(data / Compare.DIRECTORY / LATEST / Compare.PLOT)
    )


if __name__ == "__main__":
    main()
