"""The Bybit v5 venue: spot, linear and inverse on a unified trading account (see ``routes.py``)."""
