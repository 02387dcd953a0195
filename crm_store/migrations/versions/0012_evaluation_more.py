"""order evaluation, the rest of issue 18: alerts raised once, the shop's shipping lead time

``evaluation_alerts``: order alerts (at risk of missing the promised date, overdue) and stock alerts (at or
below the product's reorder point, ``products.low_stock_threshold``), one row per condition, raised once and
cleared when the condition ends. ``evaluation_settings.ship_lead_days``: an open order not shipped this many
days before its promised date is at risk; ``evaluation_settings.bot_cross_sell``: the bot may offer the top
association once after an order is confirmed on chat.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evaluation_alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('times_raised', sa.Integer(), nullable=False),
    sa.Column('raised_at', crm_store.models.UTCDateTime(), nullable=False),
    sa.Column('cleared_at', crm_store.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('evaluation_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_alerts_open', ['cleared_at', 'raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_alerts_customer_id'), ['customer_id'], unique=False)
    with op.batch_alter_table('evaluation_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ship_lead_days', sa.Integer(), server_default='2', nullable=False))
        batch_op.add_column(sa.Column('bot_cross_sell', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('evaluation_settings', schema=None) as batch_op:
        batch_op.drop_column('bot_cross_sell')
        batch_op.drop_column('ship_lead_days')
    with op.batch_alter_table('evaluation_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_alerts_customer_id'))
        batch_op.drop_index('ix_evaluation_alerts_open')
    op.drop_table('evaluation_alerts')
