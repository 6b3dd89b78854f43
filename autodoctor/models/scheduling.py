"""Mechanics' availability and the appointments booked against it.

Weekly hours and date overrides are wall-clock times in the mechanic's own zone
(`mechanic_profiles.time_zone`); time off and appointments are instants (naive UTC, like
every other timestamp here). `services/availability.py` is the only reader that decides
what is bookable."""
import sqlalchemy as sa
from sqlalchemy import DDL, event, func, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models._types import one_of

APPOINTMENT_STATUSES = ("held", "booked", "started", "cancelled", "completed", "no_show", "expired")
APPOINTMENT_KINDS = ("online", "in_person")


class WeeklyHours(db.Model):
    """One working range on a weekday (several a day allowed), minutes after local midnight."""

    __tablename__ = "weekly_hours"
    __table_args__ = (
        db.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        db.CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute",
                           name="minutes_order"),
    )

    id = db.Column(db.Integer, primary_key=True)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    weekday = db.Column(db.Integer, nullable=False)  # 0 = Monday, as date.weekday()
    start_minute = db.Column(db.Integer, nullable=False)
    end_minute = db.Column(db.Integer, nullable=False)


class DateOverride(db.Model):
    """A local date whose hours replace the weekly ones: one row per range, or one row with no
    range when the mechanic does not work that day."""

    __tablename__ = "date_overrides"
    __table_args__ = (
        db.CheckConstraint("(start_minute IS NULL AND end_minute IS NULL) OR "
                           "(start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute)",
                           name="minutes_order"),
        db.Index("ix_date_overrides_mechanic_day", "mechanic_id", "day"),
    )

    id = db.Column(db.Integer, primary_key=True)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    day = db.Column(db.Date, nullable=False)
    start_minute = db.Column(db.Integer)
    end_minute = db.Column(db.Integer)


class TimeOff(db.Model):
    """An absence between two instants (holidays, a dentist appointment)."""

    __tablename__ = "time_off"
    __table_args__ = (
        db.CheckConstraint("starts_at < ends_at", name="order"),
        db.Index("ix_time_off_mechanic_ends", "mechanic_id", "ends_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    starts_at = db.Column(db.DateTime, nullable=False)
    ends_at = db.Column(db.DateTime, nullable=False)
    reason = db.Column(db.String(200), nullable=False, default="")


class Appointment(db.Model):
    """A future session at a set time. On Postgres an exclusion constraint refuses two
    held/booked appointments of one mechanic that overlap, whatever the application does. A
    hold past `hold_expires_at` no longer counts for availability, but it keeps its place in
    that constraint until it is marked `expired` (done before a new booking is inserted)."""

    __tablename__ = "appointments"
    __table_args__ = (
        one_of("status", APPOINTMENT_STATUSES),
        one_of("kind", APPOINTMENT_KINDS),
        db.CheckConstraint("starts_at < ends_at", name="order"),
        db.Index("ix_appointments_mechanic_starts", "mechanic_id", "starts_at"),
        # Same as migration 0003. SQLite has no such constraint: there writes are serialised and
        # the booking service checks for overlap in the same transaction.
        ExcludeConstraint(("mechanic_id", "="), (func.tsrange(text("starts_at"), text("ends_at")), "&&"),
                          name="ex_appointments_no_overlap", using="gist",
                          where=text("status IN ('held', 'booked')")).ddl_if(dialect="postgresql"),
    )

    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    mechanic_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    plan_id = db.Column(db.Integer, db.ForeignKey("plans.id"), nullable=False)
    kind = db.Column(db.String(10), nullable=False, default="online")
    status = db.Column(db.String(10), nullable=False, default="held")
    starts_at = db.Column(db.DateTime, nullable=False)
    ends_at = db.Column(db.DateTime, nullable=False)
    hold_expires_at = db.Column(db.DateTime)
    customer_time_zone = db.Column(db.String(64), nullable=False, default="UTC")
    ics_sequence = db.Column(db.Integer, nullable=False, default=0)
    booked_at = db.Column(db.DateTime)
    # The last reminder sent or skipped (1440, 60, then 15 minutes before): each goes out once,
    # and those already past when the booking was made never do.
    last_reminder_minutes = db.Column(db.Integer)
    # Booked as "any available": the mechanic who was free at booking holds the time, and 30
    # minutes before the start the match is checked again (`matched_at`) and moved if needed.
    any_mechanic = db.Column(db.Boolean, nullable=False, default=False, server_default=sa.false())
    matched_at = db.Column(db.DateTime)
    # What the customer told us when booking (vehicle, concern, photos); the waiver is signed
    # on the day. Online: the room's session once it opens (status `started`).
    intake_id = db.Column(db.Integer, db.ForeignKey("intakes.id"), unique=True)
    session_id = db.Column(db.Integer, db.ForeignKey("sessions.id"), unique=True)
    created_at = db.Column(db.DateTime, nullable=False, default=clock.now)

    customer = db.relationship("User", foreign_keys=[customer_id])
    mechanic = db.relationship("User", foreign_keys=[mechanic_id])
    plan = db.relationship("Plan")
    intake = db.relationship("Intake")
    session = db.relationship("ConsultSession")

    @property
    def minutes(self):
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


event.listen(Appointment.__table__, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(dialect="postgresql"))
