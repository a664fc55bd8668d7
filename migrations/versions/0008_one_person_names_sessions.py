"""canonical emails, business names for review, server-side web sessions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:30:00

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

GMAIL_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
CHUNK = 10_000


def canonical_email(address):
    """pledges.emails.canonical_email as of this revision (a migration must not change later)."""
    text = unicodedata.normalize("NFKC", address).casefold().strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), GMAIL_DOMAINS[domain]
    return f"{local}@{domain}"


def upgrade():
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_canonical', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('name_status', sa.String(length=16), nullable=True))
    connection = op.get_bind()
    pledges = sa.table(
        'pledges', sa.column('id'), sa.column('campaign_id'), sa.column('email'),
        sa.column('email_canonical'),
    )
    # Two spellings of one mailbox that were both counted stay counted: the later one keeps a
    # canonical form of its own, so no pledge is lost to the new constraint.
    seen = set()
    rows = connection.execute(sa.select(pledges.c.id, pledges.c.campaign_id, pledges.c.email).order_by(pledges.c.id))
    updates = []
    for pledge_id, campaign_id, email in rows:
        canonical = canonical_email(email)
        if (campaign_id, canonical) in seen:
            canonical = f"{canonical}#{pledge_id}"
        seen.add((campaign_id, canonical))
        updates.append({"pledge_id": pledge_id, "canonical": canonical})
    update = pledges.update().where(pledges.c.id == sa.bindparam("pledge_id")).values(
        email_canonical=sa.bindparam("canonical")
    )
    for start in range(0, len(updates), CHUNK):
        connection.execute(update, updates[start:start + CHUNK])
    # Names shown before review existed were already on the wall.
    op.execute("UPDATE pledges SET name_status = 'approved' WHERE show_name")
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.alter_column('email_canonical', existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_constraint(op.f('uq_pledges_campaign_id_email'), type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_pledges_campaign_id_email_canonical'), ['campaign_id', 'email_canonical']
        )
        batch_op.create_check_constraint('name_status', "name_status IN ('pending', 'approved', 'rejected')")
    op.create_table('web_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_web_sessions_key_id_api_keys')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_key_id'), ['key_id'], unique=False)


def downgrade():
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_key_id'))
    op.drop_table('web_sessions')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_pledges_name_status'), type_='check')
        batch_op.drop_constraint(op.f('uq_pledges_campaign_id_email_canonical'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_pledges_campaign_id_email'), ['campaign_id', 'email'])
        batch_op.drop_column('name_status')
        batch_op.drop_column('email_canonical')
