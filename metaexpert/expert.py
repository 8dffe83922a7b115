"""The MetaExpert facade (being written)."""
