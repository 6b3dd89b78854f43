"""appointments enter the room: the intake taken at booking, the session opened on the day,
the signed waiver, "any available" matching, account credit at checkout, in-app notifications

Revision ID: 0004
Revises: 0003

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

STATUSES_BEFORE = "status IN ('held', 'booked', 'cancelled', 'completed', 'no_show', 'expired')"
STATUSES_AFTER = "status IN ('held', 'booked', 'started', 'cancelled', 'completed', 'no_show', 'expired')"


def upgrade():
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('text', sa.String(length=300), nullable=False),
    sa.Column('link', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_unread', ['user_id', 'read_at'], unique=False)

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('any_mechanic', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('matched_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('intake_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('session_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_appointments_intake_id'), ['intake_id'])
        batch_op.create_unique_constraint(batch_op.f('uq_appointments_session_id'), ['session_id'])
        batch_op.create_foreign_key(batch_op.f('fk_appointments_intake_id_intakes'), 'intakes', ['intake_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_appointments_session_id_sessions'), 'sessions', ['session_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_appointments_status_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_appointments_status_valid'), STATUSES_AFTER)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit_cents', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_payments_credit_not_negative'), 'credit_cents >= 0')

    with op.batch_alter_table('waivers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_name', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('signature_png', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('signed_on', sa.String(length=12), nullable=True))



def downgrade():
    with op.batch_alter_table('waivers', schema=None) as batch_op:
        batch_op.drop_column('signed_on')
        batch_op.drop_column('signature_png')
        batch_op.drop_column('signed_name')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_credit_not_negative'), type_='check')
        batch_op.drop_column('credit_cents')

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_appointments_status_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_appointments_status_valid'), STATUSES_BEFORE)
        batch_op.drop_constraint(batch_op.f('fk_appointments_session_id_sessions'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_appointments_intake_id_intakes'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_appointments_session_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_appointments_intake_id'), type_='unique')
        batch_op.drop_column('session_id')
        batch_op.drop_column('intake_id')
        batch_op.drop_column('matched_at')
        batch_op.drop_column('any_mechanic')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_unread')

    op.drop_table('notifications')
