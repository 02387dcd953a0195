"""revoked agent sessions

``revoked_sessions``: the agent sessions ended by logout, so that a copy of the cookie is refused on every
hub process until the cookie's own absolute expiry (``expires_at``, indexed for the clean-up).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revoked_sessions',
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('revoked_at', crm_store.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', crm_store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.PrimaryKeyConstraint('session_id')
    )
    with op.batch_alter_table('revoked_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_sessions_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('revoked_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_sessions_expires_at'))
    op.drop_table('revoked_sessions')
