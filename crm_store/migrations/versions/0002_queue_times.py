"""queue times and agent state log

Conversations get ``queued_at`` (entered an agent queue) and ``abandoned_at`` (left before being
answered), indexed by ``(queue_id, queued_at)`` for the interval statistics; ``agent_state_log`` keeps
each agent's time in each state across restarts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queued_at', crm_store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('abandoned_at', crm_store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_conversations_queue_queued', ['queue_id', 'queued_at'], unique=False)

    op.create_table('agent_state_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('started_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', crm_store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('agent_state_log', schema=None) as batch_op:
        batch_op.create_index('ix_agent_state_log_agent_started', ['agent_id', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agent_state_log', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_state_log_agent_started')

    op.drop_table('agent_state_log')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_queue_queued')
        batch_op.drop_column('abandoned_at')
        batch_op.drop_column('queued_at')
