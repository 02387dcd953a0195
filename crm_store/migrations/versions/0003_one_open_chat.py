"""one open chat per customer

A unique index on ``conversations (customer_id)`` over the chats that are not closed, so that two hub
processes cannot open two chats for one customer at once. Chats that would break it (several open for
one customer, from before the index) are closed first, all but the newest, with the disposition
``duplicate``; their messages stay where they are.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:15:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OPEN_CHAT_WHERE = "channel = 'chat' AND status <> 'closed'"


def upgrade() -> None:
    op.execute(
        "UPDATE conversations SET status = 'closed', disposition = 'duplicate', closed_at = CURRENT_TIMESTAMP"
        f" WHERE {OPEN_CHAT_WHERE} AND id NOT IN"
        f" (SELECT max(id) FROM conversations WHERE {OPEN_CHAT_WHERE} GROUP BY customer_id)"
    )
    op.create_index(
        'uq_conversations_open_chat', 'conversations', ['customer_id'], unique=True,
        sqlite_where=sa.text(OPEN_CHAT_WHERE), postgresql_where=sa.text(OPEN_CHAT_WHERE),
    )


def downgrade() -> None:
    op.drop_index('uq_conversations_open_chat', table_name='conversations')
