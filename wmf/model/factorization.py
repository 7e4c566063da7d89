"""`MatrixFactorization`: one implicit-style API over CPU and GPU, with resumable training.

The training loop is deliberately one readable loop (nanoGPT-style): step, exact
loss, optional evaluation, atomic checkpoint, callback. A checkpoint holds
everything the remaining iterations depend on (factors, optimizer state,
history, config), so a killed run resumes to the same factors as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from wmf.config import TrainConfig
from wmf.data.interactions import Holdout
from wmf.layout import CONFIG, Train
from wmf.model.objective import InteractionsLike, Objective, make_ops, regularization_weights
from wmf.model.solvers import als_sweep, fold_in_rows, gradient_step, make_optimizer

# Config fields that do not change the trajectory of the factors: a checkpoint
# written under other values of these is still resumed.
_RESUMABLE_DIFFERENCES = {"iterations", "eval_every", "early_stopping_metric", "patience", "eval_k"}

# Called after each iteration with its history record; returning True stops the fit.
Callback = Callable[["MatrixFactorization", dict[str, Any]], bool | None]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def eval_ks(config: TrainConfig) -> tuple[int, ...]:
    return config.evaluated_ks


class MatrixFactorization:
    """Weighted matrix factorization of the user x movie interaction matrix."""

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()
        self.device = resolve_device(self.config.device)
        self.U: torch.Tensor | None = None
        self.V: torch.Tensor | None = None
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, float] = {}
        self.popularity: dict[str, float] = {}
        self._objective: Objective | None = None

    # -- factors ---------------------------------------------------------------------
    @property
    def user_factors(self) -> np.ndarray:
        return self._numpy(self.U)

    @property
    def movie_factors(self) -> np.ndarray:
        return self._numpy(self.V)

    @staticmethod
    def _numpy(x: torch.Tensor | None) -> np.ndarray:
        if x is None:
            raise RuntimeError("the model is not fitted")
        return x.detach().cpu().numpy()

    def loss(self) -> float:
        """The exact loss of the current factors (the notebook's mean over cells)."""
        if self._objective is None:
            raise RuntimeError("loss() needs fit() first: the objective depends on the data")
        return self._objective.loss(self.U, self.V)

    # -- training --------------------------------------------------------------------
    def fit(
        self,
        train: InteractionsLike,
        holdout: Holdout | None = None,
        checkpoint_dir: Path | None = None,
        progress: bool = True,
        callback: Callback | None = None,
        init: tuple[torch.Tensor, torch.Tensor] | None = None,
        iterations: int | None = None,
        phase: str = "train",
        fold_in: tuple[np.ndarray, np.ndarray] | None = None,
        label: str | None = None,
    ) -> MatrixFactorization:
        """Run `iterations` (default: the config's) from random factors or from `init` (U, V).

        Each history record carries `phase` ("train", or "refit" for a model continued
        on more data), so one history can hold both. `fold_in` (user rows, movie rows):
        rows of `init` that are new, each solved exactly first (movies, users, movies again).
        `label` names the progress bar (default: `phase`), e.g. the optimizer of a comparison.
        """
        cfg = self.config
        n_iter = cfg.iterations if iterations is None else iterations
        if cfg.solver == "als" and cfg.sigmoid:
            raise ValueError("sigmoid predictions need a gradient solver (adam, adagrad, sgd)")
        n_users, n_movies = (int(s) for s in train.shape)
        backend = "torch" if cfg.sigmoid else cfg.cpu_kernels
        ops = make_ops(train, cfg.alpha, cfg.unobserved_weight, self.device, backend)
        lam_u, lam_v = regularization_weights(
            train, cfg.regularization, cfg.scale_regularization, cfg.unobserved_weight
        )
        objective = self._objective = Objective(ops, lam_u, lam_v, sigmoid=cfg.sigmoid)

        if init is None:
            g = torch.Generator().manual_seed(cfg.seed)
            self.U = (torch.randn(n_users, cfg.factors, generator=g) * cfg.init_scale).to(self.device)
            self.V = (torch.randn(n_movies, cfg.factors, generator=g) * cfg.init_scale).to(self.device)
        else:
            self.U, self.V = (torch.as_tensor(x, dtype=torch.float32).to(self.device).clone() for x in init)
            if self.U.shape != (n_users, cfg.factors) or self.V.shape != (n_movies, cfg.factors):
                raise ValueError(
                    f"initial factors {tuple(self.U.shape)} and {tuple(self.V.shape)} do not fit "
                    f"{n_users} users x {n_movies} movies at {cfg.factors} factors"
                )
        optimizer = None
        if cfg.solver != "als":
            optimizer = make_optimizer(cfg.solver, [self.U, self.V], cfg.learning_rate, cfg.momentum)
        self.history, start = [], 0
        if checkpoint_dir is not None:
            start = self._resume(Path(checkpoint_dir), optimizer)
        if fold_in is not None and start == 0:
            users, movies = (torch.as_tensor(rows, dtype=torch.int64) for rows in fold_in)
            with ops.exclusive():  # movies again: one rated only by new users had no one to solve against
                for side, rows in (("movies", movies), ("users", users), ("movies", movies)):
                    fold_in_rows(ops, objective, self.U, self.V, side, rows)

        evaluate = _evaluator(train, holdout, eval_ks(cfg))
        best, bad_evals = _early_stopping_state(self.history, cfg.early_stopping_metric)
        if cfg.early_stopping_metric and bad_evals >= cfg.patience:
            start = n_iter  # a resumed run that had already stopped early
        bar = tqdm(total=n_iter, initial=start, disable=not progress, desc=label or phase)
        for it in range(start, n_iter):
            with ops.exclusive():
                t0 = time.perf_counter()
                if optimizer is None:
                    als_sweep(ops, objective, self.U, self.V, cfg.als_solve, cfg.cg_steps)
                else:
                    gradient_step(objective, self.U, self.V, optimizer)
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                loss = objective.loss(self.U, self.V)
            record: dict[str, Any] = {"phase": phase, "iteration": it + 1, "seconds": seconds, "loss": loss}
            stop = False
            if evaluate and cfg.eval_every and (it + 1) % cfg.eval_every == 0:
                record["metrics"] = evaluate(self.U, self.V)
                if cfg.early_stopping_metric:
                    value = record["metrics"][cfg.early_stopping_metric]
                    best, bad_evals = (value, 0) if value > best else (best, bad_evals + 1)
                    stop = bad_evals >= cfg.patience
            self.history.append(record)
            if checkpoint_dir is not None:
                self._checkpoint(Path(checkpoint_dir), optimizer)
            bar.set_postfix(loss=f"{record['loss']:.6g}", s_per_it=f"{record['seconds']:.2f}")
            bar.update()
            if callback is not None and callback(self, record) is True:
                stop = True  # the caller's budget is spent
            if stop:
                break
        bar.close()
        if evaluate:
            if self.history and "metrics" not in self.history[-1]:
                self.history[-1]["metrics"] = evaluate(self.U, self.V)
            self.metrics = self.history[-1]["metrics"] if self.history else evaluate(self.U, self.V)
            from wmf.evaluation.metrics import evaluate_popularity

            self.popularity = evaluate_popularity(train, holdout, eval_ks(cfg))
        return self

    # -- persistence -----------------------------------------------------------------
    def save(self, directory: Path, ids: dict[str, np.ndarray] | None = None) -> None:
        """model.safetensors (factors, config and shapes in its metadata) + config.json.

        `ids`: arrays stored beside the factors (the original user and movie ids, so the
        next night's warm start can match rows whatever their indexes have become).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"user_factors": self.U, "movie_factors": self.V}
        tensors = {k: v.detach().cpu().float() for k, v in tensors.items()}
        tensors.update({k: torch.from_numpy(np.array(v)) for k, v in (ids or {}).items()})
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            directory / Train.MODEL,
            metadata={"config": json.dumps(dataclasses.asdict(self.config))},
        )
        (directory / CONFIG).write_text(json.dumps(self._describe(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> MatrixFactorization:
        directory = Path(directory)
        described = json.loads((directory / CONFIG).read_text())
        model = cls(dataclasses.replace(TrainConfig(**described["config"]), device=device))
        tensors = load_file(directory / Train.MODEL)
        model.U = tensors["user_factors"].to(model.device)
        model.V = tensors["movie_factors"].to(model.device)
        return model

    def _describe(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "n_users": int(self.U.shape[0]),
            "n_movies": int(self.V.shape[0]),
            "factors": int(self.U.shape[1]),
        }

    def _checkpoint(self, directory: Path, optimizer: torch.optim.Optimizer | None) -> None:
        """Everything the remaining iterations need, in one file replaced atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"user_factors": self.U, "movie_factors": self.V}
        optim_meta: dict[str, Any] = {}
        if optimizer is not None:
            state = optimizer.state_dict()
            optim_meta = {"param_groups": state["param_groups"], "state": {}}
            for pid, entries in state["state"].items():
                optim_meta["state"][str(pid)] = sorted(entries)
                for key, value in entries.items():
                    tensors[f"optim.{pid}.{key}"] = torch.as_tensor(value)
        metadata = {
            "iteration": str(len(self.history)),
            "history": json.dumps(self.history),
            "config": json.dumps(dataclasses.asdict(self.config)),
            "optimizer": json.dumps(optim_meta),
        }
        tmp = directory / f".{Train.CHECKPOINT}.{os.getpid()}.tmp"
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata)
        os.replace(tmp, directory / Train.CHECKPOINT)

    def _resume(self, directory: Path, optimizer: torch.optim.Optimizer | None) -> int:
        """Load a compatible checkpoint; returns the number of iterations already done."""
        path = directory / Train.CHECKPOINT
        if not path.exists():
            return 0
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        saved = json.loads(metadata["config"])
        current = dataclasses.asdict(self.config)
        if any(saved.get(k) != v for k, v in current.items() if k not in _RESUMABLE_DIFFERENCES):
            return 0
        if tensors["user_factors"].shape != self.U.shape:
            return 0
        if tensors["movie_factors"].shape != self.V.shape:
            return 0
        self.U.copy_(tensors["user_factors"])
        self.V.copy_(tensors["movie_factors"])
        optim_meta = json.loads(metadata["optimizer"])
        if optimizer is not None and optim_meta:
            state = {
                int(pid): {k: tensors[f"optim.{pid}.{k}"] for k in keys}
                for pid, keys in optim_meta["state"].items()
            }
            optimizer.load_state_dict({"state": state, "param_groups": optim_meta["param_groups"]})
        self.history = json.loads(metadata["history"])
        return int(metadata["iteration"])


def _evaluator(
    train: InteractionsLike, holdout: Holdout | None, ks: tuple[int, ...]
) -> Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None:
    if holdout is None or len(holdout[0]) == 0:
        return None
    from wmf.evaluation.metrics import evaluate

    def run(U: torch.Tensor, V: torch.Tensor) -> dict[str, float]:
        on_gpu = U.device.type != "cpu"
        metrics = evaluate(U, V, train, holdout, ks, batch_size=8192 if on_gpu else 256, device=str(U.device))
        return {k: float(v) for k, v in metrics.items()}

    return run


def _early_stopping_state(history: list[dict[str, Any]], metric: str) -> tuple[float, int]:
    """(best value so far, evaluations since it) replayed from a resumed history."""
    best, bad = -float("inf"), 0
    for record in history:
        if metric and "metrics" in record:
            value = record["metrics"][metric]
            best, bad = (value, 0) if value > best else (best, bad + 1)
    return best, bad
