"""email

* ``email_messages``: every email taken in (SMTP or IMAP) or sent, with the key of its raw bytes and the
  headers that thread it; unique per (mailbox, Message-ID or the raw bytes' SHA-256), so one message that
  arrives by IMAP and by SMTP is one row.
* ``imap_cursors``: per mailbox and folder, UIDVALIDITY and the last UID taken in (the poller backfills
  from there after any outage).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:31:15.797379
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('imap_cursors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account', 'folder', name='uq_imap_cursors_account_folder')
    )
    op.create_table('email_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('mailbox', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('dedup_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('raw_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('from_addr', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('in_reply_to', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('references', sa.JSON(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('message_seq', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailbox', 'dedup_key', name='uq_email_messages_mailbox_key')
    )
    with op.batch_alter_table('email_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_messages_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_email_messages_message_id', ['message_id'], unique=False)
        batch_op.create_index('ix_email_messages_state', ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('email_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_email_messages_state')
        batch_op.drop_index('ix_email_messages_message_id')
        batch_op.drop_index(batch_op.f('ix_email_messages_conversation_id'))

    op.drop_table('email_messages')
    op.drop_table('imap_cursors')
