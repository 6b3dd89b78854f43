"""book now: mechanic presence, targeted offers with match scores, favorites, the waitlist and
the wizard's saved progress

Revision ID: 0005
Revises: 0004

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('booking_drafts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_booking_drafts_customer_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_drafts')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_booking_drafts_customer_id'))
    )
    op.create_table('favorites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('mechanic_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_favorites_customer_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mechanic_id'], ['users.id'], name=op.f('fk_favorites_mechanic_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_favorites')),
    sa.UniqueConstraint('customer_id', 'mechanic_id', name='uq_favorites_customer_mechanic')
    )
    with op.batch_alter_table('favorites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_favorites_mechanic_id'), ['mechanic_id'], unique=False)

    op.create_table('waitlist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('notified_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('waiting', 'notified', 'left', 'expired', 'booked')", name=op.f('ck_waitlist_entries_status_valid')),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_waitlist_entries_customer_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['draft_id'], ['booking_drafts.id'], name=op.f('fk_waitlist_entries_draft_id_booking_drafts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entries'))
    )
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.create_index('ix_waitlist_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('uq_waitlist_customer_waiting', ['customer_id'], unique=True, postgresql_where=sa.text("status = 'waiting'"), sqlite_where=sa.text("status = 'waiting'"))

    op.create_table('request_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('mechanic_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mechanic_id'], ['users.id'], name=op.f('fk_request_offers_mechanic_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['session_requests.id'], name=op.f('fk_request_offers_request_id_session_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_offers')),
    sa.UniqueConstraint('request_id', 'mechanic_id', name='uq_request_offers_request_mechanic')
    )
    with op.batch_alter_table('request_offers', schema=None) as batch_op:
        batch_op.create_index('ix_request_offers_mechanic', ['mechanic_id'], unique=False)

    with op.batch_alter_table('mechanic_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('online', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('presence', sa.String(length=8), server_default='offline', nullable=False))
        batch_op.add_column(sa.Column('presence_changed_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_mechanic_profiles_presence', ['presence'], unique=False)
        batch_op.create_check_constraint(op.f('ck_mechanic_profiles_presence_valid'), "presence IN ('online', 'offline')")

    with op.batch_alter_table('intakes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preferred_mechanic_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_intakes_preferred_mechanic_id_users'), 'users',
                                    ['preferred_mechanic_id'], ['id'])

    with op.batch_alter_table('session_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('broadcast_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('preferred_mechanic_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_session_requests_preferred_mechanic_id_users'), 'users', ['preferred_mechanic_id'], ['id'])



def downgrade():
    with op.batch_alter_table('intakes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_intakes_preferred_mechanic_id_users'), type_='foreignkey')
        batch_op.drop_column('preferred_mechanic_id')

    with op.batch_alter_table('session_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_session_requests_preferred_mechanic_id_users'), type_='foreignkey')
        batch_op.drop_column('preferred_mechanic_id')
        batch_op.drop_column('broadcast_at')

    with op.batch_alter_table('mechanic_profiles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_mechanic_profiles_presence_valid'), type_='check')
        batch_op.drop_index('ix_mechanic_profiles_presence')
        batch_op.drop_column('presence_changed_at')
        batch_op.drop_column('presence')
        batch_op.drop_column('online')

    with op.batch_alter_table('request_offers', schema=None) as batch_op:
        batch_op.drop_index('ix_request_offers_mechanic')

    op.drop_table('request_offers')
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.drop_index('uq_waitlist_customer_waiting', postgresql_where=sa.text("status = 'waiting'"), sqlite_where=sa.text("status = 'waiting'"))
        batch_op.drop_index('ix_waitlist_status_created')

    op.drop_table('waitlist_entries')
    with op.batch_alter_table('favorites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_favorites_mechanic_id'))

    op.drop_table('favorites')
    op.drop_table('booking_drafts')
