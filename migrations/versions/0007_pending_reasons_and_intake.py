"""pending reasons instead of silent holds, intake keys, shared places

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 20:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PENDING_REASON_CHECK = (
    "(status = 'pending') = (pending_reason IS NOT NULL) "
    "AND (pending_reason IS NULL OR pending_reason IN ('confirm_email', 'review'))"
)


def upgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_pledges_status'), type_='check')
        batch_op.add_column(sa.Column('pending_reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('intake_key_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_pledges_intake_key_id_api_keys'), 'api_keys', ['intake_key_id'], ['id']
        )
    # A held pledge was a silent one: it now waits, saying so, for the mayor's office.
    op.execute("UPDATE pledges SET status = 'pending', pending_reason = 'review' WHERE status = 'held'")
    op.execute("UPDATE pledges SET pending_reason = 'confirm_email' WHERE status = 'pending' AND pending_reason IS NULL")
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_check_constraint('status', "status IN ('counted', 'pending', 'removed')")
        batch_op.create_check_constraint('pending_reason', PENDING_REASON_CHECK)
    op.create_index(
        'ix_pledges_pending', 'pledges', ['campaign_id', 'pending_reason'],
        sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        'ix_pledges_intake_key', 'pledges', ['campaign_id', 'intake_key_id', 'created_at'],
        sqlite_where=sa.text('intake_key_id IS NOT NULL'),
        postgresql_where=sa.text('intake_key_id IS NOT NULL'),
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_api_keys_scope'), type_='check')
        batch_op.create_check_constraint('scope', "scope IN ('read', 'intake', 'admin')")
    op.create_table('shared_places',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_shared_places_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', 'address_hash', name=op.f('pk_shared_places'))
    )


def downgrade():
    op.drop_table('shared_places')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_api_keys_scope'), type_='check')
        batch_op.create_check_constraint('scope', "scope IN ('read', 'admin')")
    op.drop_index('ix_pledges_intake_key', table_name='pledges')
    op.drop_index('ix_pledges_pending', table_name='pledges')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_pledges_pending_reason'), type_='check')
        batch_op.drop_constraint(op.f('ck_pledges_status'), type_='check')
    op.execute("UPDATE pledges SET status = 'held' WHERE status = 'pending' AND pending_reason = 'review'")
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_pledges_intake_key_id_api_keys'), type_='foreignkey')
        batch_op.drop_column('intake_key_id')
        batch_op.drop_column('pending_reason')
        batch_op.create_check_constraint('status', "status IN ('counted', 'pending', 'held', 'removed')")
