"""click-to-call: a contact waiting for one agent

``conversations.pinned_agent_id``: the only agent the router may offer a waiting conversation to until it is first
answered (an agent's click-to-call: the hub calls the customer for that agent); ``callbacks.pinned_agent_id``: the
same for a callback until it enters its queue (``docs/subsystems/callback.md``). NULL (the default): anyone.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pinned_agent_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_conversations_pinned_agent_id_agents', 'agents', ['pinned_agent_id'], ['id'])
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pinned_agent_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_callbacks_pinned_agent_id_agents', 'agents', ['pinned_agent_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_constraint('fk_callbacks_pinned_agent_id_agents', type_='foreignkey')
        batch_op.drop_column('pinned_agent_id')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_constraint('fk_conversations_pinned_agent_id_agents', type_='foreignkey')
        batch_op.drop_column('pinned_agent_id')
