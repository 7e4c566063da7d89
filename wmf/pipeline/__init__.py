"""The stage machinery: the registry, cache keys, plans, builds, verification, publishing,
status, the run summary and history. It knows stages only through their declarations."""
