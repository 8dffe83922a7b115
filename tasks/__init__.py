"""Prefect tasks: thin wrappers over the library that own retry and cache policy."""
