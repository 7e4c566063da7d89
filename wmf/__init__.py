"""wmf: exact weighted matrix factorization of the Netflix Prize ratings.

The core library: parsing, indexing, the model and its solvers, metrics and
export as plain functions. It never imports Prefect; `tasks/` and `flows/` do.
"""

__version__ = "0.3.0"
