"""queues record calls

``queues.record_calls``: calls bridged from the queue are recorded (the caller hears a consent notice first);
off by default, so existing queues record nothing (docs/subsystems/phone.md, "Recording").

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_calls', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('record_calls')
