"""Amounts in minor units (pence, cents), shown the way a customer reads them."""
from nextslot.schemas.views import Money

SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "INR": "₹", "JPY": "¥"}


def money(amount_minor: int, currency: str) -> Money:
    units = f"{amount_minor // 100:,}.{amount_minor % 100:02d}"
    symbol = SYMBOLS.get(currency)
    return Money(amount_minor=amount_minor, currency=currency,
                 display=f"{symbol}{units}" if symbol else f"{currency} {units}")
