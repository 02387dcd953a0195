"""web callback (issue 15)

``callbacks``: a customer to call back (now or at a chosen time), durable until completed, failed or cancelled,
with the lease of the hub process that moves it into the queue. ``callback_attempts``: each dialled call, unique
per (callback, n) so that one attempt is dialled once. ``conversations.queue_since``: the place a conversation
takes in its queue when not its creation (a callback keeps the place of the call it replaces: virtual hold).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:01:17
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_since', crm_store.models.UTCDateTime(timezone=True), nullable=True))

    op.create_table('callbacks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('requested_for', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('enqueued_at', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('origin_conversation_id', sa.Integer(), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('lease_until', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('visitor', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('cancel_token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('connected_at', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['origin_conversation_id'], ['conversations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_callbacks_conversation', ['conversation_id'], unique=False)
        batch_op.create_index('ix_callbacks_customer_state', ['customer_id', 'state'], unique=False)
        batch_op.create_index('ix_callbacks_number_created', ['number', 'created_at'], unique=False)
        batch_op.create_index('ix_callbacks_state_due', ['state', 'due_at'], unique=False)

    op.create_table('callback_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('callback_id', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('call_sid', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('started_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['callback_id'], ['callbacks.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('callback_id', 'n', name='uq_callback_attempts_n')
    )
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_callback_attempts_call_sid', ['call_sid'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_attempts_call_sid')

    op.drop_table('callback_attempts')
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_callbacks_state_due')
        batch_op.drop_index('ix_callbacks_number_created')
        batch_op.drop_index('ix_callbacks_customer_state')
        batch_op.drop_index('ix_callbacks_conversation')

    op.drop_table('callbacks')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('queue_since')
