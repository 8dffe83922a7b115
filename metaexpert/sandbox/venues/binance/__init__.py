"""The Binance venue: spot, USD-M and COIN-M (see ``routes.py``)."""
