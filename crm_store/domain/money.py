"""Money as integer minor units (cents), and how an amount is shown to a customer."""

from __future__ import annotations

# Currencies whose minor unit is not a hundredth (ISO 4217 exponent); everything else has two decimals.
_EXPONENTS: dict[str, int] = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "VND": 0,
}


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (2 for EUR: 1 euro = 100 cents)."""
    return _EXPONENTS.get(currency.upper(), 2)


def format_money(minor: int, currency: str = "EUR") -> str:
    """Show an amount in minor units as the customer reads it, e.g. 1999 -> "19.99 EUR"."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"money is a whole number of minor units, got {minor!r}")
    code = currency.upper()
    exponent = minor_unit_exponent(code)
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{units} {code}"
    return f"{sign}{units}.{cents:0{exponent}d} {code}"
