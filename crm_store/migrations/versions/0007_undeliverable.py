"""undeliverable addresses

``contact_points``: ``undeliverable_at`` and ``undeliverable_reason``, set by a permanent delivery failure
(an email's 5.x.x bounce); replies to the address are refused until the customer writes from it again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:58:32.981319
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contact_points', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undeliverable_at', crm_store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('undeliverable_reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('contact_points', schema=None) as batch_op:
        batch_op.drop_column('undeliverable_reason')
        batch_op.drop_column('undeliverable_at')

