"""order evaluation and customer value (issue 18)

``evaluation_settings`` and ``order_criteria``: a shop's ELECTRE II thresholds and criteria, RFM window,
segment-to-routing-tier map and association thresholds. ``fulfilment_ranks``: the ranked fulfilment queue.
``customer_values``: RFM scores, segment and attrition per customer. ``product_associations``: co-purchase
rules. ``offer_rules`` and ``offer_events``: the next best offer's business rules and what agents did.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:11:12.671285
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_values',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('recency_days', sa.Float(), nullable=False),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('monetary_minor', sa.BigInteger(), nullable=False),
    sa.Column('r', sa.Integer(), nullable=False),
    sa.Column('f', sa.Integer(), nullable=False),
    sa.Column('m', sa.Integer(), nullable=False),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('value_score', sa.Float(), nullable=False),
    sa.Column('orders_total', sa.Integer(), nullable=False),
    sa.Column('usual_gap_days', sa.Float(), nullable=False),
    sa.Column('own_gap', sa.Boolean(), nullable=False),
    sa.Column('attrition', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('attrition_score', sa.Float(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('computed_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('customer_id')
    )
    with op.batch_alter_table('customer_values', schema=None) as batch_op:
        batch_op.create_index('ix_customer_values_segment', ['segment'], unique=False)

    op.create_table('evaluation_settings',
    sa.Column('shop', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('concordance_low', sa.Float(), nullable=False),
    sa.Column('concordance_high', sa.Float(), nullable=False),
    sa.Column('discordance_low', sa.Float(), nullable=False),
    sa.Column('discordance_high', sa.Float(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('preferred_channels', sa.JSON(), nullable=False),
    sa.Column('rfm_window_days', sa.Integer(), nullable=False),
    sa.Column('segment_tiers', sa.JSON(), nullable=False),
    sa.Column('min_support', sa.Float(), nullable=False),
    sa.Column('min_confidence', sa.Float(), nullable=False),
    sa.Column('min_lift', sa.Float(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('updated_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('shop')
    )
    op.create_table('fulfilment_ranks',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('criteria_values', sa.JSON(), nullable=False),
    sa.Column('raw_values', sa.JSON(), nullable=False),
    sa.Column('above', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('tied_with', sa.JSON(), nullable=False),
    sa.Column('incomparable_with', sa.JSON(), nullable=False),
    sa.Column('tie_break', sa.Boolean(), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('ranked_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('offer_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('offer_sku', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('offer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('script', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('order_criteria',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('scale_min', sa.Float(), nullable=False),
    sa.Column('scale_max', sa.Float(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shop', 'key', name='uq_order_criteria_shop_key')
    )
    op.create_table('product_associations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('antecedent_id', sa.Integer(), nullable=False),
    sa.Column('consequent_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('support', sa.Float(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('lift', sa.Float(), nullable=False),
    sa.Column('computed_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['antecedent_id'], ['products.id'], ),
    sa.ForeignKeyConstraint(['consequent_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('antecedent_id', 'consequent_id', name='uq_product_associations_pair')
    )
    with op.batch_alter_table('product_associations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_associations_antecedent_id'), ['antecedent_id'], unique=False)

    op.create_table('offer_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['rule_id'], ['offer_rules.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('offer_events', schema=None) as batch_op:
        batch_op.create_index('ix_offer_events_customer_created', ['customer_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('offer_events', schema=None) as batch_op:
        batch_op.drop_index('ix_offer_events_customer_created')

    op.drop_table('offer_events')
    with op.batch_alter_table('product_associations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_associations_antecedent_id'))

    op.drop_table('product_associations')
    op.drop_table('order_criteria')
    op.drop_table('offer_rules')
    op.drop_table('fulfilment_ranks')
    op.drop_table('evaluation_settings')
    with op.batch_alter_table('customer_values', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_values_segment')

    op.drop_table('customer_values')
