"""The weighted matrix factorization: `factorization.MatrixFactorization` over the exact
`objective`, its `solvers`, and two compute backends, `cpu` (fused numba kernels) and `gpu`
(torch sparse CSR)."""
