"""Alembic migrations of the MetaExpert database, shipped inside the package.

Run them with ``Database(url).upgrade()`` or ``python -m metaexpert.storage upgrade``;
they are the only way the schema is created or changed.
"""
