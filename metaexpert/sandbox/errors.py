"""Binance error responses: the codes, messages and HTTP statuses the real exchange sends.

Why the exact wording matters: ccxt maps some errors by code and others by message text, so a
loopback server must send both exactly as Binance does for clients to raise the right exception.
"""

from __future__ import annotations


class BinanceError(Exception):
    """An error the server answers with ``{"code": code, "msg": message}`` and ``status``."""

    def __init__(
        self, code: int, message: str, status: int = 400, headers: dict[str, str] | None = None
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.message}


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_interval() -> BinanceError:
    return BinanceError(-1120, "Invalid interval.")


def missing_parameter(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_parameter(name: str) -> BinanceError:
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9.]+$'."
    )


def unknown_order_on_cancel() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def insufficient_balance() -> BinanceError:
    return BinanceError(-2010, "Account has insufficient balance for requested action.")


def insufficient_margin() -> BinanceError:
    return BinanceError(-2019, "Margin is insufficient.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


def duplicate_spot_client_id() -> BinanceError:
    return BinanceError(-2010, "Duplicate order sent.")


def duplicate_futures_client_id() -> BinanceError:
    return BinanceError(-4116, "ClientOrderId is duplicated.")


def internal_error() -> BinanceError:
    return BinanceError(
        -1001, "Internal error; unable to process your request. Please try again.", status=503
    )
