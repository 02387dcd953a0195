"""web callback settings per queue

``queues.callback_mode`` (``agent_first``, the default, or ``customer_first``: the customer is dialled first and
waits in the conference while the callback is offered to an agent), ``queues.callback_voicemail`` (a message left
on an answering machine after the beep; empty: none) and ``queues.callback_hours`` (the queue's own opening hours for
callback slots, ``0,1,2,3,4 09:00-17:00 +60`` or ``always``; empty: the hub's ``CALLBACK_*`` hours). Issue 15.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 08:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_mode', sa.String(length=16), nullable=False, server_default='agent_first'))
        batch_op.add_column(sa.Column('callback_voicemail', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('callback_hours', sa.String(length=80), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('callback_hours')
        batch_op.drop_column('callback_voicemail')
        batch_op.drop_column('callback_mode')
