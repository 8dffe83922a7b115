"""The sandbox's venue-neutral matching core.

``model`` (orders, fills, balances, positions, market specs), ``exchange`` (accounts, matching,
fills and fees), ``matching`` (price-path rules), ``margin`` (linear and inverse PnL, margin,
liquidation, funding), ``rejects`` (why something was refused), ``events`` (what changed),
``market_data`` and ``replay`` (recorded candles and ticks), ``faults`` (fault injection),
``hub`` (websocket fan-out) and ``service`` (the server shell every venue builds on).
Nothing here knows a venue's wire names, codes or payload shapes.
"""
