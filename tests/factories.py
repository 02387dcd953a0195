"""Small builders of test data for the contact repository."""

from __future__ import annotations

from crm_store.db import Database
from crm_store.models import Product


async def add_product(
    db: Database,
    sku: str = "TSHIRT",
    *,
    name: str = "T-shirt",
    price_minor: int = 1500,
    stock: int = 10,
    lead_time_days: int = 1,
    options: dict[str, list[str]] | None = None,
    active: bool = True,
) -> Product:
    """Store one product and return it."""
    async with db.transaction() as s:
        product = Product(
            sku=sku,
            name=name,
            price_minor=price_minor,
            stock=stock,
            lead_time_days=lead_time_days,
            options=options if options is not None else {},
            active=active,
        )
        s.add(product)
        await s.flush()
    return product
