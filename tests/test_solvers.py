"""ALS half-steps never increase the exact objective; CG, Cholesky, numba and torch agree."""

from __future__ import annotations

import pytest
import torch
from helpers_train import random_interactions

from wmf.model.cpu import NumbaOps
from wmf.model.gpu import TorchOps
from wmf.model.objective import Objective, regularization_weights
from wmf.model.solvers import als_half_step, als_sweep, fold_in_rows, gradient_step, make_optimizer


@pytest.fixture(params=["numba", "torch"])
def ops_cls(request, monkeypatch):
    monkeypatch.setattr("wmf.model.cpu.TILE_BYTES", 1)  # many column tiles in the scatter
    return TorchOps if request.param == "torch" else NumbaOps


def setup(ops_cls, dtype=torch.float64, alpha=1.0, scale=False, d=8, seed=0, w0=0.05):
    train = random_interactions(90, 130, density=0.08, seed=seed)
    ops = ops_cls(train, alpha, w0, dtype=dtype)
    objective = Objective(ops, *regularization_weights(train, 0.1, scale, w0))
    g = torch.Generator().manual_seed(seed)
    U = (torch.randn(90, d, generator=g) * 0.1).to(dtype)
    V = (torch.randn(130, d, generator=g) * 0.1).to(dtype)
    return ops, objective, U, V


@pytest.mark.parametrize("solve", ["cg", "cholesky"])
@pytest.mark.parametrize("scale", [False, True])
def test_every_half_step_does_not_increase_objective(ops_cls, solve, scale):
    ops, objective, U, V = setup(ops_cls, scale=scale)
    previous = objective.total(U, V)
    for _ in range(4):
        for side in ("users", "movies"):
            als_half_step(ops, objective, U, V, side, solve, cg_steps=3)
            current = objective.total(U, V)
            assert current <= previous * (1 + 1e-12)
            previous = current
    assert previous < 0.9 * objective.total(*setup(ops_cls, scale=scale)[2:])


@pytest.mark.parametrize("side", ["users", "movies"])
def test_cg_converges_to_cholesky(ops_cls, side):
    ops, objective, U, V = setup(ops_cls)
    exact_U, exact_V = U.clone(), V.clone()
    als_half_step(ops, objective, exact_U, exact_V, side, "cholesky", 0)
    als_half_step(ops, objective, U, V, side, "cg", cg_steps=40)
    torch.testing.assert_close(U, exact_U, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(V, exact_V, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_and_torch_paths_give_same_factors(dtype, monkeypatch):
    monkeypatch.setattr("wmf.model.cpu.TILE_BYTES", 1)
    results = []
    for cls in (NumbaOps, TorchOps):
        ops, objective, U, V = setup(cls, dtype=dtype, alpha=0.5)
        for _ in range(3):
            als_sweep(ops, objective, U, V, "cg", 3)
        results.append((U, V, objective.loss(U, V)))
    (U1, V1, loss1), (U2, V2, loss2) = results
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(U1, U2, rtol=tol, atol=tol)
    torch.testing.assert_close(V1, V2, rtol=tol, atol=tol)
    assert loss1 == pytest.approx(loss2, rel=tol)


def test_numba_sweeps_are_deterministic(monkeypatch):
    monkeypatch.setattr("wmf.model.cpu.TILE_BYTES", 1)
    runs = []
    for _ in range(2):
        ops, objective, U, V = setup(NumbaOps, dtype=torch.float32)
        for _ in range(3):
            als_sweep(ops, objective, U, V, "cg", 3)
        runs.append((U, V))
    assert torch.equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("name", ["adam", "adagrad", "sgd"])
def test_gradient_solvers_decrease_loss(name):
    _, objective, U, V = setup(NumbaOps, dtype=torch.float32, w0=0.005)
    lr = {"adam": 0.02, "adagrad": 0.05, "sgd": 200.0}[name]
    optimizer = make_optimizer(name, [U, V], lr, momentum=0.5)
    start = objective.loss(U, V)
    for _ in range(30):
        gradient_step(objective, U, V, optimizer)
    assert objective.loss(U, V) < 0.8 * start


@pytest.mark.parametrize("side", ["users", "movies"])
def test_fold_in_solves_rows_as_the_exact_half_step_does(ops_cls, side):
    """A folded-in row is the exact least-squares answer, whatever it held before."""
    ops, objective, U, V = setup(ops_cls, scale=True)
    als_sweep(ops, objective, U, V, "cholesky", 3)
    X = U if side == "users" else V
    rows = torch.tensor([0, 7, 41, len(X) - 1])
    expected_U, expected_V = U.clone(), V.clone()
    als_half_step(ops, objective, expected_U, expected_V, side, "cholesky", cg_steps=3)
    expected = (expected_U if side == "users" else expected_V)[rows]
    X[rows] = 0.0
    before = X.clone()
    fold_in_rows(ops, objective, U, V, side, rows)
    torch.testing.assert_close(X[rows], expected)
    others = torch.ones(len(X), dtype=torch.bool)
    others[rows] = False
    assert torch.equal(X[others], before[others])
