"""campaigns, neighborhoods, pledges and their counts

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 00:35:21.627968

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('city', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('goal', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('slug', name=op.f('uq_campaigns_slug'))
    )
    op.create_table('neighborhoods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('boundary', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_neighborhoods')),
    sa.UniqueConstraint('slug', name=op.f('uq_neighborhoods_slug'))
    )
    op.create_table('hourly_counts',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_hourly_counts_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', 'hour', 'kind', name=op.f('pk_hourly_counts'))
    )
    op.create_table('neighborhood_counts',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('neighborhood_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_neighborhood_counts_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['neighborhood_id'], ['neighborhoods.id'], name=op.f('fk_neighborhood_counts_neighborhood_id_neighborhoods')),
    sa.PrimaryKeyConstraint('campaign_id', 'neighborhood_id', 'kind', name=op.f('pk_neighborhood_counts'))
    )
    op.create_table('pledges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('public_id', sa.String(length=24), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('neighborhood_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=True),
    sa.Column('show_name', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('synthetic', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('resident', 'business')", name=op.f('ck_pledges_kind')),
    sa.CheckConstraint("status IN ('counted', 'pending', 'held', 'removed')", name=op.f('ck_pledges_status')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_pledges_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['neighborhood_id'], ['neighborhoods.id'], name=op.f('fk_pledges_neighborhood_id_neighborhoods')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledges')),
    sa.UniqueConstraint('campaign_id', 'email', name=op.f('uq_pledges_campaign_id_email')),
    sa.UniqueConstraint('public_id', name=op.f('uq_pledges_public_id'))
    )


def downgrade():
    op.drop_table('pledges')
    op.drop_table('neighborhood_counts')
    op.drop_table('hourly_counts')
    op.drop_table('neighborhoods')
    op.drop_table('campaigns')
