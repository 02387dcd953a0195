"""Where the IMAP poller stands (``imap_cursors``): UIDVALIDITY and the last UID taken in, per account and folder.

The email channel's IMAP poller (``integrations/email/imap.py``) is the only user. ``account`` is
``user@host`` (never the password). The last UID only moves forward within one UIDVALIDITY; a new
UIDVALIDITY (the folder was recreated) starts the folder again from the UID given (0: all of it).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.models import ImapCursor, utcnow


async def get_cursor(s: AsyncSession, account: str, folder: str) -> ImapCursor | None:
    """The cursor of this account's folder, or None before its first message."""
    stmt = select(ImapCursor).where(ImapCursor.account == account, ImapCursor.folder == folder)
    return (await s.exec(stmt)).first()


async def save_cursor(s: AsyncSession, account: str, folder: str, *, uidvalidity: int, last_uid: int) -> ImapCursor:
    """Record that the folder (under ``uidvalidity``) is taken in up to ``last_uid``.

    Under the same UIDVALIDITY the last UID never goes back; under another one it is set as given.
    """
    row = await get_cursor(s, account, folder)
    if row is None:
        row = ImapCursor(account=account, folder=folder, uidvalidity=uidvalidity, last_uid=last_uid)
        try:
            async with s.begin_nested():
                s.add(row)
                await s.flush()
            return row
        except IntegrityError:  # created meanwhile by another poller of the same folder
            row = await get_cursor(s, account, folder)
            assert row is not None
    if row.uidvalidity != uidvalidity:
        row.uidvalidity, row.last_uid = uidvalidity, last_uid
    else:
        row.last_uid = max(row.last_uid, last_uid)
    row.updated_at = utcnow()
    s.add(row)
    await s.flush()
    return row
