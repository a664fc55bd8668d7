"""partial indexes for shown businesses and address hashes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 02:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_index('ix_pledges_shown')
        batch_op.drop_index('ix_pledges_address')
    op.create_index(
        'ix_pledges_shown', 'pledges', ['campaign_id', 'created_at', 'id'],
        sqlite_where=sa.text('show_name = 1'), postgresql_where=sa.text('show_name'),
    )
    op.create_index(
        'ix_pledges_address', 'pledges', ['campaign_id', 'address_hash', 'created_at'],
        sqlite_where=sa.text('address_hash IS NOT NULL'),
        postgresql_where=sa.text('address_hash IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_pledges_address', table_name='pledges')
    op.drop_index('ix_pledges_shown', table_name='pledges')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_index('ix_pledges_shown', ['campaign_id', 'show_name', 'created_at'], unique=False)
        batch_op.create_index('ix_pledges_address', ['campaign_id', 'address_hash', 'created_at'], unique=False)
