"""The OKX v5 venue: SPOT and SWAP on a unified trading account (see ``routes.py``)."""
