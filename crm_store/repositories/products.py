"""The product catalogue and its stock, with atomic reservation (no oversell)."""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.domain.validation import ProductInfo
from crm_store.models import Product


def product_info(p: Product) -> ProductInfo:
    """The pure-core view of a product row."""
    return ProductInfo(
        sku=p.sku,
        name=p.name,
        price_minor=p.price_minor,
        stock=p.stock,
        lead_time_days=p.lead_time_days,
        options={k: list(v) for k, v in (p.options or {}).items()},
        active=p.active,
    )


async def list_products(
    s: AsyncSession, *, category: str | None = None, query: str | None = None, include_inactive: bool = False
) -> Sequence[Product]:
    """The catalogue, ordered by category and name, optionally filtered."""
    stmt = select(Product)
    if not include_inactive:
        stmt = stmt.where(col(Product.active).is_(True))
    if category:
        stmt = stmt.where(Product.category == category)
    if query:
        needle = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(col(Product.name).ilike(f"%{needle}%", escape="\\"))
    return (await s.exec(stmt.order_by(col(Product.category), col(Product.name)))).all()


async def get_by_sku(s: AsyncSession, sku: str) -> Product | None:
    """The product with this SKU (SKUs are matched case-insensitively, stored upper-case)."""
    return (await s.exec(select(Product).where(Product.sku == sku.strip().upper()))).first()


async def catalogue_for(s: AsyncSession, skus: Iterable[str]) -> dict[str, Product]:
    """Products by SKU for the given SKUs (unknown SKUs are simply absent)."""
    wanted = {sku.strip().upper() for sku in skus if isinstance(sku, str)}
    if not wanted:
        return {}
    rows = (await s.exec(select(Product).where(col(Product.sku).in_(wanted)))).all()
    return {p.sku: p for p in rows}


async def reserve_stock(s: AsyncSession, product_id: int, quantity: int) -> bool:
    """Take ``quantity`` from stock if that many are there; atomic, so concurrent orders never oversell."""
    result = await s.execute(
        update(Product)
        .where(col(Product.id) == product_id, col(Product.stock) >= quantity)
        .values(stock=Product.stock - quantity)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def release_stock(s: AsyncSession, product_id: int, quantity: int) -> None:
    """Put ``quantity`` back into stock (an order was cancelled)."""
    await s.execute(update(Product).where(col(Product.id) == product_id).values(stock=Product.stock + quantity))


async def low_stock(s: AsyncSession) -> Sequence[Product]:
    """Active products at or under their replenishment threshold."""
    stmt = select(Product).where(
        col(Product.active).is_(True), col(Product.stock) <= col(Product.low_stock_threshold)
    )
    return (await s.exec(stmt.order_by(col(Product.stock), col(Product.sku)))).all()
