"""The sparse objective equals the notebook's dense formula; its gradients equal autograd's."""

from __future__ import annotations

import pytest
import torch
from helpers_train import dense_matrices, random_interactions

from wmf.model.cpu import NumbaOps
from wmf.model.gpu import TorchOps
from wmf.model.objective import Objective, regularization_weights


def dense_total(M, R, U, V, w0, alpha, lam_u, lam_v, sigmoid=False):
    """The notebook's formula on the whole dense matrix (sum, not mean)."""
    W = torch.where(M > 0, 1 + alpha * R, torch.full_like(M, w0))
    P = U @ V.T
    if sigmoid:
        P = torch.sigmoid(P)
    return (W * (M - P) ** 2).sum() + (lam_u * (U**2).sum(1)).sum() + (lam_v * (V**2).sum(1)).sum()


CASES = [
    # (n_users, n_movies, alpha, scale_regularization)
    (55, 2000, 0.0, False),  # the notebook's orientation and size
    (300, 80, 0.5, False),
    (120, 150, 0.0, True),
    (120, 150, 2.0, True),
]


def make(train, alpha, scale, ops_cls, w0=0.05, reg=0.1, sigmoid=False):
    ops = ops_cls(train, alpha, w0, dtype=torch.float64)
    lam_u, lam_v = regularization_weights(train, reg, scale, w0)
    return Objective(ops, lam_u, lam_v, sigmoid=sigmoid), lam_u, lam_v


def factors(train, d=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(train.n_users, d, generator=g, dtype=torch.float64) * 0.3
    V = torch.randn(train.n_movies, d, generator=g, dtype=torch.float64) * 0.3
    return U, V


@pytest.mark.parametrize("ops_cls", [NumbaOps, TorchOps])
@pytest.mark.parametrize(("n_users", "n_movies", "alpha", "scale"), CASES)
def test_sparse_loss_and_gradients_equal_dense(ops_cls, n_users, n_movies, alpha, scale):
    train = random_interactions(n_users, n_movies, density=0.05, seed=n_users)
    objective, lam_u, lam_v = make(train, alpha, scale, ops_cls)
    M, R = dense_matrices(train)
    U, V = factors(train)
    Ud, Vd = U.clone().requires_grad_(), V.clone().requires_grad_()
    lu, lv = torch.as_tensor(lam_u), torch.as_tensor(lam_v)
    dense = dense_total(M, R, Ud, Vd, 0.05, alpha, lu, lv)
    (dense / M.numel()).backward()
    assert objective.total(U, V) == pytest.approx(float(dense), rel=1e-5)
    assert objective.loss(U, V) == pytest.approx(float(dense) / M.numel(), rel=1e-5)
    gU, gV = objective.gradients(U, V)
    torch.testing.assert_close(gU, Ud.grad, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(gV, Vd.grad, rtol=1e-5, atol=1e-12)


def test_scaled_regularization_follows_row_counts():
    train = random_interactions(30, 40, density=0.1)
    lam_u, lam_v = regularization_weights(train, 0.5, True, 0.01)
    n_u = train.indptr[1] - train.indptr[0]
    assert lam_u[0] == pytest.approx(0.5 * (n_u + 0.01 * 40))
    assert lam_v[3] == pytest.approx(0.5 * ((train.indices == 3).sum() + 0.01 * 30))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_sigmoid_objective_equals_dense(alpha, monkeypatch):
    # small blocks so the blocked all-cells loop really runs over several blocks
    monkeypatch.setattr("wmf.model.objective.SIGMOID_BLOCK", 55 * 300)
    train = random_interactions(55, 2000, density=0.05, seed=3)
    objective, lam_u, lam_v = make(train, alpha, False, TorchOps, sigmoid=True)
    M, R = dense_matrices(train)
    U, V = factors(train)
    Ud, Vd = U.clone().requires_grad_(), V.clone().requires_grad_()
    dense = dense_total(
        M, R, Ud, Vd, 0.05, alpha, torch.as_tensor(lam_u), torch.as_tensor(lam_v), sigmoid=True
    )
    (dense / M.numel()).backward()
    assert objective.total(U, V) == pytest.approx(float(dense), rel=1e-5)
    gU, gV = objective.gradients(U, V)
    torch.testing.assert_close(gU, Ud.grad, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(gV, Vd.grad, rtol=1e-5, atol=1e-12)


def test_notebook_weight_keeps_its_scale():
    """w0 = 0.005 (the notebook's) at zero factors: loss = mean of M, the weighted error of
    predicting 0 everywhere, exactly as the dense formula says."""
    train = random_interactions(55, 2000, density=0.02)
    objective, _, _ = make(train, 0.0, False, NumbaOps, w0=0.005)
    U = torch.zeros(55, 4, dtype=torch.float64)
    V = torch.zeros(2000, 4, dtype=torch.float64)
    assert objective.loss(U, V) == pytest.approx(train.nnz / (55 * 2000))
