"""an agent's own phone number

``agents.phone_number``: the E.164 number an agent takes calls on instead of the console's softphone (issue 14,
"an agent may instead take calls on their own phone number"); NULL (the default): the softphone.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_number', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('phone_number')
