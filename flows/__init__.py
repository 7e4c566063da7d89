"""Prefect flows chaining the stage tasks, and the `wmf` command line that drives them."""
