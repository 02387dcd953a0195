"""The document library (issue 17): files agents push onto a customer's page."""

from __future__ import annotations

from typing import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.models import Document


async def add_document(s: AsyncSession, name: str, content_type: str, size: int, media_key: str, uploaded_by: int | None) -> Document:
    doc = Document(name=name[:200], content_type=content_type, size=size, media_key=media_key, uploaded_by=uploaded_by)
    s.add(doc)
    await s.flush()
    return doc


async def list_documents(s: AsyncSession, limit: int = 200) -> Sequence[Document]:
    return (await s.exec(select(Document).where(col(Document.active).is_(True)).order_by(col(Document.id).desc()).limit(limit))).all()


async def get_document(s: AsyncSession, document_id: int) -> Document | None:
    doc = await s.get(Document, document_id)
    return doc if doc is not None and doc.active else None


async def remove_document(s: AsyncSession, document_id: int) -> Document | None:
    """Take a document out of the library (no longer listed or pushed; the row stays for the timeline's sake)."""
    doc = await s.get(Document, document_id)
    if doc is None or not doc.active:
        return None
    doc.active = False
    s.add(doc)
    await s.flush()
    return doc
