"""Prefect flows: compose tasks, no business logic. One module per flow."""
