"""channels as adapters

* ``conversations``: ``thread_key`` (email threads, calls), ``customer_address`` and ``our_address`` (where
  replies go and from which of the shop's addresses); the one-open-chat index becomes one open
  conversation per customer *and channel* for per-customer channels (chat, SMS, WhatsApp), and a unique
  thread key per channel for the others. Open conversations that would break it (several open for one
  customer on one channel) are closed first, all but the newest, with the disposition ``duplicate``.
* ``messages``: the delivery status of outbound messages and the provider's error.
* ``contact_points``: ``opted_out_at`` (the customer texted STOP).
* ``webhook_receipts``: provider webhooks taken in, unique per (provider, kind, key), for deduplication.
* Agents who take chats take SMS and WhatsApp too (a quarter of their attention each): their capacity
  gets ``sms`` and ``whatsapp`` where it has none.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:40:00.000000
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OLD_WHERE = "channel = 'chat' AND status <> 'closed'"
OPEN_WHERE = "thread_key IS NULL AND status <> 'closed'"
THREAD_WHERE = "thread_key IS NOT NULL"


def upgrade() -> None:
    op.drop_index('uq_conversations_open_chat', table_name='conversations')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('customer_address', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('our_address', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False, server_default=''))
    open_any = "status <> 'closed'"
    op.execute(
        "UPDATE conversations SET status = 'closed', disposition = 'duplicate', closed_at = CURRENT_TIMESTAMP"
        f" WHERE {open_any} AND id NOT IN"
        f" (SELECT max(id) FROM conversations WHERE {open_any} GROUP BY customer_id, channel)"
    )
    op.create_index(
        'uq_conversations_open_per_channel', 'conversations', ['customer_id', 'channel'], unique=True,
        sqlite_where=sa.text(OPEN_WHERE), postgresql_where=sa.text(OPEN_WHERE),
    )
    op.create_index(
        'uq_conversations_thread', 'conversations', ['channel', 'thread_key'], unique=True,
        sqlite_where=sa.text(THREAD_WHERE), postgresql_where=sa.text(THREAD_WHERE),
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('delivery_error_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('delivery_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
    with op.batch_alter_table('contact_points', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opted_out_at', crm_store.models.UTCDateTime(), nullable=True))
    op.create_table('webhook_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', crm_store.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'kind', 'key', name='uq_webhook_receipts_key')
    )
    bind = op.get_bind()
    agents = sa.table('agents', sa.column('id', sa.Integer), sa.column('capacity', sa.JSON))
    for row in bind.execute(sa.select(agents.c.id, agents.c.capacity)).all():
        capacity = row.capacity if isinstance(row.capacity, dict) else json.loads(row.capacity or "{}")
        if "chat" in capacity and not ({"sms", "whatsapp"} <= set(capacity)):
            capacity = {**capacity, "sms": capacity.get("sms", 4), "whatsapp": capacity.get("whatsapp", 4)}
            bind.execute(sa.update(agents).where(agents.c.id == row.id).values(capacity=capacity))


def downgrade() -> None:
    op.drop_table('webhook_receipts')
    with op.batch_alter_table('contact_points', schema=None) as batch_op:
        batch_op.drop_column('opted_out_at')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('delivery_error')
        batch_op.drop_column('delivery_error_code')
        batch_op.drop_column('delivery_status')
    op.drop_index('uq_conversations_thread', table_name='conversations')
    op.drop_index('uq_conversations_open_per_channel', table_name='conversations')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('our_address')
        batch_op.drop_column('customer_address')
        batch_op.drop_column('thread_key')
    op.execute(
        "UPDATE conversations SET status = 'closed', disposition = 'duplicate', closed_at = CURRENT_TIMESTAMP"
        f" WHERE {OLD_WHERE} AND id NOT IN (SELECT max(id) FROM conversations WHERE {OLD_WHERE} GROUP BY customer_id)"
    )
    op.create_index(
        'uq_conversations_open_chat', 'conversations', ['customer_id'], unique=True,
        sqlite_where=sa.text(OLD_WHERE), postgresql_where=sa.text(OLD_WHERE),
    )
