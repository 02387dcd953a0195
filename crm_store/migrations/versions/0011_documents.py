"""the document library (issue 17: document push)

``documents``: the files admins and supervisors upload for agents to push onto a customer's page (the bytes in
the media store under ``media_key``, the SHA-256 of the bytes). Pushes and what the customer did with them are
rows of the customer's timeline (``interactions``, kind ``document_push``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import crm_store.models


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('documents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('media_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', crm_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by'], ['agents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('documents')
