"""Prefect tasks: thin wrappers adding retries, caching and logging to wmf.stages."""
