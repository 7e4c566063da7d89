"""Every name wmf gives a file or a folder on disk, and the raw files it looks for.

One module owns them so that a reader, a writer and a test can never disagree on a name,
and so that `docs/architecture.md` can point at one place. It imports nothing: planning a
night reads these names without importing the code that writes the files (torch, polars).

Layout of DATA (the same for every stage; `wmf.store` does the renames)::

    DATA/.lock                        one run at a time
    DATA/<stage>/<key>/               one complete output; manifest.json written last
    DATA/<stage>/latest -> <key>      swapped by one rename: readers see one whole run
    DATA/<stage>/.tmp-<key>-*/        work in progress, never read
    DATA/<stage>/.fingerprints.json   digests of files unchanged since they were hashed
    DATA/history/runs.parquet         one row per run
    DATA/history/running.json         the run under way (left behind: it was killed)
    DATA/logs/<time>-<command>.log    each command's log, tracebacks included
    DATA/.prefect/server.db           the database of Prefect's temporary server
"""

from __future__ import annotations

LOCK = ".lock"
LATEST = "latest"
MANIFEST = "manifest.json"
CONFIG = "config.json"  # every output's parameters (a model writes a richer one)
FINGERPRINTS = ".fingerprints.json"
TEMPORARY = ".tmp-"  # prefixes of what a killed run may leave behind
TRASH = ".trash-"
NEW_LATEST = ".latest-"


class Raw:
    """The Netflix Prize files: Kaggle's layout, or the original training_set/ one."""

    RATINGS = ("combined_data_*.txt", "training_set/mv_*.txt")  # the first that matches
    KAGGLE_RATINGS = "combined_data_{}.txt"
    TITLES = ("movie_titles.csv", "movie_titles.txt")
    PROBE = "probe.txt"


class Ingest:
    DIRECTORY = "ingest"
    RATINGS = "ratings.parquet"
    MOVIES = "movies.parquet"
    PROBE = "probe.parquet"
    REJECTS = "rejects.parquet"
    QUALITY = "quality.json"
    PARTS = ".parts"  # a partitioned ingest's work folder, inside its output while building
    FRESH = ".fresh-ratings.parquet"  # the newly parsed files of a night that reuses the others


class Index:
    DIRECTORY = "index"
    USERS = "users.parquet"
    MOVIES = "movies.parquet"
    TRAIN = "train.npz"
    HOLDOUT = "holdout.parquet"
    SEEN = "seen.npz"


class Train:
    DIRECTORY = "train"
    MODEL = "model.safetensors"
    EVALUATED = "evaluated.safetensors"  # the pre-refit factors, when the model was refit
    HISTORY = "history.json"
    METRICS = "metrics.json"
    LOSS_CURVE = "loss_curve.png"
    CHECKPOINTS = ".checkpoints"  # DATA/train/.checkpoints/<key>/, kept across kills
    CHECKPOINT = "checkpoint.safetensors"
    REFIT = "refit"  # the refit's own checkpoints, inside the train's


class Export:
    DIRECTORY = "exports"
    RECOMMENDATIONS = "recommendations.parquet"
    USER_EMBEDDINGS = "user_embeddings.parquet"
    MOVIE_EMBEDDINGS = "movie_embeddings.parquet"
    SIMILAR_MOVIES = "similar_movies.parquet"
    METRICS = "metrics.json"
    DRIFT = "drift.json"
    LOSS_CURVE = "loss_curve.png"


class Tune:
    DIRECTORY = "tune"
    BEST = "best.toml"
    TRIALS = "trials.parquet"
    PLOT = "tune.png"
    STUDIES = ".studies"  # DATA/tune/.studies/<key>/, the Optuna journal, kept across kills
    JOURNAL = "study.journal"


class Compare:
    DIRECTORY = "compare"
    COMPARISON = "comparison.parquet"
    SWEEP = "sweep.parquet"
    PLOT = "compare.png"


class History:
    DIRECTORY = "history"
    RUNS = "runs.parquet"
    TREND = "trend.png"
    RUNNING = "running.json"


class Logs:
    DIRECTORY = "logs"
    FILE = "{time}-{command}.log"
    KEEP = 100  # files; older ones are removed


class Prefect:
    """What Prefect's temporary server keeps (flows.server), beside the outputs it ran."""

    DIRECTORY = ".prefect"
    DATABASE = "server.db"
    MEMO = "memo_store.toml"  # the blocks registered in that database
    RESULTS = "results"  # Prefect's result files (a failed run's error), cleared at each start
